"""The planner: (config, usage, actual state) -> Plan. Pure: no I/O, no clock, no randomness.

Only *managed* additions are ever touched: active additions, on a mapped agreement, of a
mapped catalog product. Everything else on ConnectWise is somebody else's and stays out of
the plan. Output is sorted so the same inputs give byte-identical plans.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from reconciler.model import (
    Action,
    ActualState,
    Addition,
    Agreement,
    Change,
    Company,
    Config,
    CustomerMap,
    CustomerPlan,
    Period,
    Plan,
    Usage,
)
from reconciler.safety import unsafe_reasons

_DEAD_STATUSES = {"cancelled", "expired", "inactive"}


@dataclass
class _Draft:
    """A customer's plan while it is being built (CustomerPlan is frozen)."""

    customer: CustomerMap
    agreement: Agreement | None = None
    errors: list[str] | None = None
    warnings: list[str] | None = None
    unknown: bool = False  # ZeroTek does not know this customer id

    def __post_init__(self) -> None:
        self.errors = []
        self.warnings = []


def agreements_by_company(agreements: Iterable[Agreement]) -> dict[int, list[Agreement]]:
    """Index for `resolve_agreement`: a scan of every agreement per customer is O(n^2)."""
    index: dict[int, list[Agreement]] = defaultdict(list)
    for agreement in agreements:
        index[agreement.company_id].append(agreement)
    return index


def resolve_agreement(
    customer: CustomerMap,
    companies: Mapping[str, Company],
    agreements: Mapping[int, Agreement],
    by_company: Mapping[int, Sequence[Agreement]],
) -> tuple[Agreement | None, str | None]:
    """The customer's agreement, or why it cannot be used. A name resolves only among the
    customer's company's agreements (`by_company` from `agreements_by_company`)."""
    company = companies.get(customer.company)
    if company is None:
        return None, f"ConnectWise company '{customer.company}' not found"
    if isinstance(customer.agreement, int):
        agreement = agreements.get(customer.agreement)
        if agreement is None:
            return None, f"agreement {customer.agreement} not found"
        if agreement.company_id != company.id:
            return None, (
                f"agreement {agreement.id} ('{agreement.name}') belongs to another company "
                f"(id {agreement.company_id}), not '{customer.company}'"
            )
    else:
        named = [a for a in by_company.get(company.id, ()) if a.name == customer.agreement]
        if not named:
            return None, (
                f"no agreement named '{customer.agreement}' for company '{customer.company}'"
            )
        if len(named) > 1:
            ids = ", ".join(str(a.id) for a in sorted(named, key=lambda a: a.id))
            return None, (
                f"agreement name '{customer.agreement}' is ambiguous for company "
                f"'{customer.company}' (ids {ids}); map it by id"
            )
        agreement = named[0]
    return agreement, None


def agreement_problem(agreement: Agreement, period: Period) -> str | None:
    status = (agreement.status or "").lower()
    if agreement.cancelled or status == "cancelled":
        return f"agreement {agreement.id} ('{agreement.name}') is cancelled"
    if status in _DEAD_STATUSES:
        return f"agreement {agreement.id} ('{agreement.name}') is {status}"
    if (
        not agreement.no_ending_date
        and agreement.end_date is not None
        and agreement.end_date < period.as_of
    ):
        return (
            f"agreement {agreement.id} ('{agreement.name}') ended on "
            f"{agreement.end_date.isoformat()}"
        )
    return None


def _products_of(config: Config, excluded: Iterable[str]) -> dict[str, list[str]]:
    """Managed catalog product -> the SKUs that map to it, minus excluded SKUs."""
    skip = set(excluded)
    products: dict[str, list[str]] = defaultdict(list)
    for sku in config.skus:
        if sku.sku not in skip:
            products[sku.product].append(sku.sku)
    return products


def _unit_price(
    config: Config, product: str, actual: ActualState, current: Addition | None
) -> Decimal:
    """The price a change bills at. An existing addition keeps its own unitPrice (only its
    quantity is patched); a new one takes the mapping's override, else the catalog's."""
    if current is not None and current.unit_price is not None:
        return current.unit_price
    for sku in config.skus:
        if sku.product == product and sku.unit_price is not None:
            return sku.unit_price
    item = actual.catalog.get(product)
    if item is not None and item.price is not None:
        return item.price
    return Decimal(0)


