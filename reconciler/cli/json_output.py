"""The `--format json` documents of `apply` (schemas/apply.schema.json) and
`check-unmapped` (schemas/unmapped.schema.json). Pure functions of what the commands
already hold; stable: every key is always present (null when it does not apply), new
keys may be added, none removed or changed in meaning.

Money is an exact decimal string, as in plans and run records: the figure shown is the
figure sent.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.core.money import optional as optional_money
from reconciler.core.periods import Period
from reconciler.records.customers import ChangeRecord, CustomerRecord
from reconciler.records.record import EmailOutcome, RunRecord

if TYPE_CHECKING:  # the report's module (rapidfuzz, discover) is not needed by apply
    from reconciler.insight.report import Row

# A change's `ok` (the journal) as a word.
RESULTS = {True: "written", False: "failed", "unknown": "unknown", None: "not-applied"}


def _change(ch: ChangeRecord) -> dict[str, Any]:
    return {
        "action": ch.action,
        "sku": ch.sku,
        "product": ch.product,
        "before": ch.before,
        "after": ch.after,
        "unit_price": ch.unit_price,
        "revenue_delta": ch.revenue_delta,
        "result": RESULTS.get(ch.ok, "unknown"),
        "error": ch.error,
        "note": ch.note,
        "price_change": ch.price_change,
    }


def _customer(c: CustomerRecord) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "company": c.company,
        "agreement_id": c.agreement.id,
        "agreement_name": c.agreement.name,
        "ok": c.ok,
        "verified": c.verified,
        "changes": [_change(ch) for ch in c.changes],
        "errors": c.all_errors(),
        "warnings": list(c.warnings),
    }


def _email(e: EmailOutcome) -> dict[str, Any]:
    return {"kind": e.kind, "to": list(e.to), "sent": e.sent, "detail": e.detail}


def apply_json(
    record: RunRecord | None, path: Path | None, exit_code: int, error: str | None = None
) -> dict[str, Any]:
    """What `apply --format json` prints. `record` is the run it recorded (None when it
    stopped before recording one: declined, locked, deactivated, bad options); `error`
    why the command failed as a whole (else the record's own error)."""
    if record is None:
        return {
            "exit_code": exit_code,
            "outcome": "not-run",
            "error": error,
            "run_id": None,
            "record": None,
            "period": None,
            "currency": None,
            "totals": None,
            "customers": [],
            "warnings": [],
            "emails": [],
            "requests": None,
        }
    totals = record.totals
    period = record.period
    return {
        "exit_code": exit_code,
        "outcome": record.outcome,
        "error": error if error is not None else record.error,
        "run_id": record.run_id,
        "record": None if path is None else path.as_posix(),
        "period": asdict(period),
        "currency": record.currency,
        "totals": {
            "customers": totals.customers,
            "customers_changed": totals.customers_changed,
            "writes": totals.writes,
            "adds": totals.adds,
            "updates": totals.updates,
            "removes": totals.removes,
            "quantity_delta": totals.quantity_delta,
            "revenue_delta": totals.revenue_delta,
            "errors": totals.errors,
            "unknown": totals.unknown,
        },
        "customers": [_customer(c) for c in record.customers],
        "warnings": list(record.warnings),
        "emails": [_email(e) for e in record.emails],
        "requests": record.requests,
    }


def _usage_row(row: Row) -> dict[str, Any]:
    return {
        "customer_id": row.customer_id,
        "customer_name": row.customer_name,
        "sku": row.sku,
        "users": row.zerotek_users,
        "product": row.product,
        "unit_price": optional_money(row.unit_price),
        "per_month": optional_money(row.amount),
    }


def unmapped_json(
    period: Period,
    currency: str,
    skus: list[Row],
    customers: list[Row],
    price_note: str | None,
    email: EmailOutcome | None,
) -> dict[str, Any]:
    """What `check-unmapped --format json` prints: mapped customers using unmapped SKUs,
    and ZeroTek customers with usage but no mapping, each valued at the catalog price
    (null when it has none, or ConnectWise could not be read: `price_note` says why)."""
    return {
        "period": {
            "kind": period.kind.value,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "as_of": period.as_of.isoformat(),
        },
        "currency": currency,
        "unmapped_skus": [_usage_row(r) for r in skus],
        "unmapped_customers": [_usage_row(r) for r in customers],
        "price_note": price_note,
        "email": None if email is None else _email(email),
    }
