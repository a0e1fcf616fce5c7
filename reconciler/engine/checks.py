"""The checks an engine run makes before any request: which customers a `--customer`
selects (an unknown id is refused; a shared agreement brings its other shares along), what
a selection reads, and the refusals of a deactivated integration and of an unsafe plan (with
the note an unsafe plan applied with --force carries). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config, CustomerMap
from reconciler.core.nearest import did_you_mean
from reconciler.core.plan import Plan
from reconciler.engine.interface import EXIT_UNSAFE, Refused
from reconciler.plan import orphans


def select_customers(config: Config, ids: Sequence[str] | None) -> list[CustomerMap]:
    """The customers to plan; an unknown `--customer` is an error before any request.

    Selecting a customer with `shared_agreement: true` selects every shared customer of its
    company too: the agreement's quantity is their sum, and planning one share alone would
    cut the others' licences."""
    if not ids:
        return list(config.customers)
    removed = orphans.removed_customers(config)
    unknown = [i for i in ids if config.customer(i) is None and i not in removed]
    if unknown:
        known = ", ".join(c.id for c in config.customers[:8])
        more = ", ..." if len(config.customers) > 8 else ""
        hint = did_you_mean(unknown[0], [*(c.id for c in config.customers), *sorted(removed)])
        raise ReconcileError(
            f"unknown customer {', '.join(map(repr, unknown))}: not in the mappings "
            f"(known: {known}{more}) nor in state/managed.json{hint}"
        )
    wanted = set(ids)
    shared = {
        c.company.casefold() for c in config.customers if c.id in wanted and c.shared_agreement
    }
    return [
        c
        for c in config.customers
        if c.id in wanted or (c.shared_agreement and c.company.casefold() in shared)
    ]


def selection(config: Config, ids: Sequence[str] | None) -> list[str] | None:
    """The ids a `--customer` plan answers for (None: everyone): the selected customers with
    the shares of their agreements, and those whose mapping was removed, known from the
    ledger, whose orphans are all there is to plan (DESIGN 13.1: `--customer C` includes
    C's orphans)."""
    if not ids:
        return None
    mapped = [c.id for c in select_customers(config, ids)]
    return [*mapped, *(i for i in dict.fromkeys(ids) if config.customer(i) is None)]


def company_peers(
    config: Config, customers: Sequence[CustomerMap], ids: Sequence[str] | None
) -> list[CustomerMap]:
    """What a `--customer` plan reads: the selection and every customer of the same
    companies, the only ones whose agreement can resolve to a selected one's (the planner
    brings those along, DESIGN 13.3). Every customer when none is selected."""
    if not ids:
        return list(customers)
    keys = {c.company.casefold() for c in customers}
    return [c for c in config.customers if c.company.casefold() in keys]


def check_enabled(config: Config) -> None:
    if not config.settings.enabled:
        raise Refused(
            "integration is deactivated (enabled: false in mappings/settings.yaml); "
            "nothing was applied. Run `reconcile activate` to turn it back on"
        )


def check_safe(plan: Plan, *, force: bool) -> None:
    if plan.unsafe and not force:
        reasons = "; ".join(plan.unsafe_reasons)
        # a reason may end with its own punctuation ("did you mean OKTA-MFA?")
        stop = "" if reasons.endswith((".", "?", "!")) else "."
        raise Refused(
            f"unsafe plan refused: {reasons}{stop} Review it and re-run with --force to apply "
            "anyway",
            EXIT_UNSAFE,
        )


def note_forced(plan: Plan, force: bool, environ: Mapping[str, str]) -> Plan:
    """An unsafe plan applied with --force says so in its run record (and e-mail), with
    who forced it when GitHub Actions ran it (the `force` input of sync.yml)."""
    if not (force and plan.unsafe):
        return plan
    who = environ.get("GITHUB_ACTOR", "").strip() if environ.get("GITHUB_ACTIONS") else ""
    note = (
        "applied with --force although the plan is unsafe ("
        + "; ".join(plan.unsafe_reasons)
        + ")"
        + (f", forced by {who}" if who else "")
    )
    return replace(plan, warnings=(*plan.warnings, note))
