"""Terminal conventions shared by every command: when to use colour.

Colour is on for a terminal and off elsewhere, `NO_COLOR` (any non-empty value, see
no-color.org) turns it off, `TERM=dumb` too, and `--color/--no-color` (or `RECONCILE_COLOR`)
overrides all of them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

_forced: bool | None = None


def force_color(value: bool | None) -> None:
    """`--color` (True), `--no-color` (False) or automatic (None), for this process."""
    global _forced
    _forced = value


def use_color(stream: TextIO) -> bool:
    if _forced is not None:
        return _forced
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def stderr_console() -> Console:
    """rich's Console on stderr, its colours following the same rules. (rich is imported
    here, when a spinner or bar is shown, not when the module loads: --help stays fast.)"""
    from rich.console import Console

    if _forced is True:
        return Console(stderr=True, force_terminal=True)
    if _forced is False or os.environ.get("NO_COLOR"):
        return Console(stderr=True, no_color=True)
    return Console(stderr=True)
