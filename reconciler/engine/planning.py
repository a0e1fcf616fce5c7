"""Planning against the live systems: read ConnectWise and ZeroTek concurrently and plan
(`make_plan`), with ZeroTek's second opinion before lines are removed for users it stopped
reporting, the ledger's agreements for orphans, the base branch's plan from the same read
(`make_plans_with_baseline`, plan --baseline), and the one check of a saved plan before it
is applied (`verify_saved_plan`); a plan saved for it (`save_plan`, plan --out).

The planning itself is pure (`reconciler.plan`); this module owns the reads it needs, with
the clients it is handed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple, TypeVar

from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.state import read_owned, read_state
from reconciler.core.billed import billed_before
from reconciler.core.errors import ReconcileError
from reconciler.core.files import atomic_write
from reconciler.core.model import Config
from reconciler.core.periods import Period
from reconciler.core.plan import Action, Plan
from reconciler.core.state import ActualState, Addition, Usage
from reconciler.engine.checks import company_peers, select_customers, selection
from reconciler.engine.clients import Clients
from reconciler.engine.interface import Planned, Refused
from reconciler.net.taskgroup import all_or_none2
from reconciler.plan import orphans, planfile, planner, verify
from reconciler.plan.snapshot import known_additions
from reconciler.secure.scrub import scrub
from reconciler.usage import UsageRead, fetch_usage, reading_usage, second_opinion

T = TypeVar("T")


async def make_plan(
    config: Config,
    period: Period,
    customer_ids: Sequence[str] | None,
    cw: ConnectWiseClient,
    clients: Clients,
    known: Mapping[int, tuple[Addition, ...]] | None = None,
) -> Planned:
    """Read both systems (concurrently) and plan; the snapshot is what staleness is
    judged against, in a saved plan and at the just-in-time re-read before each write.
    `known`: agreements whose additions are not read but taken from a saved plan (13.7).

    ZeroTek's customer directory is a chain of cursor pages that ends seconds after the
    other reads at 10,000 customers: the plan is prepared from those (a slice at a time,
    so the chain's pages go on being read) and finished when the directory is in."""
    customers = company_peers(config, select_customers(config, customer_ids), customer_ids)
    ids = [c.id for c in customers] if customer_ids else None
    selected = selection(config, customer_ids)

    async def read_and_prepare(reading: UsageRead) -> _Prepared:
        # All or none: a failed usage read must not leave ConnectWise requests running.
        actual, usage = await all_or_none2(read_state(cw, config, customers, known), reading.rows())
        actual = await _with_ledger_agreements(cw, config, actual, selected, known)
        steps = planner.preparing(config, usage, actual, selected)
        return _Prepared(actual, usage, await _between_requests(steps))

    zerotek = lambda: clients.zerotek(config)  # noqa: E731
    async with reading_usage(config, period, ids, zerotek=zerotek) as reading:
        read, directory = await all_or_none2(read_and_prepare(reading), reading.directory())
    usage = read.usage if directory is None else replace(read.usage, known_customers=directory)
    actual = read.actual
    plan, _ = await _plan_checked(config, usage, actual, selected, clients, read.prepared)
    del read  # its prepared units are spent: ~7 MB at 10,000 customers, at the peak
    state = planfile.snapshot(plan, actual, config.owned_products)
    plan = replace(plan, state_fingerprint=planfile.fingerprint(state))
    return Planned(plan, state, billed=billed_before(config, plan, actual))


# How long planning holds the event loop before it lets the answers that came in be read
# (the directory's next page asked for): short beside a request's ~40 ms.
_SLICE_SECONDS = 0.002


async def _between_requests(steps: Generator[None, None, T]) -> T:
    """Run `steps` to its result on the event loop, a slice at a time, the loop's other
    work in between: planning 10,000 customers takes most of a second, during which the
    directory's chain of pages would otherwise stand still."""
    until = time.perf_counter() + _SLICE_SECONDS
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result
        if time.perf_counter() >= until:
            await asyncio.sleep(0)
            until = time.perf_counter() + _SLICE_SECONDS


class _Prepared(NamedTuple):
    actual: ActualState
    usage: Usage
    prepared: planner.Prepared


async def _plan_checked(
    config: Config,
    usage: Usage,
    actual: ActualState,
    selected: Sequence[str] | None,
    clients: Clients,
    prepared: planner.Prepared | None = None,
) -> tuple[Plan, Usage]:
    """Plan (finishing `prepared`, made from the same reads, when given); when the bulk
    usage left customers at zero users on an agreement the plan removes lines from, ask
    ZeroTek again per customer first (13.2: the second opinion) and plan again with what
    it said."""
    if prepared is None:
        plan = planner.plan(config, usage, actual, selected)
    else:
        plan = planner.finish(prepared, usage)
    if selected is not None:
        return plan, usage  # already the per-customer call
    emptied = {c.agreement_id for c in plan.changes if c.action is Action.REMOVE and not c.orphan}
    known = usage.known_customers or {}
    doubtful = [
        cp.customer_id
        for cp in plan.customers
        if cp.agreement_id in emptied
        and not usage.users.get(cp.customer_id)
        and cp.customer_id in known
    ]
    if not doubtful:
        return plan, usage
    zerotek = lambda: clients.zerotek(config)  # noqa: E731
    checked = await second_opinion(config, usage, doubtful, zerotek=zerotek)
    if checked.problems == usage.problems:
        return plan, usage
    return planner.plan(config, checked, actual, selected), checked


async def _with_ledger_agreements(
    cw: ConnectWiseClient,
    config: Config,
    actual: ActualState,
    selected: Sequence[str] | None,
    known: Mapping[int, tuple[Addition, ...]] | None = None,
) -> ActualState:
    """The ledger's agreements the mappings did not make us read (orphans, DESIGN 13.1);
    those a saved plan's snapshot holds (`known`, 13.7) are taken from it."""
    extra = orphans.ledger_agreements(config, selected, actual.additions)
    have = {i: known[i] for i in extra if known and i in known}
    if have:
        actual = replace(actual, additions={**actual.additions, **have})
    return await read_owned(cw, actual, [i for i in extra if i not in have], config.owned_products)


async def make_plans_with_baseline(
    config: Config,
    baseline: Config,
    period: Period,
    customer_ids: Sequence[str] | None,
    cw: ConnectWiseClient,
    clients: Clients,
) -> tuple[Planned, Plan]:
    """The head plan and the base branch's plan from ONE read of ConnectWise and ZeroTek
    (12.7): the union of both configs' customers and products is read once, each plan is
    derived from it, so a difference between them can only come from the mappings."""
    head_customers = company_peers(config, select_customers(config, customer_ids), customer_ids)
    chosen = selection(config, customer_ids)
    # (a customer whose mapping the head removed is still mapped in the base)
    ids = None if chosen is None else {c.id for c in head_customers} | set(chosen)
    base_customers = [c for c in baseline.customers if ids is None or c.id in ids]
    # Both variants of a customer whose mapping changed: companies and agreements of each.
    union = list({(c.id, c): c for c in [*head_customers, *base_customers]}.values())
    reading = replace(config, skus=tuple(dict.fromkeys((*config.skus, *baseline.skus))))
    actual, usage = await all_or_none2(
        read_state(cw, reading, union),
        fetch_usage(
            config,
            period,
            None if ids is None else sorted({c.id for c in union}),
            zerotek=lambda: clients.zerotek(config),
        ),
    )
    actual = await _with_ledger_agreements(cw, config, actual, chosen)
    if baseline.ledger is not None and baseline.ledger != config.ledger:
        actual = await _with_ledger_agreements(cw, baseline, actual, chosen)
    head, usage = await _plan_checked(config, usage, actual, chosen, clients)
    base_ids = [c.id for c in base_customers if chosen is None or c.id in set(chosen)]
    base = planner.plan(baseline, usage, actual, None if chosen is None else base_ids)
    # The snapshot a saved plan carries must be what `apply` will read with the head config
    # alone: the catalog the head maps, not the union.
    products = config.managed_products
    own = replace(actual, catalog={k: v for k, v in actual.catalog.items() if k in products})
    state = planfile.snapshot(head, own, config.owned_products)
    planned = Planned(replace(head, state_fingerprint=planfile.fingerprint(state)), state)
    return planned, base


async def verify_saved_plan(
    config: Config, saved: Planned, cw: ConnectWiseClient, clients: Clients
) -> Planned:
    """The one place a saved plan is checked before it is applied (DESIGN 12.4): it is
    re-derived now (ZeroTek usage for its period, the ConnectWise lists as they are, the
    current mappings, its customer selection) and must be identical to the file, else
    Refused with nothing written. The re-derived plan is what is applied: its safety verdict
    is recomputed, never read from the file. The comparison is `verify.differences` (pure).

    At the request floor (13.7) the agreements in the file's snapshot are not read here:
    their additions come from the snapshot, and apply reads each one it writes to just
    before its first write, skipping it as stale when it differs. Only agreements the
    snapshot lacks (customers that had errors) are read."""
    plan, saved_data = saved.plan, saved.data or {}
    if plan.config_digest != config.digest:
        raise Refused(
            "stale plan: the mappings changed since it was made; nothing was applied. "
            "Run `reconcile plan` again"
        )
    known = known_additions(saved.state)
    planned = await make_plan(config, plan.period, plan.selection, cw, clients, known)
    derived = planfile.plan_to_dict(planned.plan, planned.state, lazy_customers=True)
    found = verify.differences(saved_data, derived)
    if not found:
        return planned
    untouched = planfile.fingerprint(saved.state) == plan.state_fingerprint
    if untouched and saved.state != planned.state:
        drift = planfile.describe_drift(saved.state, planned.state)
        raise Refused(
            "stale plan: ConnectWise changed since it was made; nothing was applied. "
            "Run `reconcile plan` again.\n" + "\n".join(f"  {line}" for line in drift)
        )
    raise Refused(
        "the saved plan differs from the plan re-derived now (ZeroTek usage for its period, "
        "ConnectWise as it is, the current mappings): the file was edited or the usage "
        "changed; nothing was applied. Run `reconcile plan` again.\n"
        + "\n".join(f"  {line}" for line in found)
    )


def save_plan(path: Path, planned: Planned) -> None:
    """The plan with its state snapshot, as `apply PLANFILE` reads it (credentials scrubbed)."""
    try:
        atomic_write(path, scrub(planfile.dumps(planned.plan, planned.state)))
    except OSError as exc:  # the CLI checked the path first; a race, a full disk...
        raise ReconcileError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None