def _plan_agreement(
    config: Config,
    usage: Usage,
    actual: ActualState,
    period: Period,
    agreement: Agreement,
    drafts: Sequence[_Draft],
) -> tuple[list[Change], list[str], list[str], tuple[int, int]]:
    """Changes for one agreement and the customers billed on it (usually one)."""
    all_products = {s.product for s in config.skus}
    managed: dict[str, list[str]] = defaultdict(list)
    desired: dict[str, int] = defaultdict(int)
    sku_to_product = {s.sku: s.product for s in config.skus}
    for draft in drafts:
        for product, skus in _products_of(config, draft.customer.exclude_skus).items():
            managed[product].extend(skus)
        for sku, users in usage.users.get(draft.customer.id, {}).items():
            if sku in draft.customer.exclude_skus or sku not in sku_to_product:
                continue
            desired[sku_to_product[sku]] += users

    # Live = active on the as-of date with a quantity: a quantity-0 addition counts as
    # removed (DESIGN 11), so it is neither ours to update nor a duplicate.
    active: dict[str, list[Addition]] = defaultdict(list)
    for addition in actual.additions.get(agreement.id, ()):
        if (
            addition.product_identifier in all_products
            and addition.active_on(period.as_of)
            and addition.quantity > 0
        ):
            active[addition.product_identifier].append(addition)

    errors: list[str] = []
    warnings: list[str] = []
    changes: list[Change] = []
    managed_count = managed_quantity = 0
    lead = drafts[0].customer.id
    for product in sorted(all_products | set(active)):
        current = active.get(product, [])
        if product not in managed:
            for addition in current:
                warnings.append(
                    f"{product} is excluded for this customer: addition #{addition.id} "
                    f"(quantity {addition.quantity}) left untouched"
                )
            continue
        managed_count += len(current)
        managed_quantity += sum(a.quantity for a in current)
        if len(current) > 1:
            ids = ", ".join(f"#{a.id}" for a in sorted(current, key=lambda a: a.id))
            errors.append(
                f"{len(current)} active additions of {product} on agreement {agreement.id} "
                f"({ids}); resolve by hand, the reconciler never guesses"
            )
            continue
        addition = current[0] if current else None
        before = addition.quantity if addition else 0
        after = desired.get(product, 0)
        if before == after:
            continue
        sku = sorted(managed[product])[0]
        item = actual.catalog.get(product)
        if after > 0 and (item is None or item.inactive):
            why = "not found" if item is None else "inactive"
            errors.append(f"catalog product '{product}' (SKU {sku}) is {why} in ConnectWise")
            continue
        price = _unit_price(config, product, actual, addition)
        mapping = next(s for s in config.skus if s.product == product)
        if addition is None:
            if not config.settings.add_missing:
                warnings.append(
                    f"{sku}: {after} users but no {product} addition, and add_missing is false"
                )
                continue
            assert item is not None
            effective = period.as_of
            if agreement.bill_start_date and agreement.bill_start_date > effective:
                effective = agreement.bill_start_date  # ConnectWise answers 400 otherwise
            change = Change(
                action=Action.ADD,
                customer_id=lead,
                sku=sku,
                product=product,
                product_id=item.id,
                agreement_id=agreement.id,
                addition_id=None,
                before=0,
                after=after,
                unit_price=price,
                effective_date=effective,
                unit_cost=mapping.unit_cost,
                description=mapping.description,
            )
        else:
            change = Change(
                action=Action.REMOVE if after == 0 else Action.UPDATE,
                customer_id=lead,
                sku=sku,
                product=product,
                product_id=addition.product_id,
                agreement_id=agreement.id,
                addition_id=addition.id,
                before=before,
                after=after,
                unit_price=price,
                # a removal needs it: an addition that has not started yet cannot be
                # cancelled before its effectiveDate (apply zeroes it instead)
                effective_date=addition.effective_date,
            )
        changes.append(change)
    return changes, errors, warnings, (managed_count, managed_quantity)


