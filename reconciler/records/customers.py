"""A run record's customers: each one's record (`CustomerRecord`), the agreement it is
written to (`AgreementRef`) and its changes (`ChangeRecord`), made from the plan when the
run starts (`of`) and settled as the apply's outcomes arrive. Pure data, no I/O; their JSON
form is `recordjson`.

A change's `ok` is the journal: True = written (committed in ConnectWise), False = failed,
"unknown" = sent but its outcome could not be settled even by re-reading, None = never
attempted. Totals count only `ok is True`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from reconciler.core import money
from reconciler.core.plan import Change, CustomerPlan
from reconciler.core.results import ChangeResult
from reconciler.plan.orphans import orphan_reason

Ok = bool | Literal["unknown"] | None
UNKNOWN: Literal["unknown"] = "unknown"


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
