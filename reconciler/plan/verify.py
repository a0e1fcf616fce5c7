"""Saved plans are verified, not trusted (DESIGN 12.4). Pure.

`apply PLANFILE` re-derives the plan from scratch (ZeroTek usage for the file's period,
ConnectWise as it is now, the current mappings) and applies only when the file says exactly
what the re-derived plan says. Every field counts, the state snapshot included: an edited
`after`, addition id, unit price or `"safe": true` is as much a reason to refuse as a stale
snapshot. Only revenue figures may differ, by rounding to cents (another tool may have
written them rounded); unit prices never. What is applied is the re-derived plan, so the
safety verdict is always recomputed and a change to an addition the current config does
not manage cannot exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from reconciler.secure.scrub import shorten

LIMIT = 12  # differences listed in a refusal
_CENT = Decimal("0.01")


def differences(saved: Any, derived: Any, limit: int = LIMIT) -> list[str]:
    """Where the saved plan's JSON departs from the re-derived plan's ([] = identical)."""
    found: list[str] = []
    _walk(saved, derived, "", found)
    found.sort()
    if len(found) > limit:
        found = [*found[:limit], f"... and {len(found) - limit} more"]
    return found


def _walk(saved: Any, derived: Any, path: str, found: list[str]) -> None:
    if isinstance(saved, dict) and isinstance(derived, dict):
        for key in sorted(set(saved) | set(derived), key=str):
            at = f"{path}/{key}" if path else str(key)
            if key not in derived:
                found.append(f"{at}: in the file, not in the re-derived plan")
            elif key not in saved:
                found.append(f"{at}: missing from the file (re-derived: {_show(derived[key])})")
            elif key == "revenue_delta" and _same_to_the_cent(saved[key], derived[key]):
                continue
            else:
                _walk(saved[key], derived[key], at, found)
        return
    if isinstance(saved, list) and isinstance(derived, Sequence) and not isinstance(derived, str):
        if len(saved) != len(derived):
            found.append(f"{path}: {len(saved)} entries in the file, {len(derived)} re-derived")
        for i, (a, b) in enumerate(zip(saved, derived, strict=False)):
            _walk(a, b, f"{path}/{i}", found)
        return
    # type() as well as ==: JSON true == 1 and 42.0 == 42 in Python, not on an invoice
    if type(saved) is not type(derived) or saved != derived:
        found.append(f"{path}: {_show(saved)} in the file, {_show(derived)} re-derived")


def _same_to_the_cent(saved: Any, derived: Any) -> bool:
    if not (isinstance(saved, str) and isinstance(derived, str)):
        return False
    try:
        s, d = Decimal(saved), Decimal(derived)
    except InvalidOperation:
        return False
    if not (s.is_finite() and d.is_finite()):
        return False
    return s == d or any(
        s == d.quantize(_CENT, rounding=r) for r in (ROUND_HALF_UP, ROUND_HALF_EVEN)
    )


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return shorten(text, 60, mark="...")
