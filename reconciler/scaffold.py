"""`init` (scaffold a config directory) and `activate`/`deactivate` (flip `enabled`).

The `enabled` flip edits settings.yaml as text: re-dumping YAML would lose the comments that
document the file, so the value's exact character span (from the composer's marks) is
replaced and every other byte is kept.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from reconciler import yamlsource
from reconciler.config import SETTINGS_FILE
from reconciler.errors import ConfigError, Problem, ReconcileError
from reconciler.model import Location
from reconciler.resources import example_dir, workflows_dir

MAPPING_FILES = ("settings.yaml", "skus.yaml", "customers.yaml")
# tests.yml is the reconciler's own CI, not something a config repository runs.
WORKFLOW_FILES = ("validate.yml", "sync.yml", "unmapped.yml")


@dataclass(frozen=True)
class ScaffoldFile:
    source: Path  # a file shipped with the package
    target: str  # path relative to the config directory


def scaffold_files() -> list[ScaffoldFile]:
    """Everything `init` writes. Extend this list (e.g. with workflows) to scaffold more."""
    examples = example_dir()
    workflows = workflows_dir()
    return [ScaffoldFile(examples / name, f"mappings/{name}") for name in MAPPING_FILES] + [
        ScaffoldFile(workflows / name, f".github/workflows/{name}") for name in WORKFLOW_FILES
    ]


def init(target_dir: Path) -> list[str]:
    """Write the scaffold into `target_dir`; refuse (writing nothing) if any file exists."""
    files = scaffold_files()
    existing = [f.target for f in files if (target_dir / f.target).exists()]
    if existing:
        raise ReconcileError(
            f"refusing to overwrite existing files in {target_dir}: {', '.join(existing)} "
            "(move them away or pick another directory)"
        )
    missing = [str(f.source) for f in files if not f.source.is_file()]
    if missing:
        raise ReconcileError(f"package data missing: {', '.join(missing)}; reinstall")
    for f in files:
        dest = target_dir / f.target
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Exclusive create: a file appearing since the check above is still never clobbered.
        with dest.open("xb") as out:
            out.write(f.source.read_bytes())
    return [f.target for f in files]


# --- activate / deactivate -------------------------------------------------------------------


def _enabled_value_span(
    root: yaml.Node, text: str, file: str
) -> tuple[int, int, str, object] | None:
    """(start, end, prefix, current value) of the top-level `enabled` value; None if absent."""
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(
            [Problem(Location(file, 1, 1), "expected a mapping of settings at the top level")]
        )
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "enabled":
            if not isinstance(value, yaml.ScalarNode):
                where = Location(file, value.start_mark.line + 1, value.start_mark.column + 1)
                raise ConfigError([Problem(where, "enabled: expected true or false")])
            current = value.value if value.style else yamlsource.resolve_plain(value.value)
            start, end = value.start_mark.index, value.end_mark.index
            if start == end:  # `enabled:` with no value: the mark may sit on the next line
                colon = text.index(":", key.end_mark.index)
                return colon + 1, colon + 1, " ", None
            return start, end, "", current
    return None


def _insert_point(text: str) -> int:
    """Offset of the first line that is neither blank, a comment, nor a document marker."""
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "%", "---")):
            break
        offset += len(line)
    return offset


def set_enabled(config_dir: Path, enabled: bool) -> bool:
    """Set `enabled` in mappings/settings.yaml; True if the file changed."""
    path = Path(config_dir) / SETTINGS_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [Problem(Location(SETTINGS_FILE), "file not found (run `reconcile init` first)")]
        ) from None
    text = yamlsource.decode(raw, SETTINGS_FILE)
    # libyaml's marks do not count a byte-order mark; splice the text after it.
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    text = text[len(bom) :]
    root = yamlsource.compose_text(text, SETTINGS_FILE)
    word = "true" if enabled else "false"
    span = None if root is None else _enabled_value_span(root, text, SETTINGS_FILE)
    if span is None:
        if isinstance(root, yaml.MappingNode) and root.flow_style:
            where = Location(SETTINGS_FILE, root.start_mark.line + 1, 1)
            raise ConfigError([Problem(where, f"add `enabled: {word}` to this mapping by hand")])
        at = _insert_point(text)
        newline = "\r\n" if "\r\n" in text else "\n"
        indent = " " * (root.start_mark.column if root is not None else 0)
        before = text[:at] if not at or text[at - 1] == "\n" else text[:at] + newline
        new = before + f"{indent}enabled: {word}{newline}" + text[at:]
    else:
        start, end, prefix, current = span
        if current is enabled:
            return False
        new = text[:start] + prefix + word + _realign(text[end:], len(word) - (end - start))
    _write_atomic(path, (bom + new).encode("utf-8"))
    return True


def _realign(rest: str, delta: int) -> str:
    """Keep an aligned inline comment in its column when the value's width changes."""
    padding = len(rest) - len(rest.lstrip(" "))
    if not rest[padding:].startswith("#") or delta == 0:
        return rest
    if delta > 0:
        return rest[min(delta, padding - 1) :] if padding > 1 else rest
    return " " * -delta + rest


def _write_atomic(path: Path, data: bytes) -> None:
    # A crash mid-write must not leave a truncated settings.yaml behind.
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
