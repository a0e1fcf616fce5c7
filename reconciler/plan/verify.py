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

import json
import marshal
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from reconciler.plan import drift
from reconciler.secure.scrub import shorten

LIMIT = 12  # differences listed in a refusal
_CENT = Decimal("0.01")

Path = tuple[str, ...]


def differences(saved: Any, derived: Any, limit: int = LIMIT) -> list[str]:
    """Where the saved plan's JSON departs from the re-derived plan's ([] = identical), one
    line each, named as a person reads a plan ("customer zt-0007, update ZT-OKTA-SSO: after
    4200 in the file, 42 now"), capped with a count."""
    found: list[tuple[Path, str]] = []
    _walk(saved, derived, (), found)
    found.sort(key=lambda item: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in item[0]])
    return drift.cap([_line(path, what, saved) for path, what in found], limit)


def _line(path: Path, what: str, saved: Any) -> str:
    head, field = _where(path, saved)
    if not head:
        return f"{field or 'the plan'}: {what}"
    return f"{head}: {field} {what}" if field else f"{head}: {what}"


def _same(saved: Any, derived: Any) -> bool:
    """Identical to the byte: the same types (true is not 1, 42.0 is not 42), values and key
    order. marshal says in C what the walk below would find node by node in Python (a
    10,000-customer plan: 0.03 s against 0.34 s); anything it cannot encode (the lazily
    built customers) or encodes differently (keys in another order) is left to the walk.
    Version 2: no back-references, so the bytes never depend on which objects are shared.

    A large dict (the state's 10,000 agreements) is compared a slice of its values at a
    time: its whole encoding twice over was 10 MB at the apply's peak of memory."""
    if isinstance(saved, dict) and isinstance(derived, dict) and len(saved) > _SLICE:
        if len(saved) != len(derived) or not _encoded_alike(list(saved), list(derived)):
            return False
        mine, theirs = list(saved.values()), list(derived.values())
        return all(
            _encoded_alike(mine[i : i + _SLICE], theirs[i : i + _SLICE])
            for i in range(0, len(mine), _SLICE)
        )
    return _encoded_alike(saved, derived)


_SLICE = 500


def _encoded_alike(saved: Any, derived: Any) -> bool:
    try:
        # The derived side first: a lazily built part fails at once, before the file's
        # side (megabytes, for the plan as a whole) is encoded for nothing.
        theirs = marshal.dumps(derived, 2)
        return marshal.dumps(saved, 2) == theirs
    except ValueError:  # not marshallable, or nested too deep
        return False


def _walk(saved: Any, derived: Any, path: Path, found: list[tuple[Path, str]]) -> None:
    if isinstance(saved, dict) and isinstance(derived, dict):
        if _same(saved, derived):
            return
        for key in sorted(set(saved) | set(derived), key=str):
            at = (*path, str(key))
            if key not in derived:
                found.append((at, "in the file only, not in the plan made now"))
            elif key not in saved:
                found.append((at, f"missing from the file (now {_show(derived[key])})"))
            elif key == "revenue_delta" and _same_to_the_cent(saved[key], derived[key]):
                continue
            else:
                _walk(saved[key], derived[key], at, found)
        return
    if isinstance(saved, list) and isinstance(derived, Sequence) and not isinstance(derived, str):
        if len(saved) != len(derived):
            found.append((path, f"{len(saved)} in the file, {len(derived)} now"))
        for i, (a, b) in enumerate(zip(saved, derived, strict=False)):
            _walk(a, b, (*path, str(i)), found)
        return
    # type() as well as ==: JSON true == 1 and 42.0 == 42 in Python, not on an invoice
    if type(saved) is not type(derived) or saved != derived:
        found.append((path, f"{_show(saved)} in the file, {_show(derived)} now"))


def _where(path: Path, saved: Any) -> tuple[str, str]:
    """A path in the plan's JSON, named by what it is: the customer, the change, the
    agreement and addition of the state snapshot; the field last."""
    names: list[str] = []
    rest = list(path)
    node = saved
    if rest[:1] == ["customers"] and len(rest) > 1 and rest[1].isdigit():
        node = _item(saved.get("customers") if isinstance(saved, dict) else None, rest[1])
        names.append(f"customer {node.get('id', '#' + rest[1])}")
        rest = rest[2:]
        if rest[:1] == ["changes"] and len(rest) > 1 and rest[1].isdigit():
            change = _item(node.get("changes"), rest[1])
            action, product = change.get("action", "change"), change.get("product", "")
            names.append(f", {action} {product or '#' + rest[1]}")
            rest = rest[2:]
    elif rest[:2] == ["state", "agreements"] and len(rest) > 2:
        names.append(f"agreement {rest[2]}")
        rest = rest[3:]
        if rest[:1] == ["additions"] and len(rest) > 1:
            names.append(f"addition #{rest[1]}")
            rest = rest[2:]
    elif rest[:2] == ["state", "catalog"] and len(rest) > 2:
        names.append(f"catalog product {rest[2]}")
        rest = rest[3:]
    return " ".join(names).replace(" ,", ","), ".".join(rest)


def _item(items: Any, index: str) -> dict[str, Any]:
    item = items[int(index)] if isinstance(items, list) and int(index) < len(items) else None
    return item if isinstance(item, dict) else {}


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
    """JSON's spelling (true, null, "5.00"), as in the file the user may have edited."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = json.dumps(value, ensure_ascii=False)
    return shorten(text, 60, mark="...")
