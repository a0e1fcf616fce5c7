"""The planner: (config, usage, actual state) -> Plan. Pure: no I/O, no clock, no randomness.

Only *managed* additions are ever touched: active additions, on a mapped agreement, of a
mapped catalog product. Everything else on ConnectWise is somebody else's and stays out of
the plan. Output is sorted so the same inputs give byte-identical plans.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from reconciler.core.mapping import (
    agreement_problem,
    agreements_by_company,
    companies_by_key,
    resolve_agreement,
)
from reconciler.core.model import (
    Action,
    ActualState,
    Addition,
    Agreement,
    CatalogItem,
    Change,
    Company,
    Config,
    CustomerMap,
    CustomerPlan,
    Period,
    Plan,
    Usage,
    is_live_managed,
)
from reconciler.core.nearest import did_you_mean
from reconciler.plan.guards import silent_skus
from reconciler.plan.orphans import with_orphans
from reconciler.plan.pricing import Drift, differs, drift_warnings, mapped_price
from reconciler.plan.safety import unsafe_reasons


@dataclass
class _Draft:
    """A customer's plan while it is being built (CustomerPlan is frozen)."""

    customer: CustomerMap
    agreement: Agreement | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unknown: bool = False  # ZeroTek does not know this customer id


def _products_of(config: Config, excluded: Iterable[str]) -> dict[str, list[str]]:
    """Managed catalog product -> the SKUs that map to it, minus excluded SKUs."""
    skip = {s.casefold() for s in excluded}
    products: dict[str, list[str]] = defaultdict(list)
    for sku in config.skus:
        if sku.sku.casefold() not in skip:
            products[sku.product].append(sku.sku)
    return products


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


def _plan_agreement(
    config: Config,
    usage: Usage,
    actual: ActualState,
    period: Period,
    agreement: Agreement,
    drafts: Sequence[_Draft],
    drifts: list[Drift],
) -> tuple[list[Change], list[str], list[str], tuple[int, int]]:
    """Changes for one agreement and the customers billed on it (usually one); lines left
    at another price than their mapped one (`reprice: false`) go to `drifts`."""
    all_products = set(config.managed_products)
    managed: dict[str, list[str]] = defaultdict(list)
    desired: dict[str, int] = defaultdict(int)
    sku_to_product = {s.sku.casefold(): s.product for s in config.skus}
    for draft in drafts:
        for product, skus in _products_of(config, draft.customer.exclude_skus).items():
            managed[product].extend(skus)
        excluded = {s.casefold() for s in draft.customer.exclude_skus}
        for sku, users in usage.users.get(draft.customer.id, {}).items():
            key = sku.casefold()
            if key in excluded or key not in sku_to_product:
                continue
            desired[sku_to_product[key]] += users

    # Only live managed additions count (model.is_live_managed): a quantity-0 or cancelled
    # one is neither ours to update nor a duplicate; a negative or fractional one is.
    errors: list[str] = []
    active: dict[str, list[Addition]] = defaultdict(list)
    products = config.managed_products
    for addition in actual.additions.get(agreement.id, ()):
        if is_live_managed(addition, products, period.as_of):
            # keyed by the mappings' spelling: the reader already adopts it, but a plan
            # must not read `zt-okta-sso` as another product than `ZT-OKTA-SSO` (a duplicate)
            product = products.spelling(addition.product_identifier) or ""
            if addition.problem and product in managed:
                errors.append(
                    f"addition #{addition.id} of {addition.product_identifier} on agreement "
                    f"{agreement.id} has {addition.problem}; expected a whole number of "
                    "licences, 0 or more: fix it in ConnectWise, the reconciler never guesses"
                )
            active[product].append(addition)
    if errors:
        return [], errors, [], (0, 0)

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
        existing = current[0] if current else None
        before = existing.quantity if existing else 0
        after = desired.get(product, 0)
        if existing is None and after == 0:
            continue
        sku = sorted(managed[product])[0]
        customers = [d.customer for d in drafts]
        mapped, conflict = mapped_price(config, customers, product, agreement.id)
        if conflict is not None:
            errors.append(conflict)
            continue
        repriced = existing is not None and after > 0 and differs(existing, mapped)
        if repriced and not config.settings.reprice:
            assert existing is not None and mapped is not None
            drifts.append(Drift(sku, product, existing.id, existing.unit_price, mapped, after))
            repriced = False
        if before == after and not repriced:
            continue
        item = actual.catalog.get(product)
        if after > 0 and (item is None or item.inactive):
            why = "not found" if item is None else "inactive"
            hint = did_you_mean(product, actual.catalog) if item is None else ""
            errors.append(f"catalog product '{product}' (SKU {sku}) is {why} in ConnectWise{hint}")
            continue
        if existing is None:
            if not config.settings.add_missing:
                warnings.append(
                    f"{sku}: {after} users but no {product} addition, and add_missing is false"
                )
                continue
            assert item is not None
            terms = config.terms(product)
            price = _new_price(mapped, item)
            if price is None:
                errors.append(
                    f"no unit price for {product}: the catalog item has none and skus.yaml "
                    "sets no unit_price"
                )
                continue
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
                unit_cost=terms.unit_cost if terms.unit_cost is not None else item.cost,
                description=terms.description,
            )
        else:
            change = Change(
                action=Action.REMOVE if after == 0 else Action.UPDATE,
                customer_id=lead,
                sku=sku,
                product=product,
                product_id=existing.product_id,
                agreement_id=agreement.id,
                addition_id=existing.id,
                before=before,
                after=after,
                unit_price=_unit_price(mapped, item, existing, repriced),
                # a removal needs it: an addition that has not started yet cannot be
                # cancelled before its effectiveDate (apply zeroes it instead)
                effective_date=existing.effective_date,
                repriced=repriced,
                price_before=existing.unit_price if repriced else None,
                no_charge=existing.no_charge,
            )
        changes.append(change)
    return changes, errors, warnings, (managed_count, managed_quantity)


