"""`reconcile init --upgrade`: bring a config repository's generated files to this version.

What `init` generated and an MSP does not edit (the three workflows and the hash-locked
requirements/locked.txt, which travel together) is rewritten to what this version of the
reconciler ships, installing the same pinned source as before (or `--pin`'s). Everything
the MSP owns (mappings/, runs/, state/) is left alone. The change is printed as a unified
diff, so it can be read before it is committed; a file that cannot be read stops it before
anything is written.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from reconciler.config import pin
from reconciler.config.loader import SETTINGS_FILE
from reconciler.config.scaffold import WORKFLOW_FILES, scaffold_files
from reconciler.core.errors import ReconcileError
from reconciler.core.files import atomic_write

UPGRADED = (*(f".github/workflows/{name}" for name in WORKFLOW_FILES), "requirements/locked.txt")
# The install line `init` wrote: python -m pip install ... 'zerotek-cw-reconciler @ URL'
_PINNED = re.compile(rf"'{re.escape(pin.DIST_NAME)} @ ([^'\s]+)'")


@dataclass(frozen=True)
class Upgraded:
    target: str
    before: str  # "" when the file did not exist
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile=f"a/{self.target}",
            tofile=f"b/{self.target}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def current_pin(config_dir: Path) -> pin.Pin | None:
    """The source the repository's workflows install now; an error if they disagree."""
    found: dict[str, str] = {}
    for name in WORKFLOW_FILES:
        path = config_dir / ".github/workflows" / name
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        for url in _PINNED.findall(text):
            found.setdefault(url, name)
    if len(found) > 1:
        names = ", ".join(f"{name}: {url}" for url, name in found.items())
        raise ReconcileError(
            f"the workflows install different reconcilers ({names}); choose one with --pin"
        )
    return pin.parse_pin(next(iter(found))) if found else None


def upgrade(config_dir: Path, source: pin.Pin | None = None) -> tuple[pin.Pin, list[Upgraded]]:
    """Rewrite the generated files (keeping the pin unless `source` is given); returns the
    pin used and each file's before/after."""
    if not (config_dir / SETTINGS_FILE).is_file():
        raise ReconcileError(
            f"{config_dir}: no {SETTINGS_FILE} here; --upgrade works on a config repository "
            "made by `reconcile init` (run it there, or pass its directory)"
        )
    chosen = source or current_pin(config_dir) or pin.installed_pin()
    if chosen is None:
        raise ReconcileError(
            "no reconciler source to pin: the workflows name none and this copy was not "
            f"installed from one; pass --pin {pin.PIN_HELP}"
        )
    shipped = {f.target: f.content().decode("utf-8") for f in scaffold_files(chosen)}
    results = []
    for target in UPGRADED:
        path = config_dir / target
        try:
            before = path.read_text(encoding="utf-8") if path.exists() else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise ReconcileError(f"{path}: cannot read: {exc}") from None
        results.append(Upgraded(target, before, shipped[target]))
    for item in results:
        if item.changed:
            path = config_dir / item.target
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                atomic_write(path, item.after.encode("utf-8"), keep_mode=True)
            except OSError as exc:
                raise ReconcileError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return chosen, results
