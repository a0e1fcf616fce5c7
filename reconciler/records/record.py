"""The run record, typed: what one apply attempt did (schemas/run.schema.json): its period,
customers (`customers`), the totals of what was written, its e-mails' outcomes, and its
outcome, settled from the journaled writes.

Pure data, no I/O: `runlog` writes and reads it (and journals into it), `runview` renders it
as Markdown and text, `notify` as e-mail. All three share these types, so the figures a
person reads anywhere are computed once, here, from the same journaled outcomes. Its JSON
form is built here from `recordjson`'s parts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reconciler.core import money
from reconciler.core.periods import Period
from reconciler.core.plan import Action, Plan
from reconciler.core.results import ApplyResult, CustomerResult
from reconciler.records.customers import UNKNOWN, CustomerRecord
from reconciler.records.recordjson import customer_from_json, customer_json, flat

# incomplete: started, never finished (process killed); interrupted: SIGINT/SIGTERM.
OUTCOMES = ("incomplete", "success", "partial", "failed", "interrupted")


def stamp(moment: dt.datetime) -> str:
    """UTC, second precision (naive datetimes mean UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    # The HTTP requests the run sent, per API (net.stats.RequestStats.to_json): {"connectwise":
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
        data = flat(self)
        data["period"] = flat(self.period)
        data["customers"] = [customer_json(c) for c in self.customers] if customers else []
        data["totals"] = flat(self.totals)
        data["warnings"] = list(self.warnings)
        data["emails"] = [{**flat(e), "to": list(e.to)} for e in self.emails]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """Raises KeyError/TypeError/ValueError on a record that is not one."""
        customers = [customer_from_json(c) for c in data["customers"]]
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
