"""Which ConnectWise agreement a customer mapping (customers.yaml `company` + `agreement`)
resolves to, and whether that agreement can be billed. Pure lookups over the model.

One rule for both of its users: the reader (`connectwise.state`) resolves to know which
agreements' additions to read, the planner to know which one it plans; were they to
disagree, a plan would be made against additions nobody read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from reconciler.core.model import CustomerMap
from reconciler.core.nearest import did_you_mean
from reconciler.core.periods import Period
from reconciler.core.state import Agreement, Company

_DEAD_STATUSES = {"cancelled", "expired", "inactive"}


class Resolved(NamedTuple):
    """The customer's agreement, or (`agreement` None) why it cannot be used."""

    agreement: Agreement | None
    error: str | None


def agreements_by_company(agreements: Iterable[Agreement]) -> dict[int, list[Agreement]]:
    """Index for `resolve_agreement`: a scan of every agreement per customer is O(n^2)."""
    index: dict[int, list[Agreement]] = defaultdict(list)
    for agreement in agreements:
        index[agreement.company_id].append(agreement)
    return index


def companies_by_key(companies: Iterable[Company]) -> dict[str, Company]:
    """Index for `resolve_agreement`: company identifiers compare case-insensitively, as in
    ConnectWise (`acme` and `ACME` are one company)."""
    return {c.identifier.casefold(): c for c in companies}


def resolve_agreement(
    customer: CustomerMap,
    companies: Mapping[str, Company],
    agreements: Mapping[int, Agreement],
    by_company: Mapping[int, Sequence[Agreement]],
) -> Resolved:
    """The customer's agreement, or why it cannot be used. A name resolves only among the
    customer's company's agreements (`by_company` from `agreements_by_company`);
    `companies` is keyed by casefolded identifier (`companies_by_key`)."""
    company = companies.get(customer.company.casefold())
    if company is None:
        hint = did_you_mean(customer.company, (c.identifier for c in companies.values()))
        return Resolved(None, f"ConnectWise company '{customer.company}' not found{hint}")
    own = by_company.get(company.id, ())
    if isinstance(customer.agreement, int):
        agreement = agreements.get(customer.agreement)
        if agreement is None:
            hint = did_you_mean(str(customer.agreement), (str(a.id) for a in own))
            return Resolved(None, f"agreement {customer.agreement} not found{hint}{_listed(own)}")
        if agreement.company_id != company.id:
            why = (
                f"agreement {agreement.id} ('{agreement.name}') belongs to another company "
                f"(id {agreement.company_id}), not '{customer.company}'"
            )
            return Resolved(None, why)
        return Resolved(agreement, None)
    return _by_name(customer, own)


def _by_name(customer: CustomerMap, own: Sequence[Agreement]) -> Resolved:
    """The one agreement of the customer's company with the mapped name."""
    named = [a for a in own if a.name == customer.agreement]
    if not named:
        hint = did_you_mean(str(customer.agreement), (a.name for a in own))
        why = f"no agreement named '{customer.agreement}' for company '{customer.company}'{hint}"
        return Resolved(None, why)
    if len(named) > 1:
        ids = ", ".join(str(a.id) for a in sorted(named, key=lambda a: a.id))
        why = (
            f"agreement name '{customer.agreement}' is ambiguous for company "
            f"'{customer.company}' (ids {ids}); map it by id"
        )
        return Resolved(None, why)
    return Resolved(named[0], None)


def _listed(agreements: Sequence[Agreement], most: int = 5) -> str:
    """The company's agreements, when few: what the mapping could have meant."""
    if not agreements or len(agreements) > most:
        return ""
    return (
        " (the company's agreements: "
        + ", ".join(f"{a.id} '{a.name}'" for a in sorted(agreements, key=lambda a: a.id))
        + ")"
    )


def agreement_problem(agreement: Agreement, period: Period) -> str | None:
    """Why a resolved agreement cannot be billed for `period` (cancelled, expired,
    inactive, ended before the as-of date), else None."""
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
