"""Where a config repository's workflows install the reconciler from: one exact, immutable
source, never a package name an index could resolve to someone else's upload.

Two kinds of pin are accepted:
- `git+https://HOST/OWNER/REPO@<40-hex commit>`: a commit id names one tree of files;
- `https://.../NAME.whl#sha256=<64 hex>`: pip checks the wheel's hash before installing it.
Its dependencies come from requirements/locked.txt (exact versions and hashes, installed with
`--require-hashes`), so nothing in the install is resolved at run time.

`init` takes the pin from `--pin`, else from how this copy was installed (PEP 610's
direct_url.json: a VCS install at a commit, or a wheel URL with its hash).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata
from typing import Literal

from reconciler.core.errors import ReconcileError

DIST_NAME = "zerotek-cw-reconciler"
# The line in the shipped workflows that installs this checkout; `init` replaces it.
CHECKOUT_INSTALL = "python -m pip install --no-deps --no-build-isolation ."
LOCK_INSTALL = "python -m pip install --require-hashes --no-deps -r requirements/locked.txt"
# No user-info (no credentials in a workflow), no quotes or spaces (the URL is shell-quoted),
# and nothing GitHub or a shell could expand (`${{ }}`, `$VAR`, backticks).
_URL_BODY = r"[A-Za-z0-9.-]+(?::\d+)?/[^\s@'\"#?\\${}`]+"
_GIT = re.compile(rf"git\+https://{_URL_BODY}@(?P<rev>[0-9a-f]{{40}})")
_WHEEL = re.compile(rf"https://{_URL_BODY}\.whl#sha256=(?P<hash>[0-9a-f]{{64}})")
PIN_HELP = "git+https://HOST/OWNER/REPO@<full 40-hex commit> or https://.../FILE.whl#sha256=<hash>"


@dataclass(frozen=True)
class Pin:
    url: str
    kind: Literal["git", "wheel"]

    def install_command(self) -> str:
        # --no-deps: the dependencies are already installed from the hash-checked lock file.
        # A git source is built with the lock's setuptools (--no-build-isolation), so no
        # build dependency is resolved at run time either.
        isolation = " --no-build-isolation" if self.kind == "git" else ""
        return f"python -m pip install --no-deps{isolation} '{DIST_NAME} @ {self.url}'"


def parse_pin(text: str) -> Pin:
    url = text.strip()
    if _GIT.fullmatch(url):
        return Pin(url, "git")
    if _WHEEL.fullmatch(url):
        return Pin(url, "wheel")
    raise ReconcileError(f"--pin: {text!r} is not an exact source; expected {PIN_HELP}")


def pin_from_direct_url(raw: str) -> Pin | None:
    """The pin a PEP 610 direct_url.json describes, or None (index, local or editable)."""
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(info, dict) or not isinstance(info.get("url"), str):
        return None
    url: str = info["url"]
    vcs, archive = info.get("vcs_info"), info.get("archive_info")
    candidate = None
    if isinstance(vcs, dict) and vcs.get("vcs") == "git" and isinstance(vcs.get("commit_id"), str):
        candidate = f"git+{url}@{vcs['commit_id']}"
    elif isinstance(archive, dict):
        hashes = archive.get("hashes")
        digest = hashes.get("sha256") if isinstance(hashes, dict) else None
        legacy = archive.get("hash")
        if digest is None and isinstance(legacy, str) and legacy.startswith("sha256="):
            digest = legacy.removeprefix("sha256=")
        if isinstance(digest, str):
            candidate = f"{url}#sha256={digest}"
    if candidate is None:
        return None
    try:
        return parse_pin(candidate)
    except ReconcileError:  # e.g. a file:// wheel: CI could never fetch it
        return None


def installed_pin() -> Pin | None:
    try:
        raw = metadata.distribution(DIST_NAME).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    return pin_from_direct_url(raw) if raw else None


def unpinned_command() -> str:
    """The install line of workflows written without a pin: it fails, saying how to fix it."""
    return (
        'echo "::error title=Reconciler not pinned::reconcile init found no exact source to '
        "install the reconciler from. Replace this line with: python -m pip install --no-deps "
        f"--no-build-isolation '{DIST_NAME} @ git+https://HOST/OWNER/REPO@<commit>' "
        '(see the README, Setup)" && exit 1'
    )
