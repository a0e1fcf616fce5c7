"""The run record, typed: what one apply attempt did (schemas/run.schema.json).

Pure data, no I/O: `runlog` writes and reads it (and journals into it), `runview` renders it
as Markdown and text, `notify` as e-mail. All three share these types, so the figures a
person reads anywhere are computed once, here, from the same journaled outcomes.

A change's `ok` is the journal: True = written (committed in ConnectWise), False = failed,
"unknown" = sent but its outcome could not be settled even by re-reading, None = never
attempted. Totals count only `ok is True`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple

from reconciler.core import money
from reconciler.core.model import (
    Action,
    ApplyResult,
    Change,
    ChangeResult,
    CustomerPlan,
    CustomerResult,
    Period,
    Plan,
)
from reconciler.plan.orphans import orphan_reason

Ok = bool | Literal["unknown"] | None
UNKNOWN: Literal["unknown"] = "unknown"
# incomplete: started, never finished (process killed); interrupted: SIGINT/SIGTERM.
OUTCOMES = ("incomplete", "success", "partial", "failed", "interrupted")


def stamp(moment: dt.datetime) -> str:
    """UTC, second precision (naive datetimes mean UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ChangeRecord:
    action: str  # add | update | remove
    sku: str
    product: str
    before: int
    after: int
    unit_price: str  # exact decimal, as a string
    revenue_delta: str
    ok: Ok = None
    error: str | None = None
    note: str | None = None
    # What the plain figures do not say: an orphan's "no longer mapped: was SKU S of
    # customer C" (13.1), "no charge" for a line that is not Billable (13.3); else None.
    why: str | None = None
    # A repriced line (DESIGN 13.4): {"before": price or None, "after": price}; None when
    # its price stays (and in records written before prices were desired state).
    price_change: dict[str, str | None] | None = None
    # The agreement the change is written to when it is not its customer's: an orphan left
    # on the agreement the customer moved away from (13.1), shown under that agreement.
    # None otherwise (and in records written before it was recorded).
    agreement: AgreementRef | None = None

    @property
    def committed(self) -> bool:
        return self.ok is True

    def price_words(self, show: Callable[[str], str]) -> str:
        """The unit price for people, each figure through `show`: `4.00 → 4.25` for a
        repriced line (`none` when it had no price), else the one price."""
        change = self.price_change
        if not isinstance(change, dict) or not isinstance(change.get("after"), str):
            return show(self.unit_price)
        before = change.get("before")
        was = show(before) if isinstance(before, str) else "none"
        return f"{was} → {show(str(change['after']))}"

    def settle(self, result: ChangeResult) -> None:
        self.ok = UNKNOWN if result.unknown else result.ok
        self.error, self.note = result.error, result.note

    @classmethod
    def of(cls, change: Change, home: int | None) -> ChangeRecord:
        """The record of a change planned for a customer on agreement `home`."""
        where = change.agreement_id
        elsewhere = None if where == home else AgreementRef(where, change.agreement_name, None)
        return cls(
            action=change.action.value,
            sku=change.sku,
            product=change.product,
            before=change.before,
            after=change.after,
            unit_price=money.plain(change.unit_price),
            revenue_delta=money.plain(change.revenue_delta),
            why=_why(change),
            price_change=_price_change(change),
            agreement=elsewhere,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChangeRecord:
        where = data.get("agreement")
        return cls(**{**data, "agreement": AgreementRef(**where) if where else None})


def _why(change: Change) -> str | None:
    words = [orphan_reason(change)] if change.orphan else []
    words += ["no charge"] if change.no_charge else []
    return "; ".join(words) or None


def _price_change(change: Change) -> dict[str, str | None] | None:
    if not change.repriced:
        return None
    return {"before": money.optional(change.price_before), "after": money.plain(change.unit_price)}


@dataclass
class AgreementRef:
    id: int | None
    name: str | None
    end_date: str | None

    def text(self) -> str:
        if self.id is None:
            return "(unresolved)"
        # None: a removed customer's agreement, not read by the plan (an orphan's)
        return f"#{self.id}" if self.name is None else f"{self.name} (#{self.id})"


class Elsewhere(NamedTuple):
    """A customer's changes written to another agreement than its own."""

    agreement: AgreementRef
    changes: list[ChangeRecord]


@dataclass
class CustomerRecord:
    id: str
    name: str
    company: str
    agreement: AgreementRef
    changes: list[ChangeRecord]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verified: bool = False

    @classmethod
    def of(cls, cp: CustomerPlan) -> CustomerRecord:
        end = cp.agreement_end_date
        return cls(
            id=cp.customer_id,
            name=cp.name,
            company=cp.company,
            agreement=AgreementRef(
                cp.agreement_id, cp.agreement_name, end.isoformat() if end else None
            ),
            changes=[ChangeRecord.of(c, cp.agreement_id) for c in cp.changes],
            errors=list(cp.errors),
            warnings=list(cp.warnings),
        )

    @property
    def ok(self) -> bool:
        return not self.errors and all(c.committed for c in self.changes)

    def elsewhere(self) -> list[Elsewhere]:
        """The changes written to other agreements than the customer's (by agreement id):
        orphans left on the agreement it moved away from (13.1)."""
        found: dict[int | None, Elsewhere] = {}
        for ch in self.changes:
            if ch.agreement is not None:
                found.setdefault(ch.agreement.id, Elsewhere(ch.agreement, [])).changes.append(ch)
        return [found[i] for i in sorted(found, key=lambda i: i or 0)]

    def all_errors(self) -> list[str]:
        """The customer's errors plus its failed or unsettled changes' (distinct)."""
        failed = [c.error for c in self.changes if c.ok in (False, UNKNOWN) and c.error]
        return list(dict.fromkeys([*self.errors, *failed]))


@dataclass
class PeriodRecord:
    kind: str
    start: str
    end: str
    as_of: str

    @classmethod
    def of(cls, period: Period) -> PeriodRecord:
        return cls(
            period.kind.value,
            period.start.isoformat(),
            period.end.isoformat(),
            period.as_of.isoformat(),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.start}..{self.end}"


@dataclass
class Totals:
    """Counts of what was actually written (changes with ok = true)."""

    customers: int = 0
    customers_changed: int = 0
    adds: int = 0
    updates: int = 0
    removes: int = 0
    quantity_delta: int = 0
    revenue_delta: str = "0.00"
    errors: int = 0
    unknown: int = 0  # writes sent whose outcome could not be settled

    @property
    def writes(self) -> int:
        return self.adds + self.updates + self.removes

    def quantities(self) -> str:
        return (
            f"{self.writes} ({self.adds} added, {self.updates} updated, "
            f"{self.removes} removed; net {self.quantity_delta:+d} users)"
        )

    @classmethod
    def of(cls, customers: list[CustomerRecord], error: str | None) -> Totals:
        done = [[c for c in cust.changes if c.committed] for cust in customers]
        flat = [c for changes in done for c in changes]
        return cls(
            customers=len(customers),
            customers_changed=sum(1 for changes in done if changes),
            adds=sum(1 for c in flat if c.action == Action.ADD),
            updates=sum(1 for c in flat if c.action == Action.UPDATE),
            removes=sum(1 for c in flat if c.action == Action.REMOVE),
            quantity_delta=sum(c.after - c.before for c in flat),
            revenue_delta=money.plain(sum((Decimal(c.revenue_delta) for c in flat), Decimal(0))),
            errors=sum(len(c.all_errors()) for c in customers) + (1 if error else 0),
            unknown=sum(1 for cust in customers for c in cust.changes if c.ok == UNKNOWN),
        )


@dataclass(frozen=True)
class EmailOutcome:
    """One e-mail's fate, as the run log records it."""

    kind: str  # sync-outcome | agreement-ending | unmapped-sku
    to: tuple[str, ...]
    sent: bool
    detail: str  # "sent" or "not sent: <why>"


@dataclass
class RunRecord:
    run_id: str
    trigger: str
    started: str
    period: PeriodRecord
    customers: list[CustomerRecord]
    finished: str | None = None
    outcome: str = "incomplete"
    totals: Totals = field(default_factory=Totals)
    warnings: list[str] = field(default_factory=list)
    emails: list[EmailOutcome] = field(default_factory=list)
    error: str | None = None
    interrupted_by: str | None = None  # SIGINT | SIGTERM when outcome is interrupted
    currency: str = "USD"  # billing.currency: names every money figure (DESIGN 12.2)
    # What ConnectWise billed for the managed products before the run:
    # {"seats": int, "monthly_revenue": "exact decimal", "currency": "USD"}; None when
    # the run never read it (a failure before planning, records written before 0.2).
    billed_before: dict[str, Any] | None = None
    # The HTTP requests the run sent, per API (http.RequestStats.to_json): {"connectwise":
    # {"requests", "by_kind", "retries", "status_429", "wait_seconds", "request_seconds",
    # "bytes_received", "bytes_sent"}, "zerotek": {...}}. None in records written before
    # requests were counted (and while a run is incomplete).
    requests: dict[str, dict[str, Any]] | None = None

    def billed_after(self) -> tuple[int, Decimal, str] | None:
        """(seats, revenue per month, currency) after the run: before + committed writes."""
        if not self.billed_before:
            return None
        seats = int(self.billed_before["seats"])
        revenue = Decimal(self.billed_before["monthly_revenue"])
        for c in self.customers:
            for ch in c.changes:
                if ch.committed:
                    seats += ch.after - ch.before
                    revenue += Decimal(ch.revenue_delta)
        return seats, revenue, str(self.billed_before.get("currency") or "USD")

    @classmethod
    def start(
        cls,
        run_id: str,
        trigger: str,
        started: dt.datetime,
        period: Period,
        plan: Plan | None,
        currency: str | None = None,
    ) -> RunRecord:
        customers = [CustomerRecord.of(cp) for cp in plan.customers] if plan else []
        record = cls(
            run_id=run_id,
            trigger=trigger,
            started=stamp(started),
            period=PeriodRecord.of(period),
            customers=customers,
            warnings=list(plan.warnings) if plan else [],
            currency=plan.currency if plan else (currency or "USD"),
        )
        record.retotal()
        return record

    def retotal(self) -> None:
        self.totals = Totals.of(self.customers, self.error)

    def settle_customer(self, result: CustomerResult) -> CustomerRecord | None:
        """Take in a customer's apply result: each write's outcome, its errors, verdict.
        Returns the customer's record (None: not in this run)."""
        # By id through an index built once: a scan per customer was quadratic (seconds at
        # 10,000 customers). Not a dataclass field, so never serialised.
        index: dict[str, CustomerRecord] | None = self.__dict__.get("_by_id")
        if index is None or len(index) != len(self.customers):
            index = self.__dict__["_by_id"] = {c.id: c for c in self.customers}
        cust = index.get(result.plan.customer_id)
        if cust is None:
            return None
        for r in result.results:
            where = next((j for j, c in enumerate(result.plan.changes) if c is r.change), None)
            if where is not None and where < len(cust.changes):
                cust.changes[where].settle(r)
        cust.errors = list(dict.fromkeys([*cust.errors, *result.errors]))
        cust.verified = result.verified
        return cust

    def end(
        self,
        finished: dt.datetime,
        *,
        outcome: str | None = None,
        error: str | None = None,
        interrupted_by: str | None = None,
    ) -> None:
        """Close the record: error, totals, finish time and outcome (settled from the
        journal unless given)."""
        if error is not None:
            self.error = error
        self.interrupted_by = interrupted_by
        self.retotal()
        self.finished = stamp(finished)
        self.outcome = outcome or self.settle_outcome()

    @classmethod
    def of_result(cls, result: ApplyResult, run_id: str, trigger: str = "manual") -> RunRecord:
        """The finished record of a whole apply result (what runlog ends up writing)."""
        record = cls.start(run_id, trigger, result.started, result.plan.period, result.plan)
        for customer in result.customers:
            record.settle_customer(customer)
        record.end(result.finished)
        return record

    def settle_outcome(self) -> str:
        """success: every customer synced; partial: some writes or customers did; failed:
        nothing was written; interrupted: a stop signal ended it (whatever was written)."""
        if self.interrupted_by:
            return "interrupted"
        if self.error is None and all(c.ok for c in self.customers):
            return "success"
        progress = any(
            (c.ok and c.changes) or any(ch.committed for ch in c.changes) for c in self.customers
        )
        return "partial" if progress else "failed"

    def to_json(self, *, customers: bool = True) -> dict[str, Any]:
        """What asdict() gives (same keys, same order), built directly: asdict deep-copies
        every value and took seconds per write at 10,000 customers. Without `customers`
        their list is left empty (runlog streams them one by one)."""
        data = _flat(self)
        data["period"] = _flat(self.period)
        data["customers"] = [customer_json(c) for c in self.customers] if customers else []
        data["totals"] = _flat(self.totals)
        data["warnings"] = list(self.warnings)
        data["emails"] = [{**_flat(e), "to": list(e.to)} for e in self.emails]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """Raises KeyError/TypeError/ValueError on a record that is not one."""
        customers = [
            CustomerRecord(
                id=c["id"],
                name=c["name"],
                company=c["company"],
                agreement=AgreementRef(**c["agreement"]),
                changes=[ChangeRecord.from_json(ch) for ch in c["changes"]],
                errors=list(c["errors"]),
                warnings=list(c["warnings"]),
                verified=bool(c["verified"]),
            )
            for c in data["customers"]
        ]
        return cls(
            run_id=data["run_id"],
            trigger=data["trigger"],
            started=data["started"],
            finished=data["finished"],
            outcome=data["outcome"],
            period=PeriodRecord(**data["period"]),
            totals=Totals(**data["totals"]),
            customers=customers,
            warnings=list(data["warnings"]),
            emails=[EmailOutcome(**{**e, "to": tuple(e["to"])}) for e in data["emails"]],
            error=data["error"],
            interrupted_by=data.get("interrupted_by"),
            billed_before=data.get("billed_before"),
            currency=data.get("currency", "USD"),  # records before 12.2 were all USD
            requests=data.get("requests"),
        )


@dataclass(frozen=True)
class RunSummary:
    """One line of the Activity page (INDEX.md, `reconcile activity`)."""

    run_id: str
    trigger: str
    started: str
    finished: str | None
    outcome: str  # one of OUTCOMES, or unreadable
    period: str
    customers: int
    customers_changed: int
    quantities_updated: int
    revenue_delta: str
    errors: int
    path: Path  # the run's JSON file
    billed: tuple[int, Decimal, str] | None = None  # seats, revenue/month, currency after
    period_end: str | None = None

    @property
    def md_link(self) -> str:
        """The Markdown twin, relative to runs/ (for INDEX.md)."""
        return "/".join((*self.path.parent.parts[-2:], f"{self.run_id}.md"))

    def as_json(self) -> dict[str, Any]:
        skip = ("path", "billed", "period_end")
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in skip}
        data["path"] = self.path.as_posix()
        return data


@functools.cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def customer_json(c: CustomerRecord) -> dict[str, Any]:
    """One customer of a record as its JSON object."""
    return {
        **_flat(c),
        "agreement": _flat(c.agreement),
        "changes": [
            {**_flat(ch), "agreement": _flat(ch.agreement) if ch.agreement else None}
            for ch in c.changes
        ],
        "errors": list(c.errors),
        "warnings": list(c.warnings),
    }


def _flat(obj: Any) -> dict[str, Any]:
    """A dataclass's fields, one level deep (the caller converts nested values)."""
    kind: type = type(obj)
    return {name: getattr(obj, name) for name in _names(kind)}
