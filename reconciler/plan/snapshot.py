"""An agreement's live managed additions as a saved plan keeps them, and back (DESIGN 13.7).

The snapshot is both what apply compares its one read of a changed agreement against
(staleness, 12.5) and the state `apply PLANFILE` re-derives the plan from for every
agreement it does not read (12.4 at the request floor). So it holds every field of an
addition that planning reads: a field the planner starts reading must be added here, or the
re-derived plan differs from the file and every saved plan is refused
(tests/connectwise/test_request_floor.py re-plans a generated world from its own snapshot).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from reconciler.core import money
from reconciler.core.errors import ReconcileError
from reconciler.core.model import ManagedProducts
from reconciler.core.state import Addition, is_live_managed
from reconciler.plan.jsonshape import Obj, ShapeError

_KEYS = frozenset(
    {
        "product",
        "product_id",
        "quantity",
        "unit_price",
        "bill_customer",
        "effective_date",
        "cancelled_date",
    }
)
_OPTIONAL_KEYS = frozenset({"problem"})


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def additions_snapshot(
    additions: Iterable[Addition], products: ManagedProducts, as_of: dt.date
) -> dict[str, Any]:
    """An agreement's live managed additions (model.is_live_managed: exactly those the
    planner planned against), keyed by addition id."""
    snap: dict[str, Any] = {}
    for x in additions:
        if not is_live_managed(x, products, as_of):
            continue
        entry: dict[str, Any] = {
            "product": x.product_identifier,
            "product_id": x.product_id,
            "quantity": x.quantity,
            "unit_price": money.optional(x.unit_price),
            "bill_customer": x.bill_customer,  # not Billable: counted at 0 money (13.3)
            "effective_date": _date(x.effective_date),
            "cancelled_date": _date(x.cancelled_date),
        }
        if x.problem is not None:  # a negative or fractional quantity: live all the same
            entry["problem"] = x.problem
        snap[str(x.id)] = entry
    return snap


def _an_id(key: str) -> bool:
    return key.isascii() and key.isdigit()  # "²".isdigit() too, and int() refuses it


def additions_from_snapshot(agreement_id: int, snap: Any, where: str) -> tuple[Addition, ...]:
    """The additions an agreement's snapshot describes, each field type-checked (a saved
    plan comes from outside). ShapeError names the JSON path of the first defect."""
    found = []
    for key, value in Obj(snap, where).items():
        e = Obj(value, f"{where}/{key}", _KEYS | _OPTIONAL_KEYS)
        if not _an_id(key) or not value.keys() >= _KEYS:
            missing = ", ".join(sorted(_KEYS - value.keys())) or "an addition id as its key"
            raise ShapeError(f"{e.path}: expected {missing}")
        found.append(
            Addition(
                id=int(key),
                agreement_id=agreement_id,
                product_id=e.integer("product_id"),
                product_identifier=e.text("product"),
                quantity=e.integer("quantity"),
                unit_price=e.opt_decimal("unit_price"),
                bill_customer=e.opt_text("bill_customer"),
                effective_date=e.opt_date("effective_date"),
                cancelled_date=e.opt_date("cancelled_date"),
                problem=e.opt_text("problem") if "problem" in value else None,
            )
        )
    return tuple(found)


def known_additions(state: Any) -> dict[int, tuple[Addition, ...]]:
    """Every agreement of a saved plan's snapshot with the additions it records: the state
    `apply PLANFILE` plans those agreements from instead of reading them again. A defect
    (a file of an older version, an edit) is one line naming its JSON path."""
    known: dict[int, tuple[Addition, ...]] = {}
    try:
        for key, value in Obj(state, "state").obj("agreements").items():
            where = f"state/agreements/{key}"
            if not _an_id(key):
                raise ShapeError(f"{where}: expected an agreement id as its key")
            additions = Obj(value, where).obj("additions")
            known[int(key)] = additions_from_snapshot(int(key), additions.raw, additions.path)
    except ShapeError as exc:
        raise ReconcileError(
            f"the saved plan's state snapshot is malformed or of another version at {exc}; "
            "run `reconcile plan` again"
        ) from None
    return known
