"""What moved in ConnectWise between a saved plan's state snapshot and now, in words a
billing clerk reads ("agreement 1002 addition #9013 (ZT-OKTA-UD): cancelled since the plan
was made"), one line per difference, capped with a count (issue 28). Pure.

The snapshot's shape is planfile.snapshot's: agreements by id (status, cancelled, dates,
live managed additions by id) and the mapped catalog products by identifier.
"""

from __future__ import annotations

from typing import Any

LIMIT = 10
SINCE = "since the plan was made"
_ADDITION_NAMED = {"cancelled_date", "quantity"}  # said in their own words below
_AGREEMENT_FIELDS = {
    "status": "status",
    "end_date": "end date",
    "bill_start_date": "billing start date",
}


def cap(lines: list[str], limit: int) -> list[str]:
    """At most `limit` lines; the rest counted on one more."""
    if len(lines) <= limit:
        return lines
    rest = len(lines) - limit
    return [*lines[:limit], f"... and {rest} more difference{'s' if rest != 1 else ''}"]


def show(value: Any) -> str:
    """A value as a person reads it: none, true/false, numbers and text plain."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(saved: dict[str, Any], current: dict[str, Any], limit: int = LIMIT) -> list[str]:
    """Every difference between two state snapshots, agreements then catalog."""
    lines: list[str] = []
    old, new = saved.get("agreements") or {}, current.get("agreements") or {}
    for aid in sorted(set(old) | set(new), key=_id_order):
        lines += _agreement(aid, old.get(aid), new.get(aid))
    old_cat, new_cat = saved.get("catalog") or {}, current.get("catalog") or {}
    for ident in sorted(set(old_cat) | set(new_cat)):
        lines += _catalog(ident, old_cat.get(ident), new_cat.get(ident))
    return cap(lines, limit)


def additions(
    agreement_id: object, saved: dict[str, Any], current: dict[str, Any], limit: int = LIMIT
) -> list[str]:
    """The differences in one agreement's live managed additions."""
    lines: list[str] = []
    for xid in sorted(set(saved) | set(current), key=_id_order):
        lines += _addition(f"agreement {agreement_id}", xid, saved.get(xid), current.get(xid))
    return cap(lines, limit)


def _id_order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)


def _agreement(aid: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    name = f"agreement {aid}"
    if old is None or new is None:
        return [f"{name}: {'appeared' if old is None else 'no longer found'} {SINCE}"]
    lines = []
    if old.get("cancelled") != new.get("cancelled"):
        lines.append(f"{name}: {'cancelled' if new.get('cancelled') else 'reopened'} {SINCE}")
    for key in sorted((set(old) | set(new)) - {"cancelled", "additions"}):
        if old.get(key) != new.get(key):  # every field counts, named ones in plain words
            label = _AGREEMENT_FIELDS.get(key, key.replace("_", " "))
            lines.append(f"{name}: {label} {show(old.get(key))} → {show(new.get(key))} {SINCE}")
    before, after = old.get("additions") or {}, new.get("additions") or {}
    for xid in sorted(set(before) | set(after), key=_id_order):
        lines += _addition(name, xid, before.get(xid), after.get(xid))
    return lines


def _addition(
    agreement: str, xid: str, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> list[str]:
    product = (old or new or {}).get("product")
    name = f"{agreement} addition #{xid}" + (f" ({product})" if product else "")
    if new is None:
        return [f"{name}: cancelled or removed {SINCE}"]
    if old is None:
        return [f"{name}: added {SINCE} (quantity {show(new.get('quantity'))})"]
    lines = []
    if old.get("cancelled_date") != new.get("cancelled_date"):
        when = new.get("cancelled_date")
        lines.append(
            f"{name}: cancelled (as of {when}) {SINCE}"
            if when
            else f"{name}: no longer cancelled {SINCE}"
        )
    if old.get("quantity") != new.get("quantity"):
        lines.append(
            f"{name}: quantity {show(old.get('quantity'))} → {show(new.get('quantity'))} {SINCE}"
        )
    for key in sorted(set(old) | set(new)):  # any other field (the price): a difference too
        if key not in _ADDITION_NAMED and old.get(key) != new.get(key):
            label = key.replace("_", " ")
            lines.append(f"{name}: {label} {show(old.get(key))} → {show(new.get(key))} {SINCE}")
    return lines


def _catalog(ident: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    name = f"catalog product {ident}"
    if old is None or new is None:
        return [f"{name}: {'appeared' if old is None else 'no longer found'} {SINCE}"]
    lines = []
    if old.get("inactive") != new.get("inactive"):
        lines.append(f"{name}: {'made inactive' if new.get('inactive') else 'reactivated'} {SINCE}")
    for key in sorted((set(old) | set(new)) - {"inactive"}):
        if old.get(key) != new.get(key):
            label = key.replace("_", " ")
            lines.append(f"{name}: {label} {show(old.get(key))} → {show(new.get(key))} {SINCE}")
    return lines
