"""`report`: revenue assurance - what ZeroTek says is used vs what ConnectWise bills. Pure.

Built on the planner, so "billed" means exactly what a sync would compare (the active
managed additions on the mapped agreement) and the report can never disagree with `plan`:
- under-billed: ZeroTek users above the billed quantity (a sync would add or raise it);
- over-billed: billed above users (a sync would lower or remove it), and orphans: lines
  the ledger says we manage that no current mapping manages (DESIGN 13.1), each once, with
  what ZeroTek reports for its customer and SKU and what happens to it (the next sync removes
  it, or `billing.orphans: keep` keeps it); their usage is not listed again as unmapped;
- unmapped customers: ZeroTek customers with usage and no mapping, valued at the catalog
  price of the product their SKU maps to (they have no mapped price: DESIGN 12.8, 13.4);
- unmapped SKUs: mapped customers' usage of SKUs with no mapping, valued at the catalog
  price of the product `discover` would propose (nothing when it has none);
each per month, with the margin where a cost is known, and totals.

- mispriced: managed additions billed at another unit price than their mapped price (the
  customer's `prices:` entry, else the SKU's `unit_price`; DESIGN 13.4), whether or not
  `billing.reprice` lets a sync correct them; signed (negative: charged above it).

Prices: a quantity discrepancy on an existing addition is valued at that addition's own
unit price (what the customer is actually charged); a missing one at its mapped price,
else the catalog's - the price the sync would bill; usage billed nowhere at the
catalog's. A line both miscounted and mispriced is two rows, which add up to what fixing
it changes: (after - before) x its price, plus after x (mapped - its price).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from reconciler.core.model import Config
from reconciler.core.periods import Period
from reconciler.core.plan import Action, Change, CustomerPlan, Plan
from reconciler.core.state import ActualState, CatalogItem, Usage
from reconciler.insight.discover import propose_sku
from reconciler.plan import planner
from reconciler.plan.orphans import orphan_reason

# Only a certain product (named like the SKU, or following the existing mappings'
# pattern) values an unmapped SKU; a fuzzy guess would invent revenue.
CERTAIN = 0.9


class Kind(StrEnum):
    UNDER = "under-billed"
    OVER = "over-billed"
    UNMAPPED_CUSTOMER = "unmapped-customer"
    UNMAPPED_SKU = "unmapped-sku"
    MISPRICED = "mispriced"


@dataclass(frozen=True)
class Row:
    """One customer x product discrepancy. `quantity` is always >= 0 (the direction is
    `kind`); money figures are per month, None when no price is known."""

    kind: Kind
    customer_id: str
    customer_name: str
    company: str | None
    agreement_id: int | None
    sku: str
    product: str | None
    zerotek_users: int
    billed: int
    unit_price: Decimal | None  # mispriced: the mapped price
    unit_cost: Decimal | None
    billed_price: Decimal | None = None  # mispriced: what the line bills (None: no price)
    # An orphan's why and fate ("no longer mapped: was SKU S of customer C; the next sync
    # removes it"): the whole line is billed with no mapping behind it.
    orphan: str | None = None

    @property
    def quantity(self) -> int:
        """Licences off (mispriced: licences billed at another price than mapped; an
        orphan: its whole line)."""
        if self.kind is Kind.MISPRICED:
            return self.zerotek_users
        if self.orphan is not None:
            return self.billed
        return abs(self.zerotek_users - self.billed)

    @property
    def amount(self) -> Decimal | None:
        if self.unit_price is None:
            return None
        if self.kind is Kind.MISPRICED:
            return self.quantity * (self.unit_price - (self.billed_price or Decimal(0)))
        return self.quantity * self.unit_price

    @property
    def margin(self) -> Decimal | None:
        if self.kind is Kind.MISPRICED:
            return self.amount  # the cost does not move with the price
        if self.unit_price is None or self.unit_cost is None:
            return None
        return self.quantity * (self.unit_price - self.unit_cost)


@dataclass(frozen=True)
class Totals:
    quantity: int
    amount: Decimal  # of the rows with a known price
    margin: Decimal  # of the rows with a known price and cost
    unvalued: int  # rows without a price


@dataclass(frozen=True)
class Report:
    period: Period
    currency: str
    rows: tuple[Row, ...]
    billed_quantity: int  # seats ConnectWise bills for managed products (mapped customers)
    zerotek_users: int  # users ZeroTek reports for them (mapped SKUs)
    errors: tuple[tuple[str, str], ...]  # (customer id, error): not compared

    def totals(self, kind: Kind) -> Totals:
        rows = [r for r in self.rows if r.kind is kind]
        return Totals(
            quantity=sum(r.quantity for r in rows),
            amount=sum((r.amount for r in rows if r.amount is not None), Decimal(0)),
            margin=sum((r.margin for r in rows if r.margin is not None), Decimal(0)),
            unvalued=sum(1 for r in rows if r.amount is None),
        )

    @property
    def unbilled(self) -> Decimal:
        """Money per month ZeroTek usage would bill and ConnectWise does not."""
        kinds = (Kind.UNDER, Kind.UNMAPPED_CUSTOMER, Kind.UNMAPPED_SKU)
        return sum((self.totals(k).amount for k in kinds), Decimal(0))

    @property
    def net(self) -> Decimal:
        """Unbilled minus over-billed plus mispriced: the monthly revenue change if
        everything were fixed."""
        return self.unbilled - self.totals(Kind.OVER).amount + self.totals(Kind.MISPRICED).amount


class Pricer:
    """Catalog product, price and cost per month for a SKU or product: the catalog's price
    (usage billed nowhere has no mapped price), the mapping's `unit_cost` else the
    catalog's. An unmapped SKU gets the product `discover` is certain of (same identifier,
    or the existing mappings' pattern), else none: a fuzzy guess would invent revenue."""

    def __init__(self, config: Config, catalog: Iterable[CatalogItem]) -> None:
        self.config = config
        self.items = tuple(catalog)
        self.catalog = {i.identifier.casefold(): i for i in self.items}

    def product_for_sku(self, sku: str) -> str | None:
        mapped = self.config.sku(sku)
        if mapped is not None:
            return mapped.product
        guess = propose_sku(sku, 0, 0, self.config, self.items)
        if guess.product is not None and guess.confidence >= CERTAIN:
            return guess.product.identifier
        return None

    def price(self, product: str) -> Decimal | None:
        """The catalog's price, never a mapped one: usage billed nowhere has no mapped price
        (DESIGN 13.4: a mapped customer's SKU has one), and a sync that added it would
        bill what the mapping then said. DESIGN 12.8: valued at the catalog price."""
        item = self.catalog.get(product.casefold())
        return item.price if item is not None else None

    def cost(self, product: str) -> Decimal | None:
        for s in self.config.skus:
            if s.product == product and s.unit_cost is not None:
                return s.unit_cost
        item = self.catalog.get(product.casefold())
        return item.cost if item is not None else None

    def row(self, kind: Kind, cid: str, name: str, sku: str, users: int) -> Row:
        """A usage row billed nowhere (unmapped customer or SKU), valued."""
        product = self.product_for_sku(sku)
        mapped = self.config.customer(cid)
        return Row(
            kind=kind,
            customer_id=cid,
            customer_name=name,
            company=mapped.company if mapped else None,
            agreement_id=None,
            sku=sku,
            product=product,
            zerotek_users=users,
            billed=0,
            unit_price=self.price(product) if product else None,
            unit_cost=self.cost(product) if product else None,
        )


