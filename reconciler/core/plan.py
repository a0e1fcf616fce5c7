"""The plan: what a sync will change, per customer (`CustomerPlan`) and line (`Change`: add,
update or remove), with the plan-wide warnings and safety verdict (`Plan`). Made by the
planner (`reconciler.plan`), shown by `plan`, written by `apply` exactly as planned.

All frozen, `Decimal` money, like the rest of the model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from reconciler.core.model import Removal
from reconciler.core.periods import Period


class Action(StrEnum):
    ADD = "add"
    UPDATE = "update"
    REMOVE = "remove"


@dataclass(frozen=True)
class Change:
    action: Action
    customer_id: str
    sku: str
    product: str  # catalog identifier
    product_id: int
    agreement_id: int
    addition_id: int | None  # None for add
    before: int  # quantity before (0 for add)
    after: int  # quantity after (0 for remove)
    unit_price: Decimal  # what the line bills at after the change
    effective_date: dt.date | None = None  # add: the date sent as effectiveDate
    unit_cost: Decimal | None = None
    description: str | None = None
    # The line is not `Billable` in ConnectWise (DESIGN 13.3): its quantity is still
    # managed, its money counts 0 everywhere ("no charge").
    no_charge: bool = False
    # An orphan (DESIGN 13.1): a line the ledger says we wrote that no current mapping
    # manages; `sku` and `customer_id` are then the ledger's ("was SKU S of customer C").
    orphan: bool = False
    # An update that also sets the line's unitPrice to `unit_price` (DESIGN 13.4);
    # `price_before` is what it billed at (None: ConnectWise holds no price on it).
    repriced: bool = False
    price_before: Decimal | None = None
    # Set only on a change shown in the plan of a customer on another agreement (an orphan
    # left on the agreement its customer moved away from, 13.1): the name of `agreement_id`,
    # as read, so it is shown under that agreement. Not in plan files (the id is).
    agreement_name: str | None = field(default=None, compare=False)

    @property
    def revenue_delta(self) -> Decimal:
        if self.no_charge:
            return Decimal(0)
        if self.repriced:
            return self.after * self.unit_price - self.before * (self.price_before or Decimal(0))
        return (self.after - self.before) * self.unit_price


@dataclass(frozen=True)
class CustomerPlan:
    customer_id: str
    name: str
    company: str
    agreement_id: int | None = None
    agreement_name: str | None = None
    agreement_end_date: dt.date | None = None
    changes: tuple[Change, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    managed: int = 0  # active managed additions with quantity > 0 (safety denominators)
    managed_quantity: int = 0  # their total quantity

    @property
    def revenue_delta(self) -> Decimal:
        return sum((c.revenue_delta for c in self.changes), Decimal(0))


@dataclass(frozen=True)
class Plan:
    period: Period
    customers: tuple[CustomerPlan, ...]
    warnings: tuple[str, ...] = ()  # plan-wide: unmapped ZeroTek customers, unmapped SKUs
    unsafe_reasons: tuple[str, ...] = ()
    unmapped_skus: tuple[tuple[str, str, int], ...] = ()  # (customer id, sku, users)
    config_digest: str = ""
    state_fingerprint: str = ""
    removal: Removal = Removal.CANCEL
    currency: str = "USD"
    # Users ZeroTek reported for the planned customers (every SKU); None when not known
    # (a plan read back from a file). 0 with managed additions trips the wipe guard.
    reported_users: int | None = field(default=None, compare=False)
    # The customer ids planned when not all of them (`--customer`, expanded to every share
    # of a shared agreement); None = every mapped customer. A saved plan is re-derived for
    # exactly this selection.
    selection: tuple[str, ...] | None = None

    @property
    def unsafe(self) -> bool:
        return bool(self.unsafe_reasons)

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for cp in self.customers for c in cp.changes)

    @property
    def has_errors(self) -> bool:
        return any(cp.errors for cp in self.customers)

    @property
    def revenue_delta(self) -> Decimal:
        return sum((c.revenue_delta for c in self.changes), Decimal(0))

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    def removal_of(self, change: Change) -> Removal:
        """How this plan removes `change`'s addition: what `plan` shows and exactly what
        `apply` sends (render and apply both ask here). The policy (`billing.removal`),
        except that an addition starting after the as-of day (dated at a later
        billStartDate) cannot be cancelled before it starts (ConnectWise answers 400), so
        `cancel` sets its quantity to 0 instead (which also counts as removed, DESIGN 11)."""
        starts = change.effective_date
        if self.removal is Removal.CANCEL and starts is not None and starts > self.period.as_of:
            return Removal.ZERO
        return self.removal
