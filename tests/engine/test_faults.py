"""Fault convergence: under injected 500s, 429s, dropped connections and committed-but-lost
writes, apply reaches exactly the desired state, never duplicates an addition, and a
second run writes nothing.

Real HTTP against the loopback sandbox; the clients are the production ones, built with
short backoffs and a higher retry bound so a test takes about a second. The fault RNG is
seeded, but which request draws which fault depends on thread scheduling, so each seed is
a family of interleavings rather than one fixed trace: the assertions hold for all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from generated_world import (
    AS_OF,
    World,
    as_desired,
    duplicates,
    live,
    make_world,
    unmanaged,
)

from reconciler.connectwise.apply import apply_plan
from reconciler.core.model import Config, PeriodKind
from reconciler.core.periods import period_for
from reconciler.core.plan import Action, Plan
from reconciler.core.results import ApplyResult
from reconciler.engine.checks import check_safe
from reconciler.engine.clients import Clients
from reconciler.engine.interface import ApplyRequest, PlanRequest
from reconciler.engine.manager import SyncEngine
from reconciler.engine.planning import make_plan
from reconciler.net.settings import HttpSettings
from reconciler.net.stats import Traffic
from reconciler.sandbox import Sandbox

SEEDS = (11, 22, 33)
FAULTS = {"error_500": 0.10, "error_429": 0.10, "drop": 0.05, "lost_write": 0.05}
# Short waits keep the test fast; more retries than production keeps a run of six bad
# draws (0.25**6 per request at these rates) from failing a customer by chance.
RETRY = HttpSettings(backoff_base=0.01, backoff_max=0.05, max_retries=12)


# The production clients, with the test's retry timing (injected, not patched in).
CLIENTS = Clients(http=RETRY)


def fresh_clients() -> Clients:
    """Each sync its own request statistics and throttles, as each command has (the
    engine meters every command afresh): what one run learned of a rate limit is not
    carried into the next."""
    return replace(CLIENTS, traffic=Traffic())


@pytest.fixture(params=SEEDS, ids=lambda s: f"seed{s}")
def world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[World, Sandbox]]:
    seed = request.param
    w = make_world(tmp_path, 50, seed)
    with Sandbox(w.fixture) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        sb.configure_faults(**FAULTS, retry_after=0, seed=seed)
        yield w, sb


def sync(config: Config, customers: Sequence[str] | None = None) -> tuple[Plan, ApplyResult]:
    """plan + apply as `reconcile apply --yes` does, with the test's retry timing."""
    period = period_for(PeriodKind.LAST_BILLING_PERIOD, config.settings, AS_OF)

    async def go() -> tuple[Plan, ApplyResult]:
        clients = fresh_clients()
        async with clients.connectwise(config) as cw:
            planned = await make_plan(config, period, customers, cw, clients)
            check_safe(planned.plan, force=False)
            result = await apply_plan(planned.plan, config, cw, expected=planned.state)
            return planned.plan, result

    return asyncio.run(asyncio.wait_for(go(), timeout=60))


def added_ids(sb: Sandbox, before: set[int]) -> set[int]:
    return {r["id"] for r in sb.all_additions()} - before


def test_full_sync_converges_under_faults(world: tuple[World, Sandbox]) -> None:
    w, sb = world
    assert live(sb, w) != as_desired(w), "the generated world must start out of sync"
    ids_before = {r["id"] for r in sb.all_additions()}
    untouched = unmanaged(sb, w)

    plan, result = sync(w.config)

    assert not plan.has_errors
    assert result.ok, [e for c in result.customers for e in c.errors]
    assert live(sb, w) == as_desired(w)
    assert duplicates(sb, w) == []
    # Exactly one new addition per planned add: a POST whose response was lost was found
    # on re-read instead of being sent again.
    assert len(added_ids(sb, ids_before)) == plan.count(Action.ADD) > 0
    assert unmanaged(sb, w) == untouched
    # Each kind hits ~15+ of the ~330 requests. Lost writes hit only the ~85 writes and may
    # by chance miss a run (about 1%), so they are forced in the test below instead.
    injected = sb.stats.faults
    assert injected["500"] and injected["429"] and injected["drop"]

    writes_before = sb.stats.writes
    again, second = sync(w.config)
    assert again.changes == () and not again.has_errors
    assert second.writes == 0 and sb.stats.writes == writes_before
    assert live(sb, w) == as_desired(w)