def plan(
    config: Config,
    usage: Usage,
    actual: ActualState,
    customer_ids: Sequence[str] | None = None,
) -> Plan:
    """Compute the plan for the selected customers (default: every mapped customer)."""
    period = usage.period
    wanted = None if customer_ids is None else set(customer_ids)
    selected = sorted(
        (c for c in config.customers if wanted is None or c.id in wanted),
        key=lambda c: c.id,
    )
    mapped_skus = {s.sku for s in config.skus}
    drafts = {c.id: _Draft(c) for c in selected}
    by_company = agreements_by_company(actual.agreements.values())
    unmapped: list[tuple[str, str, int]] = []

    for draft in drafts.values():
        c = draft.customer
        for sku, users in sorted(usage.users.get(c.id, {}).items()):
            if sku not in mapped_skus and users > 0:
                unmapped.append((c.id, sku, users))
                draft.warnings.append(
                    f"uses ZeroTek SKU {sku} ({users} users), which is not mapped"
                )
        if usage.known_customers is not None and c.id not in usage.known_customers:
            # No usage because ZeroTek has never heard of the id (a typo, a migrated
            # tenant) is not "every user left": cancelling their licences would be wrong.
            draft.unknown = True
            draft.warnings.append(
                f"ZeroTek does not know customer '{c.id}': left untouched (check the id)"
            )
        agreement, error = resolve_agreement(c, actual.companies, actual.agreements, by_company)
        if error is None and agreement is not None:
            error = agreement_problem(agreement, period)
        if error:
            draft.errors.append(error)
        else:
            draft.agreement = agreement

    groups: dict[int, list[_Draft]] = defaultdict(list)
    for draft in drafts.values():
        if draft.agreement is not None:
            groups[draft.agreement.id].append(draft)

    planned: dict[str, CustomerPlan] = {}
    for agreement_id in sorted(groups):
        group = groups[agreement_id]
        agreement, lead = group[0].agreement, group[0].customer.id
        assert agreement is not None
        changes, errors, warnings, managed = _plan_agreement(
            config, usage, actual, period, agreement, group
        )
        if any(d.unknown for d in group):
            changes = []  # a share of the quantity is unknown: leave the agreement alone
        conflict: list[str] = []
        if len(group) > 1 and not all(d.customer.shared_agreement for d in group):
            ids = ", ".join(d.customer.id for d in group)
            conflict = [
                f"customers {ids} all map to agreement {agreement_id}; set "
                "shared_agreement: true on each of them if they really share it"
            ]
        for i, draft in enumerate(group):
            mine = i == 0
            shared_note = [f"shares agreement {agreement_id} with {lead}; changes shown there"]
            planned[draft.customer.id] = _customer_plan(
                draft,
                changes=changes if mine and not (errors or conflict) else [],
                errors=(errors if mine else []) + conflict,
                warnings=(warnings if mine else []) + ([] if mine or conflict else shared_note),
                managed=managed if mine else (0, 0),
            )
    for cid, draft in drafts.items():
        if cid not in planned:
            planned[cid] = _customer_plan(draft, changes=[], errors=[], warnings=[], managed=(0, 0))

    warnings: list[str] = []
    if customer_ids is None:
        mapped_ids = {c.id for c in config.customers}
        names = usage.known_customers or {}
        for cid in sorted(set(usage.users) - mapped_ids):
            skus = usage.users[cid]
            if not any(skus.values()):
                continue
            detail = ", ".join(f"{s} {n}" for s, n in sorted(skus.items()))
            label = f"'{cid}' ({names[cid]})" if cid in names else f"'{cid}'"
            warnings.append(f"ZeroTek customer {label} has usage but no mapping: {detail}")

    customers = tuple(planned[cid] for cid in sorted(planned))
    result = Plan(
        period=period,
        customers=customers,
        warnings=tuple(warnings),
        unmapped_skus=tuple(sorted(unmapped)),
        config_digest=config.digest,
        removal=config.settings.removal,
    )
    return replace(result, unsafe_reasons=unsafe_reasons(result, config.settings.safety))


def _customer_plan(
    draft: _Draft,
    *,
    changes: list[Change],
    errors: list[str],
    warnings: list[str],
    managed: tuple[int, int],
) -> CustomerPlan:
    c, a = draft.customer, draft.agreement
    assert draft.errors is not None and draft.warnings is not None
    return CustomerPlan(
        customer_id=c.id,
        name=c.name,
        company=c.company,
        agreement_id=a.id if a else None,
        agreement_name=a.name if a else None,
        agreement_end_date=a.end_date if a and not a.no_ending_date else None,
        changes=tuple(sorted(changes, key=lambda ch: (ch.product, ch.sku))),
        errors=tuple(draft.errors + errors),
        warnings=tuple(sorted(draft.warnings + warnings)),
        managed=managed[0],
        managed_quantity=managed[1],
    )