def _units(drafts: Iterable[_Draft]) -> list[list[_Draft]]:
    """Customers that must be planned together: those resolved to one agreement, and every
    `shared_agreement` customer of one company (a share whose agreement did not resolve may
    still be a share of that agreement: planning the others alone would cut its licences)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    for draft in drafts:
        find(draft.customer.id)
        if draft.agreement is not None:
            union(draft.customer.id, f"agreement:{draft.agreement.id}")
        if draft.customer.shared_agreement:
            union(draft.customer.id, f"company:{draft.customer.company.casefold()}")
    groups: dict[str, list[_Draft]] = defaultdict(list)
    for draft in drafts:
        groups[find(draft.customer.id)].append(draft)
    return [sorted(g, key=lambda d: d.customer.id) for g in groups.values()]


def plan(
    config: Config,
    usage: Usage,
    actual: ActualState,
    customer_ids: Sequence[str] | None = None,
) -> Plan:
    """Compute the plan for the selected customers (default: every mapped customer)."""
    period = usage.period
    companies = companies_by_key(actual.companies.values())
    by_company = agreements_by_company(actual.agreements.values())
    customer_ids, brought = _bring_along(config, actual, customer_ids, companies, by_company)
    wanted = None if customer_ids is None else set(customer_ids)
    selected = sorted(
        (c for c in config.customers if wanted is None or c.id in wanted),
        key=lambda c: c.id,
    )
    mapped_skus = {s.sku.casefold() for s in config.skus}
    drafts = {c.id: _Draft(c) for c in selected}
    unmapped: list[tuple[str, str, int]] = []
    reported_users = 0

    for draft in drafts.values():
        c = draft.customer
        for sku, users in sorted(usage.users.get(c.id, {}).items()):
            reported_users += max(users, 0)
            if sku.casefold() not in mapped_skus and users > 0:
                unmapped.append((c.id, sku, users))
                draft.warnings.append(
                    f"uses ZeroTek SKU {sku} ({users} users), which is not mapped"
                )
        if usage.known_customers is not None and c.id not in usage.known_customers:
            # No usage because ZeroTek has never heard of the id (a typo, a migrated
            # tenant) is not "every user left": cancelling their licences would be wrong.
            draft.unknown = True
            unmapped_ids = (i for i in usage.known_customers if config.customer(i) is None)
            draft.warnings.append(
                f"ZeroTek does not know customer '{c.id}': left untouched (check the id"
                f"{did_you_mean(c.id, unmapped_ids)})"
            )
        if c.id in usage.problems:
            draft.errors.append(usage.problems[c.id])
        agreement, error = resolve_agreement(c, companies, actual.agreements, by_company)
        refused = actual.refused.get(c.company.casefold())
        if refused is not None:  # not "not found": ConnectWise would not say
            error = f"ConnectWise refused the query for company '{c.company}': {refused}"
        if error is None and agreement is not None:
            error = agreement_problem(agreement, period)
        if error:
            draft.errors.append(error)
        else:
            draft.agreement = agreement

    planned: dict[str, CustomerPlan] = {}
    drifts: list[Drift] = []
    for unit in _units(drafts.values()):
        _plan_unit(config, usage, actual, period, unit, planned, drifts)

    warnings: list[str] = [*brought, *drift_warnings(drifts, config.settings.currency)]
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
        currency=config.settings.currency,
        reported_users=reported_users,
        selection=None if customer_ids is None else tuple(sorted(set(customer_ids))),
    )
    return _guarded(with_orphans(result, config, actual), config, usage)


def _guarded(result: Plan, config: Config, usage: Usage) -> Plan:
    """The verdict over the whole plan, orphans' removals included (DESIGN 13.1, 13.2)."""
    reasons = unsafe_reasons(result, config.settings.safety) + silent_skus(result, config, usage)
    return replace(result, unsafe_reasons=reasons)


