"""Wiring for `plan` and `apply`: config + clients + planner + apply + run log + e-mail.

The CLI calls these and renders; the pure pieces (planner, safety, planfile snapshot) stay
free of I/O, and the clients stay free of policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reconciler import planfile, planner
from reconciler.apply import apply_plan
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.state import read_state
from reconciler.env import cw_credentials_from_env, resolve_api_url
from reconciler.errors import ReconcileError
from reconciler.model import ApplyResult, Config, CustomerMap, CustomerResult, Period, Plan
from reconciler.usage import fetch_usage

EXIT_UNSAFE = 3


class Refused(ReconcileError):
    """apply will not run; exit status 1, or 3 for an unsafe plan."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def select_customers(config: Config, ids: Sequence[str] | None) -> list[CustomerMap]:
    """The customers to plan; an unknown `--customer` is an error before any request.

    Selecting a customer with `shared_agreement: true` selects every shared customer of its
    company too: the agreement's quantity is their sum, and planning one share alone would
    cut the others' licences."""
    if not ids:
        return list(config.customers)
    unknown = [i for i in ids if config.customer(i) is None]
    if unknown:
        known = ", ".join(c.id for c in config.customers[:8])
        more = ", ..." if len(config.customers) > 8 else ""
        raise ReconcileError(
            f"unknown customer {', '.join(map(repr, unknown))}: not in the mappings "
            f"(known: {known}{more})"
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


def connectwise(config: Config) -> ConnectWiseClient:
    url = resolve_api_url(config.settings.cw_api_url, "CW_API_URL")
    return ConnectWiseClient(
        url, cw_credentials_from_env(), max_concurrency=config.settings.max_concurrency
    )


def _products(config: Config) -> set[str]:
    return {s.product for s in config.skus}


@dataclass(frozen=True)
class Planned:
    plan: Plan
    state: dict[str, Any]  # the snapshot a saved plan carries for staleness checks


async def make_plan(
    config: Config,
    period: Period,
    customer_ids: Sequence[str] | None,
    cw: ConnectWiseClient,
) -> Planned:
    customers = select_customers(config, customer_ids)
    ids = [c.id for c in customers] if customer_ids else None
    actual, usage = await asyncio.gather(
        read_state(cw, config, customers),
        fetch_usage(config, period, ids),
    )
    plan = planner.plan(config, usage, actual, ids)
    state = planfile.snapshot(plan, actual, _products(config))
    return Planned(replace(plan, state_fingerprint=planfile.fingerprint(state)), state)


async def make_plans_with_baseline(
    config: Config,
    baseline: Config,
    period: Period,
    customer_ids: Sequence[str] | None,
    cw: ConnectWiseClient,
) -> tuple[Planned, Plan]:
    """The head plan and the base branch's plan from ONE read of ConnectWise and ZeroTek
    (12.7): the union of both configs' customers and products is read once, each plan is
    derived from it, so a difference between them can only come from the mappings."""
    head_customers = select_customers(config, customer_ids)
    ids = [c.id for c in head_customers] if customer_ids else None
    base_customers = [c for c in baseline.customers if ids is None or c.id in set(ids)]
    # Both variants of a customer whose mapping changed: companies and agreements of each.
    union = list({(c.id, c): c for c in [*head_customers, *base_customers]}.values())
    reading = replace(config, skus=tuple(dict.fromkeys((*config.skus, *baseline.skus))))
    actual, usage = await asyncio.gather(
        read_state(cw, reading, union),
        fetch_usage(config, period, sorted({c.id for c in union}) if ids else None),
    )
    head = planner.plan(config, usage, actual, ids)
    base = planner.plan(baseline, usage, actual, [c.id for c in base_customers] if ids else None)
    # The snapshot a saved plan carries must be what `apply` will read with the head config
    # alone: the catalog the head maps, not the union.
    products = _products(config)
    own = replace(actual, catalog={k: v for k, v in actual.catalog.items() if k in products})
    state = planfile.snapshot(head, own, products)
    planned = Planned(replace(head, state_fingerprint=planfile.fingerprint(state)), state)
    return planned, base


async def check_fresh(
    config: Config, plan: Plan, saved_state: dict[str, Any], cw: ConnectWiseClient
) -> None:
    """Refuse a saved plan whose config or ConnectWise state moved since it was made."""
    if planfile.fingerprint(saved_state) != plan.state_fingerprint:
        raise Refused("the plan file was edited after it was saved (fingerprint mismatch)")
    if plan.config_digest != config.digest:
        raise Refused(
            "stale plan: the mappings changed since it was made; run `reconcile plan` again"
        )
    customers = [c for cp in plan.customers if (c := config.customer(cp.customer_id))]
    actual = await read_state(cw, config, customers)
    current = planfile.snapshot(plan, actual, _products(config))
    if planfile.fingerprint(current) != plan.state_fingerprint:
        drift = "\n".join(f"  {line}" for line in planfile.describe_drift(saved_state, current))
        raise Refused(
            "stale plan: ConnectWise changed since it was made; nothing was applied. "
            f"Run `reconcile plan` again.\n{drift}"
        )


def check_enabled(config: Config) -> None:
    if not config.settings.enabled:
        raise Refused(
            "integration is deactivated (enabled: false in mappings/settings.yaml); "
            "nothing was applied. Run `reconcile activate` to turn it back on"
        )


def check_safe(plan: Plan, *, force: bool) -> None:
    if plan.unsafe and not force:
        reasons = "; ".join(plan.unsafe_reasons)
        raise Refused(
            f"unsafe plan refused: {reasons}. Review it and re-run with --force to apply anyway",
            EXIT_UNSAFE,
        )


async def apply(
    config: Config,
    plan: Plan,
    cw: ConnectWiseClient,
    on_customer: Callable[[CustomerResult], None] | None = None,
) -> ApplyResult:
    return await apply_plan(
        plan,
        config,
        cw,
        max_concurrency=config.settings.max_concurrency,
        on_customer=on_customer,
    )