def unmapped_customer_rows(
    config: Config, usage: Usage, pricer: Pricer, billed: Container[tuple[str, str]] = ()
) -> list[Row]:
    """ZeroTek customers with usage and no mapping: unbilled revenue, valued. `billed`:
    (customer, SKU casefolded) an orphan line still bills, shown on the orphan's row."""
    mapped = {c.id for c in config.customers}
    names = usage.known_customers or {}
    return [
        pricer.row(Kind.UNMAPPED_CUSTOMER, cid, names.get(cid, cid), sku, n)
        for cid in sorted(set(usage.users) - mapped)
        for sku, n in sorted(usage.users[cid].items())
        if n > 0 and (cid, sku.strip().casefold()) not in billed
    ]


def orphan_row(
    change: Change, cp: CustomerPlan, config: Config, usage: Usage, pricer: Pricer
) -> Row:
    """An orphan's line (DESIGN 13.1), once: what ZeroTek reports for its customer and SKU,
    what the line bills, and what becomes of it."""
    cid, sku = change.customer_id, change.sku
    mapped = config.customer(cid)
    name = mapped.name if mapped else (usage.known_customers or {}).get(cid, cid)
    fate = (
        "kept (billing.orphans: keep)"
        if config.settings.keep_orphans
        else "the next sync removes it"
    )
    return Row(
        kind=Kind.OVER,
        customer_id=cid,
        customer_name=name,
        company=cp.company or None,
        agreement_id=change.agreement_id,
        sku=sku,
        product=change.product,
        zerotek_users=_reported(usage, cid, sku),
        billed=change.before,
        unit_price=Decimal(0) if change.no_charge else change.unit_price,
        unit_cost=pricer.cost(change.product),
        orphan=f"{orphan_reason(change)}; {fate}",
    )


