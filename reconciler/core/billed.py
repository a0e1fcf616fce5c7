"""What ConnectWise bills for the products we manage: seats and revenue per month. Pure.

Feeds the chart at the top of runs/INDEX.md. Counted over the agreements the plan
resolved (each once, also when customers share one): the live managed additions
(model.is_live_managed) of the products some customer on the agreement has not excluded,
at their own unit price. After a run, the committed changes are added on top.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from reconciler.core.model import Config
from reconciler.core.plan import Change, Plan
from reconciler.core.state import ActualState, is_live_managed


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
    """Per agreement, the products some customer on it has not excluded (an excluded
    SKU's addition is no longer ours for that customer)."""
    products: dict[int, set[str]] = {}
    for cp in plan.customers:
        if cp.agreement_id is None:
            continue
        customer = config.customer(cp.customer_id)
        excluded = {s.casefold() for s in (customer.exclude_skus if customer else ())}
        products.setdefault(cp.agreement_id, set()).update(
            s.product.casefold() for s in config.skus if s.sku.casefold() not in excluded
        )
    seats, revenue = 0, Decimal(0)
    managed = config.managed_products
    for agreement_id, kept in sorted(products.items()):
        for a in actual.additions.get(agreement_id, ()):
            if (
                is_live_managed(a, managed, plan.period.as_of)
                and a.product_identifier.casefold() in kept
            ):
                seats += a.quantity
                if not a.no_charge:  # a DoNotBill line earns nothing (DESIGN 13.3)
                    revenue += a.quantity * (a.unit_price or Decimal(0))
    return Billed(seats, revenue)
