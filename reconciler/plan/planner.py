"""The planner: (config, usage, actual state) -> Plan. Pure: no I/O, no clock, no randomness.

Only *managed* additions are ever touched: active additions, on a mapped agreement, of a
mapped catalog product. Everything else on ConnectWise is somebody else's and stays out of
the plan. Output is sorted so the same inputs give byte-identical plans.

The algorithm: each selected customer's agreement is resolved (`core.mapping`); customers
that share an agreement are planned as one unit (`units`), each agreement's lines once
(`lines`); then the orphans' removals are added (`orphans`) and the verdict
is taken over the whole plan (`safety`, `guards`).

It runs in two steps, `prepare` and `finish`, because ZeroTek's customer directory is
the last read to arrive (a chain of cursor pages, seconds at 10,000 customers) and decides
little: which mapped customers ZeroTek does not know, and the names of unmapped ones.
`prepare` plans every unit as if each customer were known, while the directory is still
read; `finish` plans again only the units of customers it does not know. `plan` is both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from reconciler.core.mapping import (
    Resolved,
    agreement_problem,
    agreements_by_company,
    companies_by_key,
    resolve_agreement,
)
from reconciler.core.model import Config, CustomerMap
from reconciler.core.nearest import did_you_mean
from reconciler.core.plan import CustomerPlan, Plan
from reconciler.core.state import ActualState, Agreement, Company, Usage
from reconciler.plan.guards import silent_skus
from reconciler.plan.lines import Sources
from reconciler.plan.orphans import with_orphans
from reconciler.plan.pricing import Drift, drift_warnings
from reconciler.plan.safety import unsafe_reasons
from reconciler.plan.units import Draft, plan_unit, units


@dataclass(frozen=True)
class _Lookup:
    """Indexes built once per plan: a scan per customer is O(n^2) at 10,000 customers."""

    companies: dict[str, Company]  # by casefolded identifier
    by_company: dict[int, list[Agreement]]
    mapped_skus: frozenset[str]  # casefolded

    @classmethod
    def of(cls, config: Config, actual: ActualState) -> _Lookup:
        return cls(
            companies_by_key(actual.companies.values()),
            agreements_by_company(actual.agreements.values()),
            frozenset(s.sku.casefold() for s in config.skus),
        )

    def resolve(self, customer: CustomerMap, actual: ActualState) -> Resolved:
        return resolve_agreement(customer, self.companies, actual.agreements, self.by_company)


class _Selection(NamedTuple):
    """The customers to plan: None is every mapped one; `notes` say which were brought
    along because they share an agreement with a selected one."""

    ids: list[str] | None
    notes: list[str]


@dataclass(frozen=True, slots=True)
class _Unit:
    """One unit planned as if each of its customers were known to ZeroTek (tuples, and
    slots: 10,000 of them are held while the directory is read)."""

    drafts: list[Draft]
    plans: tuple[CustomerPlan, ...]
    drifts: tuple[Drift, ...]


@dataclass(frozen=True)
class Prepared:
    """What `prepare` planned: everything but ZeroTek's customer directory."""

    src: Sources
    selection: _Selection
    drafts: list[Draft]
    units: list[_Unit]
    unmapped_skus: tuple[tuple[str, str, int], ...]


def plan(
    config: Config,
    usage: Usage,
    actual: ActualState,
    customer_ids: Sequence[str] | None = None,
) -> Plan:
    """Compute the plan for the selected customers (default: every mapped customer)."""
    return finish(prepare(config, usage, actual, customer_ids), usage)


def prepare(
    config: Config,
    usage: Usage,
    actual: ActualState,
    customer_ids: Sequence[str] | None = None,
) -> Prepared:
    """Every unit planned as if ZeroTek knew each customer: `usage.known_customers` is not
    looked at (it may not have been read yet); `finish` takes it into account."""
    steps = preparing(config, usage, actual, customer_ids)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            prepared: Prepared = done.value
            return prepared


def preparing(
    config: Config,
    usage: Usage,
    actual: ActualState,
    customer_ids: Sequence[str] | None = None,
) -> Generator[None, None, Prepared]:
    """`prepare` in steps: it yields after each customer's draft and each unit, so that
    its caller can let other work in between (the engine: the directory's pages)."""
    src = Sources(config, usage, actual)
    lookup = _Lookup.of(config, actual)
    selection = _bring_along(config, actual, customer_ids, lookup)
    drafts = []
    for c in _selected(config, selection.ids):
        drafts.append(_draft(c, src, lookup))
        yield
    planned = []
    for unit in units(drafts):
        drifts: list[Drift] = []
        plans = tuple(plan_unit(src, unit, drifts).values())
        planned.append(_Unit(unit, plans, tuple(drifts)))
        yield
    unmapped = tuple(_unmapped_skus(usage, drafts, lookup))
    return Prepared(src, selection, drafts, planned, unmapped)


def finish(prepared: Prepared, usage: Usage) -> Plan:
    """The plan: `prepared` (made from the same usage rows, mappings and ConnectWise state)
    with `usage.known_customers`, ZeroTek's directory, applied: a unit with a customer
    ZeroTek does not know is planned again, the customer left untouched (`_unknown`)."""
    config, selection = prepared.src.config, prepared.selection
    src = prepared.src._replace(usage=usage)
    planned: dict[str, CustomerPlan] = {}
    drifts: list[Drift] = []
    for unit in prepared.units:
        if usage.known_customers is None or all(
            d.customer.id in usage.known_customers for d in unit.drafts
        ):
            planned.update((cp.customer_id, cp) for cp in unit.plans)
            drifts += unit.drifts
            continue
        again = [_unknown(d, src) for d in unit.drafts]
        planned.update(plan_unit(src, again, drifts))
    warnings = [*selection.notes, *drift_warnings(drifts, config.settings.currency)]
    if selection.ids is None:
        warnings += _unmapped_customers(config, usage)
    result = Plan(
        period=usage.period,
        customers=tuple(planned[cid] for cid in sorted(planned)),
        warnings=tuple(warnings),
        unmapped_skus=tuple(sorted(prepared.unmapped_skus)),
        config_digest=config.digest,
        removal=config.settings.removal,
        currency=config.settings.currency,
        reported_users=_reported_users(usage, prepared.drafts),
        selection=None if selection.ids is None else tuple(sorted(set(selection.ids))),
    )
    return _guarded(with_orphans(result, config, src.actual), config, usage)


