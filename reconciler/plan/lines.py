"""One agreement's lines: the quantities its customers' usage asks for, matched against the
live managed additions on it, priced, and turned into changes. Pure, like the planner that
calls it once per agreement.

Per managed catalog product of the agreement, in order: a product excluded for every
customer on it is left alone (a warning per line); two live lines are an error (the
reconciler never guesses which one bills); no line and no users is nothing to do; the
price is the mapping's (`pricing.mapped_price`), a line at another price is repriced or,
with `reprice: false`, left as a `Drift`; what differs becomes an add, an update or a
removal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from reconciler.core.model import Config, CustomerMap
from reconciler.core.nearest import did_you_mean
from reconciler.core.periods import Period
from reconciler.core.plan import Action, Change
from reconciler.core.state import (
    ActualState,
    Addition,
    Agreement,
    CatalogItem,
    Usage,
    is_live_managed,
)
from reconciler.plan.pricing import Drift, differs, mapped_price


class Sources(NamedTuple):
    """What a plan is computed from: the mappings, ZeroTek's usage, ConnectWise's state."""

    config: Config
    usage: Usage
    actual: ActualState

    @property
    def period(self) -> Period:
        return self.usage.period


class Managed(NamedTuple):
    """An agreement's live managed additions (the safety thresholds' denominators)."""

    lines: int = 0
    quantity: int = 0


@dataclass
class AgreementPlan:
    """What planning one agreement gives a customer billed on it."""

    changes: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    managed: Managed = field(default_factory=Managed)


class Desired(NamedTuple):
    """What the customers on an agreement ask for, per managed catalog product."""

    skus: dict[str, list[str]]  # product -> the SKUs mapped to it, exclusions applied
    users: dict[str, int]  # product -> users ZeroTek reports for those SKUs


class Live(NamedTuple):
    """The live managed additions on an agreement, per product, keyed by the mappings'
    spelling; `errors` for lines whose quantity the reconciler cannot read."""

    by_product: dict[str, list[Addition]]
    errors: list[str]


class Line(NamedTuple):
    """One product's line on an agreement: the live addition (if any) and its target."""

    product: str
    sku: str  # the SKU the change is labelled with (the first mapped to the product)
    existing: Addition | None
    after: int

    @property
    def before(self) -> int:
        return self.existing.quantity if self.existing else 0


def plan_agreement(
    src: Sources, agreement: Agreement, customers: Sequence[CustomerMap], drifts: list[Drift]
) -> AgreementPlan:
    """Changes for one agreement and the customers billed on it (usually one); lines left
    at another price than their mapped one (`reprice: false`) go to `drifts`."""
    desired = desired_lines(src.config, src.usage, customers)
    live = live_lines(src, agreement, desired)
    if live.errors:
        return AgreementPlan(errors=live.errors)
    out = AgreementPlan()
    for product in sorted(set(src.config.managed_products) | set(live.by_product)):
        current = live.by_product.get(product, [])
        if product not in desired.skus:
            out.warnings.extend(_left_alone(product, current))
            continue
        lines, quantity = out.managed
        out.managed = Managed(lines + len(current), quantity + sum(a.quantity for a in current))
        if len(current) > 1:
            out.errors.append(_duplicates(product, agreement, current))
            continue
        sku = sorted(desired.skus[product])[0]
        existing = current[0] if current else None
        line = Line(product, sku, existing, desired.users.get(product, 0))
        if line.existing is not None or line.after > 0:
            _plan_line(src, agreement, customers, line, out, drifts)
    return out


def desired_lines(config: Config, usage: Usage, customers: Sequence[CustomerMap]) -> Desired:
    """The products the customers' mappings manage and the users reported for them: a
    customer's excluded SKUs neither count nor make their product managed for it."""
    skus: dict[str, list[str]] = defaultdict(list)
    users: dict[str, int] = defaultdict(int)
    sku_to_product = {s.sku.casefold(): s.product for s in config.skus}
    for customer in customers:
        for product, mapped in _products_of(config, customer.exclude_skus).items():
            skus[product].extend(mapped)
        excluded = {s.casefold() for s in customer.exclude_skus}
        for sku, count in usage.users.get(customer.id, {}).items():
            key = sku.casefold()
            if key in excluded or key not in sku_to_product:
                continue
            users[sku_to_product[key]] += count
    return Desired(skus, users)


def _products_of(config: Config, excluded: Iterable[str]) -> dict[str, list[str]]:
    """Managed catalog product -> the SKUs that map to it, minus excluded SKUs."""
    skip = {s.casefold() for s in excluded}
    products: dict[str, list[str]] = defaultdict(list)
    for sku in config.skus:
        if sku.sku.casefold() not in skip:
            products[sku.product].append(sku.sku)
    return products


def live_lines(src: Sources, agreement: Agreement, desired: Desired) -> Live:
    """Only live managed additions count (model.is_live_managed): a quantity-0 or cancelled
    one is neither ours to update nor a duplicate; a negative or fractional one is."""
    errors: list[str] = []
    by_product: dict[str, list[Addition]] = defaultdict(list)
    products = src.config.managed_products
    for addition in src.actual.additions.get(agreement.id, ()):
        if is_live_managed(addition, products, src.period.as_of):
            # keyed by the mappings' spelling: the reader already adopts it, but a plan
            # must not read `zt-okta-sso` as another product than `ZT-OKTA-SSO` (a duplicate)
            product = products.spelling(addition.product_identifier) or ""
            if addition.problem and product in desired.skus:
                errors.append(
                    f"addition #{addition.id} of {addition.product_identifier} on agreement "
                    f"{agreement.id} has {addition.problem}; expected a whole number of "
                    "licences, 0 or more: fix it in ConnectWise, the reconciler never guesses"
                )
            by_product[product].append(addition)
    return Live(by_product, errors)


