"""Prices as desired state (DESIGN 13.4). Pure: the planner asks here, nothing else does.

The *mapped price* of a customer's SKU is the customer's `prices:` override, else the SKU's
`unit_price` in skus.yaml, else none. A ConnectWise addition is one line per product, so
the price is decided per product: SKUs of one product agree on `unit_price` (validate),
a customer's overrides of them agree (validate), and customers sharing one agreement must
agree too (a planning error for that agreement, since only the resolved ids show it).

With `billing.reprice: true` a managed line billed at another price than its mapped one is
updated to it; with `false` (the default) the planner collects a `Drift` per such line and
`drift_warnings` turns them into one warning per SKU. A line without a mapped price is
never repriced and never drifts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from reconciler.core.model import Config, CustomerMap
from reconciler.core.money import display
from reconciler.core.state import Addition


def override(config: Config, customer: CustomerMap, product: str) -> Decimal | None:
    """The customer's own price for `product`: its override of any of its SKUs mapped
    to it (validate makes them agree and refuses overrides of excluded SKUs)."""
    if not customer.prices:
        return None  # most customers: no map to walk
    key = product.casefold()
    for sku, price in customer.prices:
        mapping = config.sku(sku)
        if mapping is not None and mapping.product.casefold() == key:
            return price
    return None


def _manages(config: Config, customer: CustomerMap, product: str) -> bool:
    excluded = {s.casefold() for s in customer.exclude_skus}
    key = product.casefold()
    return any(
        s.product.casefold() == key and s.sku.casefold() not in excluded for s in config.skus
    )


def mapped_price(
    config: Config, customers: Sequence[CustomerMap], product: str, agreement_id: int
) -> tuple[Decimal | None, str | None]:
    """(the mapped price of `product` on an agreement billing `customers`, None) or
    (None, why it cannot be decided): sharers of one line that map different prices.
    `product` is one that at least one of `customers` manages (not only excludes)."""
    default = config.terms(product).unit_price
    if len(customers) == 1:  # the usual agreement: then its one customer manages it
        own = override(config, customers[0], product)
        return (default if own is None else own), None
    found: dict[Decimal | None, list[str]] = defaultdict(list)
    for customer in customers:
        if _manages(config, customer, product):
            own = override(config, customer, product)
            found[default if own is None else own].append(customer.id)
    if len(found) <= 1:
        return next(iter(found), default), None
    shown = "; ".join(
        f"{', '.join(ids)}: {'none' if price is None else display(price)}"
        for price, ids in sorted(found.items(), key=lambda kv: kv[1])
    )
    return None, (
        f"customers sharing agreement {agreement_id} map different prices for {product} "
        f"({shown}); one addition bills one price: make their prices: entries agree"
    )


def differs(line: Addition, mapped: Decimal | None) -> bool:
    """Whether `line` bills at another price than its mapped one (never without one, and
    never for a line that is not Billable: it bills nothing at any price, DESIGN 13.3)."""
    return mapped is not None and not line.no_charge and line.unit_price != mapped


@dataclass(frozen=True)
class Drift:
    """A managed line left at another price than its mapped one (`reprice: false`)."""

    sku: str
    product: str
    addition_id: int
    price: Decimal | None  # what it bills at (None: no price in ConnectWise)
    mapped: Decimal
    quantity: int  # its quantity after the plan

    @property
    def monthly(self) -> Decimal:
        """What repricing it would change per month."""
        return self.quantity * (self.mapped - (self.price or Decimal(0)))


def drift_warnings(drifts: Iterable[Drift], currency: str) -> list[str]:
    """One warning per SKU: how many lines bill another price, and the money per month."""
    by_sku: dict[str, list[Drift]] = defaultdict(list)
    for d in drifts:
        by_sku[d.sku].append(d)
    out = []
    for sku in sorted(by_sku):
        found = by_sku[sku]
        money = display(sum((d.monthly for d in found), Decimal(0)), signed=True)
        prices = sorted({d.mapped for d in found})
        mapped = " / ".join(display(p) for p in prices)
        lines = f"{len(found)} line{'s' if len(found) != 1 else ''}"
        out.append(
            f"{sku}: {lines} of {found[0].product} bill another price than mapped "
            f"({mapped} {currency}); repricing would change revenue by {money} {currency}"
            "/month. Left as they are: set billing.reprice: true to update them"
        )
    return out
