"""The plan's JSON form (`plan --format json`, `plan --out FILE`) and stale-plan detection.

A saved plan records the config digest and a snapshot of exactly the ConnectWise state it
was computed from (mapped agreements, their managed additions, the catalog items it uses).
`apply FILE` re-derives the plan from the lists read now and the snapshot's additions
(snapshot.py), refusing when anything moved, and reads each agreement it will write to
just before its first write, skipping it when it no longer matches the snapshot: applying
a plan to a state it was not made for is how duplicates and wrong quantities happen.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, overload

import jsonschema

from reconciler.config.resources import load_schema
from reconciler.core import money
from reconciler.core.errors import ReconcileError
from reconciler.core.files import read_json
from reconciler.core.model import ManagedProducts, PeriodKind, Removal
from reconciler.core.periods import Period
from reconciler.core.plan import Action, Change, CustomerPlan, Plan
from reconciler.core.state import ActualState
from reconciler.plan.jsonshape import Obj, ShapeError
from reconciler.plan.snapshot import additions_snapshot as additions_snapshot  # re-exported
from reconciler.secure.untrusted import json_dumps

FORMAT = "zerotek-cw-reconciler/plan@1"


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def change_to_dict(c: Change) -> dict[str, Any]:
    # `cause` only where it holds, as with --baseline (DESIGN 12.7, 13.1)
    marks: dict[str, Any] = {"cause": "unmapped"} if c.orphan else {}
    return {
        "action": c.action.value,
        "sku": c.sku,
        "product": c.product,
        "product_id": c.product_id,
        "agreement_id": c.agreement_id,
        "addition_id": c.addition_id,
        "before": c.before,
        "after": c.after,
        "unit_price": money.optional(c.unit_price),
        "unit_cost": money.optional(c.unit_cost),
        "revenue_delta": money.optional(c.revenue_delta),
        "effective_date": _date(c.effective_date),
        "description": c.description,
        "price_change": price_change(c),
        "no_charge": c.no_charge,
        **marks,
    }


def price_change(c: Change) -> dict[str, str | None] | None:
    """A repriced line's {"before", "after"} unit price (DESIGN 13.4), else None."""
    if not c.repriced:
        return None
    return {"before": money.optional(c.price_before), "after": money.plain(c.unit_price)}


def customer_to_dict(cp: CustomerPlan) -> dict[str, Any]:
    return {
        "id": cp.customer_id,
        "name": cp.name,
        "company": cp.company,
        "agreement": {
            "id": cp.agreement_id,
            "name": cp.agreement_name,
            "end_date": _date(cp.agreement_end_date),
        },
        "managed": cp.managed,
        "managed_quantity": cp.managed_quantity,
        "revenue_delta": money.optional(cp.revenue_delta),
        "changes": [change_to_dict(c) for c in cp.changes],
        "errors": list(cp.errors),
        "warnings": list(cp.warnings),
    }


class CustomerDicts(Sequence[dict[str, Any]]):
    """A plan's customers in their JSON shape, each built when read and not kept: comparing
    a 10,000-customer plan with its file (verify) never holds the whole converted list."""

    def __init__(self, customers: Sequence[CustomerPlan]) -> None:
        self._customers = customers

    def __len__(self) -> int:
        return len(self._customers)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [customer_to_dict(cp) for cp in self._customers[i]]
        return customer_to_dict(self._customers[i])


