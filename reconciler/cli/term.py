"""Terminal conventions shared by every command: when to use colour.

Colour is on for a terminal and off elsewhere, `NO_COLOR` (any non-empty value, see
no-color.org) turns it off, `TERM=dumb` too, and `--color/--no-color` (or `RECONCILE_COLOR`)
overrides all of them.
"""

from __future__ import annotations

import os
from typing import TextIO

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


def rich_console_options() -> dict[str, object]:
    """Keyword arguments for rich's Console so its colours follow the same rules."""
    if _forced is True:
        return {"force_terminal": True}
    if _forced is False or os.environ.get("NO_COLOR"):
        return {"no_color": True}
    return {}