def most_out_of_sync(sb: Sandbox, w: World, n: int) -> list[str]:
    now, want = live(sb, w), as_desired(w)
    distance = {
        cid: sum(1 for p in now[a].keys() | want[a].keys() if now[a].get(p) != want[a].get(p))
        for cid, a in w.agreement_of.items()
    }
    return sorted(sorted(distance), key=distance.__getitem__, reverse=True)[:n]


def test_single_customer_syncs_converge_under_faults(world: tuple[World, Sandbox]) -> None:
    """`--customer ID` runs (per-customer usage call, one agreement read) one after another:
    each converges its own agreement and leaves every other agreement as it was."""
    w, sb = world
    customers = most_out_of_sync(sb, w, 6)
    ids_before = {r["id"] for r in sb.all_additions()}
    adds = 0
    for customer in customers:
        agreement = w.agreement_of[customer]
        others_before = {a: q for a, q in live(sb, w).items() if a != agreement}

        plan, result = sync(w.config, [customer])

        assert [cp.customer_id for cp in plan.customers] == [customer]
        assert plan.changes, customer
        assert result.ok, [e for c in result.customers for e in c.errors]
        now = live(sb, w)
        assert now[agreement] == as_desired(w)[agreement]
        assert {a: q for a, q in now.items() if a != agreement} == others_before
        adds += plan.count(Action.ADD)
    assert len(added_ids(sb, ids_before)) == adds
    assert duplicates(sb, w) == []
    assert sum(sb.stats.faults.values()) > 0

    writes_before = sb.stats.writes
    for customer in customers:
        again, second = sync(w.config, [customer])
        assert again.changes == () and second.writes == 0
    assert sb.stats.writes == writes_before


def test_every_post_response_lost_creates_each_addition_once(
    world: tuple[World, Sandbox],
) -> None:
    """The worst case for a non-idempotent POST: it always commits and never answers. The
    re-read after each unknown outcome must find it, so nothing is sent twice."""
    w, sb = world
    sb.configure_faults(lost_write=1.0, methods={"POST"})
    now, want = live(sb, w), as_desired(w)
    customer = next(  # the most out of sync customer that needs an addition created
        c
        for c in most_out_of_sync(sb, w, len(w.agreement_of))
        if want[w.agreement_of[c]].keys() - now[w.agreement_of[c]].keys()
    )
    ids_before = {r["id"] for r in sb.all_additions()}

    plan, result = sync(w.config, [customer])

    assert result.ok, [e for c in result.customers for e in c.errors]
    assert plan.count(Action.ADD) > 0
    assert sb.stats.faults["lost_write"] == plan.count(Action.ADD)
    assert len(added_ids(sb, ids_before)) == plan.count(Action.ADD)
    assert live(sb, w)[w.agreement_of[customer]] == as_desired(w)[w.agreement_of[customer]]
    notes = [r.note for c in result.customers for r in c.results if r.change.action is Action.ADD]
    assert all(n and "not re-sent" in n for n in notes), notes


@pytest.mark.parametrize(
    "faults",
    [FAULTS, {"lost_write": 1.0, "methods": {"PATCH"}}],
    ids=["mixed", "every-patch-answer-lost"],
)
def test_a_saved_plan_applied_at_the_request_floor_converges_under_faults(
    world: tuple[World, Sandbox], tmp_path: Path, faults: dict
) -> None:
    """`apply PLANFILE` (DESIGN 13.7: agreements planned from the file's snapshot, each
    changed one read once before its first write, writes verified by their answers): under
    faults, answers lost or unusable are settled by a re-read, never by sending again."""
    w, sb = world
    ids_before = {r["id"] for r in sb.all_additions()}
    untouched = unmanaged(sb, w)
    engine = SyncEngine(w.config, CLIENTS)
    plan_file = tmp_path / "plan.json"
    plan = engine.plan(PlanRequest(as_of=AS_OF, out=plan_file)).plan
    sb.configure_faults(**faults, retry_after=0, seed=3)

    outcome = engine.apply(ApplyRequest(plan_file=plan_file, send_email=False))

    assert outcome.result.ok, [e for c in outcome.result.customers for e in c.errors]
    assert live(sb, w) == as_desired(w)
    assert duplicates(sb, w) == []
    assert len(added_ids(sb, ids_before)) == plan.count(Action.ADD) > 0
    assert unmanaged(sb, w) == untouched
    assert sum(sb.stats.faults.values()) > 0
    sb.configure_faults()
    again, second = sync(w.config)
    assert again.changes == () and second.writes == 0
