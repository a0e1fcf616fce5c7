"""`init` (scaffold a config directory) and `activate`/`deactivate` (flip `enabled`).

The `enabled` flip edits settings.yaml as text: re-dumping YAML would lose the comments that
document the file, so the value's exact character span (from the composer's marks) is
replaced and every other byte is kept.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from reconciler.config import pin, yamlsource
from reconciler.config.loader import SETTINGS_FILE
from reconciler.config.resources import (
    SCHEMA_NAMES,
    example_dir,
    github_dir,
    requirements_dir,
    schemas_dir,
    workflows_dir,
)
from reconciler.core.errors import ConfigError, Problem, ReconcileError
from reconciler.core.files import atomic_write
from reconciler.core.model import Location

MAPPING_FILES = ("settings.yaml", "skus.yaml", "customers.yaml")
# tests.yml is the reconciler's own CI, not something a config repository runs.
WORKFLOW_FILES = ("validate.yml", "sync.yml", "unmapped.yml")
# The sync engine's lock (DESIGN 12.5) lives in .reconcile/ under the config directory.
LOCK_DIR = ".reconcile/"

# What a run leaves in the config directory that must never be committed.
GITIGNORE = f"""\
# Written by `reconcile init`. Files a run leaves behind that do not belong in git:
# saved plans (`reconcile plan --out`) and their Markdown, and the lock a writing
# command holds on this directory. runs/ IS committed: it is the sync log.
plan.json
plan.md
*.plan.json
{LOCK_DIR}
__pycache__/
.venv/
"""


def _vscode_settings() -> str:
    """Editors validate the mapping files against the schemas (the YAML extension reads
    `yaml.schemas`; the modeline at the top of each file does the same for other editors)."""
    schemas = {
        "./schemas/settings.schema.json": ["mappings/settings.yaml"],
        "./schemas/skus.schema.json": ["mappings/skus.yaml"],
        "./schemas/customers.schema.json": ["mappings/customers.yaml", "mappings/customers/*.yaml"],
    }
    return json.dumps({"yaml.schemas": schemas}, indent=2) + "\n"


@dataclass(frozen=True)
class ScaffoldFile:
    target: str  # path relative to the config directory
    source: Path | None = None  # a file shipped with the package
    text: str | None = None  # or generated content

    def content(self) -> bytes:
        if self.text is not None:
            return self.text.encode("utf-8")
        assert self.source is not None
        return self.source.read_bytes()


def pinned_workflow(text: str, install: str) -> str:
    """A shipped workflow with its install-from-this-checkout line replaced by `install`."""
    if pin.CHECKOUT_INSTALL not in text:
        raise ReconcileError("package data: a workflow has no install line to pin; reinstall")
    return text.replace(pin.CHECKOUT_INSTALL, install)


def scaffold_files(source: pin.Pin | None = None) -> list[ScaffoldFile]:
    """Everything `init` writes: mappings, schemas, workflows installing `source` (a failing
    install step saying what to do when there is none), dependabot, lock file, .gitignore."""
    examples, workflows, schemas = example_dir(), workflows_dir(), schemas_dir()
    install = source.install_command() if source is not None else pin.unpinned_command()
    files = [ScaffoldFile(f"mappings/{name}", examples / name) for name in MAPPING_FILES]
    files += [
        ScaffoldFile(f"schemas/{name}.schema.json", schemas / f"{name}.schema.json")
        for name in SCHEMA_NAMES
    ]
    for name in WORKFLOW_FILES:
        path = workflows / name
        text = (
            pinned_workflow(path.read_text(encoding="utf-8"), install) if path.is_file() else None
        )
        files.append(ScaffoldFile(f".github/workflows/{name}", path, text))
    files += [
        ScaffoldFile(".github/dependabot.yml", github_dir() / "dependabot.yml"),
        ScaffoldFile("requirements/locked.txt", requirements_dir() / "locked.txt"),
        ScaffoldFile(".vscode/settings.json", text=_vscode_settings()),
        ScaffoldFile(".gitignore", text=GITIGNORE),
    ]
    return files


def init(target_dir: Path, source: pin.Pin | None = None) -> list[str]:
    """Write the scaffold into `target_dir`; refuse (writing nothing) if any file exists."""
    files = scaffold_files(source)
    existing = [f.target for f in files if (target_dir / f.target).exists()]
    if existing:
        raise ReconcileError(
            f"refusing to overwrite existing files in {target_dir}: {', '.join(existing)} "
            "(move them away or pick another directory)"
        )
    missing = [
        str(f.source) for f in files if f.text is None and not (f.source or Path()).is_file()
    ]
    if missing:
        raise ReconcileError(f"package data missing: {', '.join(missing)}; reinstall")
    for f in files:
        dest = target_dir / f.target
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Exclusive create: a file appearing since the check above is still never clobbered.
        with dest.open("xb") as out:
            out.write(f.content())
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
            # An alias (`enabled: *on`) hands back the anchored node elsewhere in the file,
            # and an anchor (`enabled: &on true`) is shared with its aliases: editing either
            # would change another key. (validate refuses both anyway.)
            aliased = value.start_mark.index < key.end_mark.index
            if aliased or text.startswith("&", value.start_mark.index):
                where = Location(file, key.start_mark.line + 1, key.start_mark.column + 1)
                raise ConfigError(
                    [
                        Problem(
                            where,
                            "enabled: uses a YAML anchor or alias (&name / *name); write "
                            "`enabled: true` or `enabled: false` plainly, then run this again",
                        )
                    ]
                )
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
    """Set `enabled` in mappings/settings.yaml; True if the file changed.

    A symlinked settings.yaml stays a symlink: its target is edited (replacing the link by
    a regular file would leave the target, and every other link to it, saying the old value).
    """
    path = Path(config_dir) / SETTINGS_FILE
    if path.is_symlink():
        path = Path(os.path.realpath(path))
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
    # A crash mid-write must not leave a truncated settings.yaml behind.
    atomic_write(path, (bom + new).encode("utf-8"), keep_mode=True)
    return True


def _realign(rest: str, delta: int) -> str:
    """Keep an aligned inline comment in its column when the value's width changes."""
    padding = len(rest) - len(rest.lstrip(" "))
    if not rest[padding:].startswith("#") or delta == 0:
        return rest
    if delta > 0:
        return rest[min(delta, padding - 1) :] if padding > 1 else rest
    return " " * -delta + rest