def _left_alone(product: str, current: Sequence[Addition]) -> list[str]:
    return [
        f"{product} is excluded for this customer: addition #{addition.id} "
        f"(quantity {addition.quantity}) left untouched"
        for addition in current
    ]


def _duplicates(product: str, agreement: Agreement, current: Sequence[Addition]) -> str:
    ids = ", ".join(f"#{a.id}" for a in sorted(current, key=lambda a: a.id))
    return (
        f"{len(current)} active additions of {product} on agreement {agreement.id} "
        f"({ids}); resolve by hand, the reconciler never guesses"
    )


def _plan_line(
    src: Sources,
    agreement: Agreement,
    customers: Sequence[CustomerMap],
    line: Line,
    out: AgreementPlan,
    drifts: list[Drift],
) -> None:
    """The line's change, if it needs one, into `out` (or why it cannot be made)."""
    config = src.config
    mapped, conflict = mapped_price(config, customers, line.product, agreement.id)
    if conflict is not None:
        out.errors.append(conflict)
        return
    repriced = _repriced(config, line, mapped, drifts)
    if line.before == line.after and not repriced:
        return
    item = src.actual.catalog.get(line.product)
    if line.after > 0 and (item is None or item.inactive):
        out.errors.append(_catalog_problem(line, item, src.actual))
        return
    lead = customers[0].id
    if line.existing is not None:
        unit_price = _unit_price(mapped, item, line.existing, repriced)
        out.changes.append(_adjustment(line, line.existing, agreement, lead, unit_price, repriced))
        return
    assert item is not None  # after > 0 here: checked above
    _add_line(src, line, agreement, lead, _new_price(mapped, item), item, out)


def _add_line(
    src: Sources,
    line: Line,
    agreement: Agreement,
    lead: str,
    price: Decimal | None,
    item: CatalogItem,
    out: AgreementPlan,
) -> None:
    """A new addition for a product with users and no line, unless the settings or a
    missing price forbid it."""
    if not src.config.settings.add_missing:
        out.warnings.append(
            f"{line.sku}: {line.after} users but no {line.product} addition, and add_missing "
            "is false"
        )
    elif price is None:
        out.errors.append(
            f"no unit price for {line.product}: the catalog item has none and skus.yaml "
            "sets no unit_price"
        )
    else:
        out.changes.append(_addition(src, line, agreement, lead, item, price))


def _repriced(config: Config, line: Line, mapped: Decimal | None, drifts: list[Drift]) -> bool:
    """Whether the line's price is set to its mapped one: with `reprice: false` a line at
    another price keeps it and is reported as a `Drift` instead."""
    existing = line.existing
    repriced = existing is not None and line.after > 0 and differs(existing, mapped)
    if repriced and not config.settings.reprice:
        assert existing is not None and mapped is not None
        drifts.append(
            Drift(line.sku, line.product, existing.id, existing.unit_price, mapped, line.after)
        )
        return False
    return repriced


def _catalog_problem(line: Line, item: CatalogItem | None, actual: ActualState) -> str:
    why = "not found" if item is None else "inactive"
    hint = did_you_mean(line.product, actual.catalog) if item is None else ""
    return f"catalog product '{line.product}' (SKU {line.sku}) is {why} in ConnectWise{hint}"


def _addition(
    src: Sources,
    line: Line,
    agreement: Agreement,
    lead: str,
    item: CatalogItem,
    price: Decimal,
) -> Change:
    terms = src.config.terms(line.product)
    effective = src.period.as_of
    if agreement.bill_start_date and agreement.bill_start_date > effective:
        effective = agreement.bill_start_date  # ConnectWise answers 400 otherwise
    return Change(
        action=Action.ADD,
        customer_id=lead,
        sku=line.sku,
        product=line.product,
        product_id=item.id,
        agreement_id=agreement.id,
        addition_id=None,
        before=0,
        after=line.after,
        unit_price=price,
        effective_date=effective,
        unit_cost=terms.unit_cost if terms.unit_cost is not None else item.cost,
        description=terms.description,
    )


def _adjustment(
    line: Line,
    existing: Addition,
    agreement: Agreement,
    lead: str,
    unit_price: Decimal,
    repriced: bool,
) -> Change:
    """An update of the live line (its quantity, its price or both), or its removal."""
    return Change(
        action=Action.REMOVE if line.after == 0 else Action.UPDATE,
        customer_id=lead,
        sku=line.sku,
        product=line.product,
        product_id=existing.product_id,
        agreement_id=agreement.id,
        addition_id=existing.id,
        before=line.before,
        after=line.after,
        unit_price=unit_price,
        # a removal needs it: an addition that has not started yet cannot be
        # cancelled before its effectiveDate (apply zeroes it instead)
        effective_date=existing.effective_date,
        repriced=repriced,
        price_before=existing.unit_price if repriced else None,
        no_charge=existing.no_charge,
    )


def _new_price(mapped: Decimal | None, item: CatalogItem | None) -> Decimal | None:
    """The one price new additions of a product are billed at: its mapped price
    (pricing.mapped_price), else the catalog's. The plan carries it and apply sends it."""
    if mapped is None and item is not None:
        return item.price
    return mapped


def _unit_price(
    mapped: Decimal | None, item: CatalogItem | None, current: Addition, repriced: bool
) -> Decimal:
    """The price an existing addition bills at after its change: the mapped one when it
    is repriced, else its own unitPrice (only its quantity is patched), else what a new one
    would get."""
    if repriced and mapped is not None:
        return mapped
    if current.unit_price is not None:
        return current.unit_price
    return _new_price(mapped, item) or Decimal(0)