def plan_to_dict(
    plan: Plan, state: dict[str, Any] | None = None, *, lazy_customers: bool = False
) -> dict[str, Any]:
    """The stable JSON shape (schemas/plan.schema.json). `state` only in saved plan files.
    `lazy_customers`: the customers as `CustomerDicts` (for comparing, not for dumping)."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "period": {
            "kind": plan.period.kind.value,
            "start": plan.period.start.isoformat(),
            "end": plan.period.end.isoformat(),
            "as_of": plan.period.as_of.isoformat(),
        },
        "config_digest": plan.config_digest,
        "state_fingerprint": plan.state_fingerprint,
        "currency": plan.currency,
        "selection": None if plan.selection is None else list(plan.selection),
        "removal": plan.removal.value,
        "safe": not plan.unsafe,
        "unsafe_reasons": list(plan.unsafe_reasons),
        "summary": {
            "customers": len(plan.customers),
            "customers_with_changes": sum(1 for cp in plan.customers if cp.changes),
            "customers_with_errors": sum(1 for cp in plan.customers if cp.errors),
            "add": plan.count(Action.ADD),
            "update": plan.count(Action.UPDATE),
            "remove": plan.count(Action.REMOVE),
            "revenue_delta": money.optional(plan.revenue_delta),
        },
        "warnings": list(plan.warnings),
        "unmapped_skus": [
            {"customer_id": cid, "sku": sku, "users": users}
            for cid, sku, users in plan.unmapped_skus
        ],
        "customers": (
            CustomerDicts(plan.customers)
            if lazy_customers
            else [customer_to_dict(cp) for cp in plan.customers]
        ),
    }
    if state is not None:
        data["state"] = state
    return data


def dumps(plan: Plan, state: dict[str, Any] | None = None, *, pretty: bool = False) -> str:
    """Compact unless `pretty`: indenting switches json to its pure-Python encoder, several
    times slower and 3x the memory for a 10,000-customer plan file nobody reads by eye."""
    data = plan_to_dict(plan, state)
    if pretty:
        return json_dumps(data, indent=2) + "\n"
    return json_dumps(data, separators=(",", ":")) + "\n"


@functools.cache
def _keys() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The keys plan.schema.json allows on a customer, its agreement and a change."""
    schema = load_schema("plan.schema.json")
    customer = schema["properties"]["customers"]["items"]["properties"]
    change = schema["$defs"]["change"]["properties"]
    return frozenset(customer), frozenset(customer["agreement"]["properties"]), frozenset(change)


def _change(ch: Obj, customer_id: str) -> Change:
    try:
        action = Action(ch.text("action"))
    except ValueError:
        raise ShapeError(f"{ch.path}/action: expected add, update or remove") from None
    repriced, price_before = _price_change(ch)
    return Change(
        action=action,
        customer_id=customer_id,
        sku=ch.text("sku"),
        product=ch.text("product"),
        product_id=ch.integer("product_id"),
        agreement_id=ch.integer("agreement_id"),
        addition_id=ch.opt_integer("addition_id"),
        before=ch.integer("before", minimum=0),
        after=ch.integer("after", minimum=0),
        unit_price=ch.decimal("unit_price"),
        effective_date=ch.opt_date("effective_date"),
        unit_cost=ch.opt_decimal("unit_cost"),
        description=ch.opt_text("description"),
        repriced=repriced,
        price_before=price_before,
        no_charge=ch.has("no_charge") and ch.boolean("no_charge"),
        orphan=ch.has("cause") and ch.text("cause") == "unmapped",
    )


def _price_change(ch: Obj) -> tuple[bool, Decimal | None]:
    """(repriced, price before) of a change read back; plans saved before prices were
    desired state (no key) reprice nothing. Its `after` is `unit_price`, which the
    re-derived plan's comparison checks (verify), as every other field."""
    price = ch.opt_obj("price_change", frozenset({"before", "after"}))
    if price is None:
        return False, None
    price.decimal("after")
    return True, price.opt_decimal("before")


def _customer(c: Obj) -> CustomerPlan:
    _, agreement_keys, change_keys = _keys()
    customer_id = c.text("id")
    agreement = c.obj("agreement", agreement_keys)
    return CustomerPlan(
        customer_id=customer_id,
        name=c.text("name"),
        company=c.text("company"),
        agreement_id=agreement.opt_integer("id"),
        agreement_name=agreement.opt_text("name"),
        agreement_end_date=agreement.opt_date("end_date"),
        changes=tuple(_change(ch, customer_id) for ch in c.objs("changes", change_keys)),
        errors=c.texts("errors"),
        warnings=c.texts("warnings"),
        managed=c.integer("managed"),
        managed_quantity=c.integer("managed_quantity"),
    )


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """The plan in `data`, every field read with its type checked (ShapeError names the
    JSON path of the first defect): a saved plan comes from outside."""
    top = Obj(data, "")
    p = top.obj("period")
    try:
        kind, removal = PeriodKind(p.text("kind")), Removal(top.text("removal"))
    except ValueError as exc:
        raise ShapeError(str(exc)) from None
    return Plan(
        period=Period(kind, p.date("start"), p.date("end"), p.date("as_of")),
        customers=tuple(_customer(c) for c in top.objs("customers", _keys()[0])),
        warnings=top.texts("warnings"),
        unsafe_reasons=top.texts("unsafe_reasons"),
        unmapped_skus=tuple(
            (u.text("customer_id"), u.text("sku"), u.integer("users"))
            for u in top.objs("unmapped_skus")
        ),
        config_digest=top.text("config_digest"),
        state_fingerprint=top.text("state_fingerprint"),
        removal=removal,
        currency=top.text("currency"),
        selection=(
            top.texts("selection")
            if isinstance(data, dict) and data.get("selection") is not None
            else None
        ),
    )


