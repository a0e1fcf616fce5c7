"""Customers planned together (DESIGN 12.3, 13.3): the customers resolved to one agreement,
and every `shared_agreement` customer of one company, are one unit. Each agreement of a
unit is planned once for all the customers billed on it (`lines`); its changes are shown
under the first of them (by id). A unit changes all or nothing: an error of any of its
customers leaves the whole unit untouched, and each of them says why.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler.core.model import CustomerMap
from reconciler.core.plan import CustomerPlan
from reconciler.core.state import Agreement
from reconciler.plan.lines import AgreementPlan, Sources, plan_agreement
from reconciler.plan.pricing import Drift


@dataclass
class Draft:
    """A customer's plan while it is being built (CustomerPlan is frozen): what its usage
    and mapping say before its agreement is planned."""

    customer: CustomerMap
    agreement: Agreement | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unknown: bool = False  # ZeroTek does not know this customer id


def units(drafts: Sequence[Draft]) -> list[list[Draft]]:
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
    groups: dict[str, list[Draft]] = defaultdict(list)
    for draft in drafts:
        groups[find(draft.customer.id)].append(draft)
    return [sorted(g, key=lambda d: d.customer.id) for g in groups.values()]


def plan_unit(src: Sources, unit: list[Draft], drifts: list[Drift]) -> dict[str, CustomerPlan]:
    """Plan one unit (see `units`): all of its changes, or none of them when any of its
    customers has an error — each of them then reports it (DESIGN 12.3)."""
    results = _plan_agreements(src, unit, drifts)
    failing: dict[str, str] = {}  # customer id -> its first error
    for draft in unit:
        errors = draft.errors + results.get(draft.customer.id, AgreementPlan()).errors
        if errors:
            failing[draft.customer.id] = errors[0]
    blocked = {
        cid: f"shares its agreement with {cid}, which has an error ({why}): nothing on the "
        "shared agreement is changed"
        for cid, why in sorted(failing.items())
    }
    if len(unit) == 1:
        blocked = {}  # its own errors say it all
    return {
        d.customer.id: _customer_plan(d, _settled(d, results.get(d.customer.id), blocked))
        for d in unit
    }


def _plan_agreements(
    src: Sources, unit: list[Draft], drifts: list[Drift]
) -> dict[str, AgreementPlan]:
    """Each agreement of the unit planned once, for all the customers billed on it."""
    by_agreement: dict[int, list[Draft]] = defaultdict(list)
    for draft in unit:
        if draft.agreement is not None:
            by_agreement[draft.agreement.id].append(draft)
    results: dict[str, AgreementPlan] = {}
    for agreement_id in sorted(by_agreement):
        group = by_agreement[agreement_id]
        results.update(_shared_out(group, _plan_shared(src, group, drifts)))
    return results


def _plan_shared(src: Sources, group: list[Draft], drifts: list[Drift]) -> AgreementPlan:
    """One agreement's plan for the customers mapped to it (usually one)."""
    agreement = group[0].agreement
    assert agreement is not None
    planned = plan_agreement(src, agreement, [d.customer for d in group], drifts)
    if any(d.unknown for d in group):
        planned.changes = []  # a share of the quantity is unknown: leave the agreement alone
    if len(group) > 1 and not all(d.customer.shared_agreement for d in group):
        ids = ", ".join(d.customer.id for d in group)
        planned.errors.append(
            f"customers {ids} all map to agreement {agreement.id}; set "
            "shared_agreement: true on each of them if they really share it"
        )
    return planned


def _shared_out(group: list[Draft], planned: AgreementPlan) -> dict[str, AgreementPlan]:
    """The first customer (by id) shows the agreement's changes, warnings and managed
    lines; an agreement's error is every sharer's error; the others say where to look."""
    lead, agreement = group[0].customer.id, group[0].agreement
    assert agreement is not None
    note = f"shares agreement {agreement.id} with {lead}; changes shown there"
    others = {
        d.customer.id: AgreementPlan(errors=planned.errors, warnings=[note]) for d in group[1:]
    }
    return {lead: planned, **others}


def _settled(draft: Draft, planned: AgreementPlan | None, blocked: dict[str, str]) -> AgreementPlan:
    """The customer's final part: no changes when it or its unit has an error; a customer
    without an error of its own says which sharer blocked it."""
    planned = planned or AgreementPlan()
    own = draft.errors + planned.errors
    if blocked and not own:
        own = [note for cid, note in blocked.items() if cid != draft.customer.id]
    changes = [] if blocked or own else planned.changes  # own: its usage's or its agreement's
    return AgreementPlan(changes, own, planned.warnings, planned.managed)


def _customer_plan(draft: Draft, result: AgreementPlan) -> CustomerPlan:
    c, a = draft.customer, draft.agreement
    return CustomerPlan(
        customer_id=c.id,
        name=c.name,
        company=c.company,
        agreement_id=a.id if a else None,
        agreement_name=a.name if a else None,
        agreement_end_date=a.end_date if a and not a.no_ending_date else None,
        changes=tuple(sorted(result.changes, key=lambda ch: (ch.product, ch.sku))),
        errors=tuple(dict.fromkeys(result.errors)),
        warnings=tuple(sorted(draft.warnings + result.warnings)),
        managed=result.managed.lines,
        managed_quantity=result.managed.quantity,
    )