def _selected(config: Config, ids: Sequence[str] | None) -> list[CustomerMap]:
    wanted = None if ids is None else set(ids)
    chosen = (c for c in config.customers if wanted is None or c.id in wanted)
    return sorted(chosen, key=lambda c: c.id)


def _draft(customer: CustomerMap, src: Sources, lookup: _Lookup) -> Draft:
    """A customer's draft before its agreement is planned: what its usage says (unmapped
    SKUs in use, a usage error) and its agreement. Whether ZeroTek knows it is `_unknown`'s."""
    draft = Draft(customer)
    usage, cid = src.usage, customer.id
    for _, sku, users in _unmapped_skus(usage, [draft], lookup):
        draft.warnings.append(f"uses ZeroTek SKU {sku} ({users} users), which is not mapped")
    if cid in usage.problems:
        draft.errors.append(usage.problems[cid])
    resolved = _usable_agreement(customer, src, lookup)
    if resolved.error:
        draft.errors.append(resolved.error)
    else:
        draft.agreement = resolved.agreement
    return draft


def _unknown(draft: Draft, src: Sources) -> Draft:
    """`draft` as it is when ZeroTek's directory (`src.usage.known_customers`) lacks it."""
    known, cid = src.usage.known_customers, draft.customer.id
    if known is None or cid in known:
        return draft
    # No usage because ZeroTek has never heard of the id (a typo, a migrated tenant) is
    # not "every user left": cancelling their licences would be wrong.
    unmapped_ids = (i for i in known if src.config.customer(i) is None)
    warning = (
        f"ZeroTek does not know customer '{cid}': left untouched (check the id"
        f"{did_you_mean(cid, unmapped_ids)})"
    )
    return replace(draft, warnings=[*draft.warnings, warning], unknown=True)


def _usable_agreement(customer: CustomerMap, src: Sources, lookup: _Lookup) -> Resolved:
    """The customer's agreement, if ConnectWise answered for its company and the agreement
    can be billed this period; else why not."""
    agreement, error = lookup.resolve(customer, src.actual)
    refused = src.actual.refused.get(customer.company.casefold())
    if refused is not None:  # not "not found": ConnectWise would not say
        error = f"ConnectWise refused the query for company '{customer.company}': {refused}"
    if error is None and agreement is not None:
        error = agreement_problem(agreement, src.period)
    return Resolved(agreement, error)


def _unmapped_skus(
    usage: Usage, drafts: Iterable[Draft], lookup: _Lookup
) -> Iterable[tuple[str, str, int]]:
    """(customer id, SKU, users) of every SKU in use that no mapping names."""
    for draft in drafts:
        cid = draft.customer.id
        for sku, users in sorted(usage.users.get(cid, {}).items()):
            if sku.casefold() not in lookup.mapped_skus and users > 0:
                yield cid, sku, users


def _reported_users(usage: Usage, drafts: Iterable[Draft]) -> int:
    """Users ZeroTek reports for the planned customers, every SKU (the wipe guard's)."""
    return sum(max(n, 0) for d in drafts for n in usage.users.get(d.customer.id, {}).values())


def _unmapped_customers(config: Config, usage: Usage) -> list[str]:
    """A warning per ZeroTek customer with usage and no mapping (a full plan only)."""
    mapped_ids = {c.id for c in config.customers}
    names = usage.known_customers or {}
    warnings = []
    for cid in sorted(set(usage.users) - mapped_ids):
        skus = usage.users[cid]
        if not any(skus.values()):
            continue
        detail = ", ".join(f"{s} {n}" for s, n in sorted(skus.items()))
        label = f"'{cid}' ({names[cid]})" if cid in names else f"'{cid}'"
        warnings.append(f"ZeroTek customer {label} has usage but no mapping: {detail}")
    return warnings


def _guarded(result: Plan, config: Config, usage: Usage) -> Plan:
    """The verdict over the whole plan, orphans' removals included (DESIGN 13.1, 13.2)."""
    reasons = unsafe_reasons(result, config.settings.safety) + silent_skus(result, config, usage)
    return replace(result, unsafe_reasons=reasons)


def _bring_along(
    config: Config, actual: ActualState, ids: Sequence[str] | None, lookup: _Lookup
) -> _Selection:
    """`--customer C` plans every customer whose agreement resolves to C's (DESIGN 13.3):
    one named by id and another by name are one agreement, and planning C alone would set
    the line to C's users only. Only customers of C's company can resolve to it (the
    caller reads them). Returns the ids to plan, and a note per agreement planned for more
    than one of them (the same for the expanded selection: a saved plan re-derives it).
    None (every customer) stays None."""
    if ids is None:
        return _Selection(None, [])
    wanted = set(ids)
    keys = {c.company.casefold() for c in config.customers if c.id in wanted}
    peers = [c for c in config.customers if c.company.casefold() in keys]
    resolved = {c.id: a.id for c in peers if (a := lookup.resolve(c, actual).agreement) is not None}
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
    return _Selection(chosen, notes)