def load(path: Path) -> tuple[Plan, dict[str, Any]]:
    """Read a saved plan: the plan and its state snapshot (see `load_with_data`)."""
    plan, state, _ = load_with_data(path)
    return plan, state


def load_with_data(path: Path) -> tuple[Plan, dict[str, Any], dict[str, Any]]:
    """Read a saved plan; any defect is one clear line naming the file. Returns the plan,
    its state snapshot and the file's JSON as read (what `apply` verifies, DESIGN 12.4).

    The envelope (everything but the customers) is checked against plan.schema.json; the
    customers, thousands of them, are checked field by field as they are read, which is
    what a full schema pass over them would catch at a fraction of its cost. The state
    snapshot is an object whose fingerprint the plan carries (see engine.verify_saved)."""
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise ReconcileError(f"{path}: plan file not found") from None
    except IsADirectoryError:
        raise ReconcileError(f"{path}: is a directory, not a plan file") from None
    except OSError as exc:
        raise ReconcileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f":{exc.lineno}:{exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ReconcileError(f"{path}{where}: not a plan file (invalid JSON)") from None
    except ValueError as exc:  # too large, or nested too deeply (files.read_json)
        raise ReconcileError(f"{path}: not a plan file ({exc})") from None
    envelope = {**data, "customers": []} if isinstance(data, dict) else data
    validator = jsonschema.Draft202012Validator(load_schema("plan.schema.json"))
    error = jsonschema.exceptions.best_match(validator.iter_errors(envelope))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ReconcileError(f"{path}: not a valid plan file at {where}: {error.message}")
    if "state" not in data:
        raise ReconcileError(
            f"{path}: has no state snapshot; save plans with `reconcile plan --out FILE`"
        )
    try:
        return plan_from_dict(data), data["state"], data
    except ShapeError as exc:
        raise ReconcileError(f"{path}: not a valid plan file at {exc}") from None


# --- the state snapshot and its fingerprint ------------------------------------------------


def snapshot(plan: Plan, actual: ActualState, products: ManagedProducts) -> dict[str, Any]:
    """The part of ConnectWise a plan depends on, in a canonical, comparable form."""
    agreements: dict[str, Any] = {}
    # A customer's own agreement, and any its orphans' removals act on (DESIGN 13.1).
    touched = sorted(
        {
            i
            for cp in plan.customers
            if not cp.errors
            for i in (cp.agreement_id, *(c.agreement_id for c in cp.changes))
            if i is not None
        }
    )
    for agreement_id in touched:
        a = actual.agreements.get(agreement_id)
        additions = additions_snapshot(
            actual.additions.get(agreement_id, ()), products, plan.period.as_of
        )
        agreements[str(agreement_id)] = {
            "status": a.status if a else None,
            "cancelled": a.cancelled if a else None,
            "end_date": _date(a.end_date) if a else None,
            "bill_start_date": _date(a.bill_start_date) if a else None,
            "additions": additions,
        }
    catalog = {
        ident: {"id": item.id, "inactive": item.inactive}
        for ident, item in sorted(actual.catalog.items())
        if ident in products
    }
    return {"agreements": agreements, "catalog": catalog}


def fingerprint(state: dict[str, Any]) -> str:
    """SHA-256 of `json.dumps(state, sort_keys=True, separators=(",", ":"))`, hashed in
    pieces (one per agreement) so the text of a 10,000-agreement state is never whole."""
    digest = hashlib.sha256()
    for piece in _canonical(state, depth=2):
        digest.update(piece.encode())
    return digest.hexdigest()


def _canonical(value: Any, depth: int) -> Iterable[str]:
    if depth == 0 or not isinstance(value, dict) or not value:
        yield json.dumps(value, sort_keys=True, separators=(",", ":"))
        return
    for i, key in enumerate(sorted(value)):  # JSON object keys: always strings
        yield ("{" if i == 0 else ",") + json.dumps(key) + ":"
        yield from _canonical(value[key], depth - 1)
    yield "}"


def describe_drift(saved: dict[str, Any], current: dict[str, Any], limit: int = 10) -> list[str]:
    """Human lines for what moved between two snapshots, one per difference (plan.drift)."""
    from reconciler.plan import drift

    return drift.describe(saved, current, limit)
