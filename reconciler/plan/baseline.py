"""What a pull request itself does (12.7): the head plan compared with the base branch's plan,
both made from the same read of ZeroTek and ConnectWise.

A head change the baseline plan makes identically is `drift` (the next sync makes it with
or without the pull request); any other head change is `change`; a change the baseline
would make that the head plan no longer makes is `dropped`. The pull request's own monthly
delta is therefore sum(change) - sum(dropped). Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from reconciler.core.model import Config, Settings
from reconciler.core.plan import Change, CustomerPlan, Plan

Cause = Literal["change", "drift", "dropped"]

# Where the credentials go (DESIGN 13.6): taken from the base branch, never from the pull
# request's head, which anyone with a branch can edit. (Settings attribute, settings.yaml
# key.) SMTP and the chat webhook are set only by environment variables today; a settings
# key for them must join this list (tests/secure/test_trust.py checks the schema for such keys).
CONNECTION_SETTINGS = (
    ("cw_api_url", "connectwise.api_url"),
    ("zerotek_api_url", "zerotek.api_url"),
)


def connection_from_base(head: Config, base: Settings | None) -> tuple[Config, list[str]]:
    """`head` with the base branch's connection settings, and one warning per setting the
    head changes. No base settings (a first pull request): none from the head either, so
    only the environment (CW_API_URL, ZEROTEK_API_URL) can name an API root."""
    source = base if base is not None else Settings()  # its API roots are unset ("")
    where = "the base branch's" if base is not None else "no"
    warnings = [
        f"mappings/settings.yaml {key}: this pull request changes it; it applies after "
        f"merge, and this plan used {where} value (environment variables still override it)"
        for attribute, key in CONNECTION_SETTINGS
        if getattr(head.settings, attribute) != getattr(source, attribute)
    ]
    settings = replace(
        head.settings, cw_api_url=source.cw_api_url, zerotek_api_url=source.zerotek_api_url
    )
    return replace(head, settings=settings), warnings


@dataclass(frozen=True)
class Labelled:
    change: Change
    cause: Cause

    @property
    def revenue_delta(self) -> Decimal:
        """What this line does to the monthly invoice relative to the base branch."""
        delta = self.change.revenue_delta
        return -delta if self.cause == "dropped" else delta


@dataclass(frozen=True)
class CustomerComparison:
    customer: CustomerPlan  # the head's plan of the customer, else the baseline's
    labelled: tuple[Labelled, ...]

    def of(self, *causes: Cause) -> tuple[Labelled, ...]:
        return tuple(x for x in self.labelled if x.cause in causes)


@dataclass(frozen=True)
class Comparison:
    head: Plan
    baseline: Plan
    customers: tuple[CustomerComparison, ...]  # head order, then customers only the base has

    def of(self, *causes: Cause) -> tuple[tuple[CustomerComparison, tuple[Labelled, ...]], ...]:
        return tuple((cc, found) for cc in self.customers if (found := cc.of(*causes)))

    def delta(self, *causes: Cause) -> Decimal:
        return sum((x.revenue_delta for cc in self.customers for x in cc.of(*causes)), Decimal(0))

    @property
    def pull_request_delta(self) -> Decimal:
        return self.delta("change", "dropped")

    def cause_of(self, change: Change) -> Cause:
        for cc in self.customers:
            for x in cc.labelled:
                if x.change is change:
                    return x.cause
        raise KeyError(change)


def compare(head: Plan, baseline: Plan) -> Comparison:
    base_by_id = {cp.customer_id: cp for cp in baseline.customers}
    head_ids = {cp.customer_id for cp in head.customers}
    out: list[CustomerComparison] = []
    for cp in head.customers:
        base = base_by_id.get(cp.customer_id)
        out.append(CustomerComparison(cp, _label(cp.changes, base.changes if base else ())))
    for base in baseline.customers:
        if base.customer_id not in head_ids:  # the pull request removed its mapping
            out.append(CustomerComparison(base, _label((), base.changes)))
    return Comparison(head, baseline, tuple(out))


def _label(head: tuple[Change, ...], base: tuple[Change, ...]) -> tuple[Labelled, ...]:
    # Identical down to price, dates and description: a pull request that only changes a
    # unit price or a description changes what is sent, so that is its own change.
    pending = Counter(base)
    labelled = []
    for c in head:
        if pending[c] > 0:
            pending[c] -= 1
            labelled.append(Labelled(c, "drift"))
        else:
            labelled.append(Labelled(c, "change"))
    for c in base:
        if pending[c] > 0:
            pending[c] -= 1
            labelled.append(Labelled(c, "dropped"))
    return tuple(labelled)