def _bring_along(
    config: Config,
    actual: ActualState,
    ids: Sequence[str] | None,
    companies: Mapping[str, Company],
    by_company: Mapping[int, Sequence[Agreement]],
) -> tuple[list[str] | None, list[str]]:
    """`--customer C` plans every customer whose agreement resolves to C's (DESIGN 13.3):
    one named by id and another by name are one agreement, and planning C alone would set
    the line to C's users only. Only customers of C's company can resolve to it (the
    caller reads them). Returns the ids to plan, and a note per agreement planned for more
    than one of them (the same for the expanded selection: a saved plan re-derives it).
    None (every customer) stays None."""
    if ids is None:
        return None, []
    wanted = set(ids)
    keys = {c.company.casefold() for c in config.customers if c.id in wanted}
    peers = [c for c in config.customers if c.company.casefold() in keys]
    resolved = {
        c.id: a.id
        for c in peers
        if (a := resolve_agreement(c, companies, actual.agreements, by_company)[0]) is not None
    }
    targets = {resolved[i] for i in wanted if i in resolved}
    chosen = sorted(wanted | {c.id for c in peers if resolved.get(c.id) in targets})
    sharing: dict[int, list[str]] = defaultdict(list)
    for cid in chosen:
        if cid in resolved:
            sharing[resolved[cid]].append(cid)
    notes = [
        f"customers {', '.join(group)} are billed on agreement {agreement}: planned "
        "together (its quantities are their sum)"
        for agreement, group in sorted(sharing.items())
        if len(group) > 1
    ]
    return chosen, notes


def _plan_unit(
    config: Config,
    usage: Usage,
    actual: ActualState,
    period: Period,
    unit: list[_Draft],
    planned: dict[str, CustomerPlan],
    drifts: list[Drift],
) -> None:
    """Plan one unit (see `_units`): all of its changes, or none of them when any of its
    customers has an error — each of them then reports it (DESIGN 12.3)."""
    by_agreement: dict[int, list[_Draft]] = defaultdict(list)
    for draft in unit:
        if draft.agreement is not None:
            by_agreement[draft.agreement.id].append(draft)
    results: dict[str, tuple[list[Change], list[str], list[str], tuple[int, int]]] = {}
    for agreement_id in sorted(by_agreement):
        group = by_agreement[agreement_id]
        agreement, lead = group[0].agreement, group[0].customer.id
        assert agreement is not None
        changes, errors, warnings, managed = _plan_agreement(
            config, usage, actual, period, agreement, group, drifts
        )
        if any(d.unknown for d in group):
            changes = []  # a share of the quantity is unknown: leave the agreement alone
        if len(group) > 1 and not all(d.customer.shared_agreement for d in group):
            ids = ", ".join(d.customer.id for d in group)
            errors = [
                *errors,
                f"customers {ids} all map to agreement {agreement_id}; set "
                "shared_agreement: true on each of them if they really share it",
            ]
        for i, draft in enumerate(group):
            mine = i == 0
            note = (
                []
                if mine
                else [f"shares agreement {agreement_id} with {lead}; changes shown there"]
            )
            results[draft.customer.id] = (
                changes if mine else [],
                errors,  # an agreement's error is every sharer's error
                (warnings if mine else []) + note,
                managed if mine else (0, 0),
            )
    empty: tuple[list[Change], list[str], list[str], tuple[int, int]] = ([], [], [], (0, 0))
    failing = {
        d.customer.id: (d.errors + results.get(d.customer.id, empty)[1])[0]
        for d in unit
        if d.errors or results.get(d.customer.id, empty)[1]
    }
    blocked: list[str] = []
    if failing and len(unit) > 1:
        blocked = [
            f"shares its agreement with {cid}, which has an error ({why}): nothing on the "
            "shared agreement is changed"
            for cid, why in sorted(failing.items())
        ]
    for draft in unit:
        changes, errors, warnings, managed = results.get(draft.customer.id, empty)
        own = draft.errors + errors
        if blocked:
            changes = []
            if not own:
                own = [
                    b
                    for b, cid in zip(blocked, sorted(failing), strict=True)
                    if cid != draft.customer.id
                ]
        elif own:  # an agreement's error, or the customer's own (its usage, 13.3)
            changes = []
        planned[draft.customer.id] = _customer_plan(
            draft, changes=changes, errors=own, warnings=warnings, managed=managed
        )


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
        errors=tuple(dict.fromkeys(errors)),
        warnings=tuple(sorted(draft.warnings + warnings)),
        managed=managed[0],
        managed_quantity=managed[1],
    )
