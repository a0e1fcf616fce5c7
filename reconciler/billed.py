"""What ConnectWise bills for the products we manage: seats and revenue per month. Pure.

Feeds the chart at the top of runs/INDEX.md. Counted over the agreements the plan
resolved (each once, also when customers share one): the active additions of managed
products with a quantity, at their own unit price. After a run, the committed changes are
added on top.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from reconciler.model import ActualState, Change, Config, Plan


@dataclass(frozen=True)
class Billed:
    seats: int
    revenue: Decimal  # per month

    def after(self, committed: Iterable[Change]) -> Billed:
        seats, revenue = self.seats, self.revenue
        for c in committed:
            seats += c.after - c.before
            revenue += c.revenue_delta
        return Billed(seats, revenue)


def billed_before(config: Config, plan: Plan, actual: ActualState) -> Billed:
    managed = {s.product.casefold() for s in config.skus}
    agreements = {cp.agreement_id for cp in plan.customers if cp.agreement_id is not None}
    seats, revenue = 0, Decimal(0)
    for agreement_id in sorted(agreements):
        for a in actual.additions.get(agreement_id, ()):
            if (
                a.product_identifier.casefold() in managed
                and a.active_on(plan.period.as_of)
                and a.quantity > 0
            ):
                seats += a.quantity
                revenue += a.quantity * (a.unit_price or Decimal(0))
    return Billed(seats, revenue)