def _reported(usage: Usage, cid: str, sku: str) -> int:
    """The users ZeroTek reports for a customer's SKU (compared trimmed, without case)."""
    key = sku.strip().casefold()
    return sum(n for s, n in usage.users.get(cid, {}).items() if s.strip().casefold() == key)


def build_report(
    config: Config,
    usage: Usage,
    actual: ActualState,
    full_catalog: tuple[CatalogItem, ...],
    currency: str = "USD",
) -> Report:
    """`full_catalog`: every catalog item, to value SKUs nobody has mapped yet."""
    # The report answers "what are we not billing", also when the sync is update-only or
    # leaves prices alone; orphans kept by `billing.orphans: keep` are shown as kept.
    settings = dataclasses.replace(
        config.settings, add_missing=True, reprice=True, keep_orphans=False
    )
    plan = planner.plan(dataclasses.replace(config, settings=settings), usage, actual)
    pricer = Pricer(config, (*full_catalog, *actual.catalog.values()))
    compared = _compared(plan, config, usage, pricer)
    rows = [*compared.rows, *_billed_nowhere(plan, config, usage, pricer, compared.rows)]
    errors = tuple((cp.customer_id, e) for cp in plan.customers for e in cp.errors)
    order = {k: i for i, k in enumerate(Kind)}
    rows.sort(key=lambda r: (order[r.kind], r.customer_id, r.product or "", r.sku))
    return Report(plan.period, currency, tuple(rows), compared.billed, compared.users, errors)


class _Compared(NamedTuple):
    rows: list[Row]
    billed: int  # seats of mapped SKUs ConnectWise bills mapped customers
    users: int  # users of mapped SKUs ZeroTek reports for them


def _compared(plan: Plan, config: Config, usage: Usage, pricer: Pricer) -> _Compared:
    """What the plan compared: each change as the discrepancy it corrects, each orphan once."""
    rows: list[Row] = []
    billed = users = 0
    for cp in plan.customers:
        # "mapped customers, mapped SKUs": an orphan's line is neither (its own row)
        orphaned = sum(c.before for c in cp.changes if c.orphan)
        billed += cp.managed_quantity - orphaned
        users += cp.managed_quantity - orphaned
        for c in cp.changes:
            if c.orphan:
                rows.append(orphan_row(c, cp, config, usage, pricer))
            else:
                users += c.after - c.before
                rows += _change_rows(c, cp, pricer)
    return _Compared(rows, billed, users)


def _change_rows(c: Change, cp: CustomerPlan, pricer: Pricer) -> list[Row]:
    """A managed line's quantity discrepancy and price discrepancy (zero, one or both)."""
    row = Row(
        kind=Kind.UNDER if c.after > c.before else Kind.OVER,
        customer_id=cp.customer_id,
        customer_name=cp.name,
        company=cp.company,
        agreement_id=c.agreement_id,
        sku=c.sku,
        product=c.product,
        zerotek_users=c.after,
        billed=c.before,
        unit_price=(Decimal(0) if c.no_charge else c.price_before if c.repriced else c.unit_price),
        unit_cost=(
            c.unit_cost
            if c.action is Action.ADD and c.unit_cost is not None
            else pricer.cost(c.product)
        ),
    )
    rows = [row] if c.after != c.before else []
    if c.repriced:
        rows.append(
            dataclasses.replace(
                row, kind=Kind.MISPRICED, unit_price=c.unit_price, billed_price=c.price_before
            )
        )
    return rows


def _billed_nowhere(
    plan: Plan, config: Config, usage: Usage, pricer: Pricer, compared: list[Row]
) -> list[Row]:
    """Usage of unmapped customers and of unmapped SKUs. An orphan's usage is on its row:
    listing it again as billed nowhere would count the line twice (over-billed and
    unbilled)."""
    still_billed = {(r.customer_id, r.sku.strip().casefold()) for r in compared if r.orphan}
    rows = unmapped_customer_rows(config, usage, pricer, still_billed)
    for cid, sku, n in plan.unmapped_skus:
        if (cid, sku.strip().casefold()) not in still_billed:
            mapped = config.customer(cid)
            rows.append(pricer.row(Kind.UNMAPPED_SKU, cid, mapped.name if mapped else cid, sku, n))
    return rows
