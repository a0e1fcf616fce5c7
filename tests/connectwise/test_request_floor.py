"""Apply at the request floor (DESIGN 13.7), counted by the sandbox's request log.

`apply PLANFILE` reads ZeroTek usage, the ConnectWise lists and each agreement with planned
changes once (just before its first write); agreements without changes are planned from the
file's snapshot, and every write is verified by its answer. So at 300 customers with about
100 changed, the additions reads equal the changed agreements, and the requests equal
usage pages + list pages + changed agreements + writes. The CLI in-process, the sandbox on
loopback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import world_edits
from generated_world import AS_OF, World, duplicates, make_world
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.core.model import PeriodKind
from reconciler.core.periods import period_for
from reconciler.sandbox import Sandbox

ADDITIONS = "GET additions"
WRITES = ("POST additions", "PATCH additions/{id}", "DELETE additions/{id}")
LISTS = ("GET companies", "GET agreements", "GET catalog")
USAGE = ("GET zt-usage", "GET zt-customers")
ENV: dict[Path, dict[str, str]] = {}


def reconcile(world: World, *args: str) -> str:
    env = ENV[world.root]
    result = CliRunner().invoke(app, ["--config-dir", str(world.root), *args], env=env)
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 0, result.output
    return result.output


def plan_file(world: World) -> dict[str, Any]:
    out = world.root / "plan.json"
    reconcile(world, "plan", "--as-of", AS_OF.isoformat(), "--out", str(out))
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def bump_usage(sb: Sandbox, world: World, customers: list[str]) -> None:
    """One more user of a mapped SKU for each of `customers`: one change each."""
    period = period_for(PeriodKind.LAST_BILLING_PERIOD, world.config.settings, AS_OF)
    users = sb.usage(period.start, period.end)
    for cid in customers:
        customer = world.config.customer(cid)
        assert customer is not None
        excluded = {s.casefold() for s in customer.exclude_skus}
        mapped = [s for s in users.get(cid, {}) if s in world.product_of]
        sku = sorted(s for s in mapped if s.casefold() not in excluded)[0]
        world_edits.set_users(sb, cid, sku, users[cid][sku] + 1)


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Sandbox]]:
    """300 generated customers, converged by a first apply (the floor is about a later
    sync, where a fraction of the customers changed)."""
    world = make_world(tmp_path_factory.mktemp("floor"), 300, seed=5)
    with Sandbox(world.fixture) as sb:
        ENV[world.root] = sb.env()  # the per-test clean environment would drop setenv
        reconcile(world, "apply", "--yes", "--no-email", "--as-of", AS_OF.isoformat())
        yield world, sb


def changed_agreements(data: dict[str, Any]) -> set[int]:
    return {c["agreement"]["id"] for c in data["customers"] if c["changes"]}


def unsnapshotted(data: dict[str, Any]) -> set[int]:
    """Agreements of customers with errors: not in the snapshot, so read to re-derive them."""
    ids = {c["agreement"]["id"] for c in data["customers"] if c["agreement"]["id"] is not None}
    return {i for i in ids if str(i) not in data["state"]["agreements"]}


def pick(world: World, n: int) -> list[str]:
    """n customers, each alone on its agreement (so n changed agreements)."""
    count: dict[int, int] = {}
    for a in world.agreement_of.values():
        count[a] = count.get(a, 0) + 1
    alone = [c for c, a in sorted(world.agreement_of.items()) if count[a] == 1]
    assert len(alone) >= n
    return alone[:n]


def test_apply_planfile_reads_each_changed_agreement_once(
    converged: tuple[World, Sandbox],
) -> None:
    world, sb = converged
    bump_usage(sb, world, pick(world, 100))
    data = plan_file(world)
    changed = changed_agreements(data)
    assert len(changed) == 100
    sb.stats.reset()

    out = reconcile(world, "apply", str(world.root / "plan.json"), "--no-email")

    requests = sb.stats.requests
    writes = sum(requests[k] for k in WRITES)
    changes = sum(len(c["changes"]) for c in data["customers"])
    assert writes == sb.stats.writes == changes  # no faults: one request per write
    # Before 13.7: every agreement once plus the changed ones twice more (500 at 300/100).
    assert requests[ADDITIONS] == len(changed | unsnapshotted(data)), out
    floor = sum(requests[k] for k in (*USAGE, *LISTS)) + len(changed) + writes
    assert sb.stats.total == floor + len(unsnapshotted(data) - changed)
    assert set(requests) <= {ADDITIONS, *WRITES, *LISTS, *USAGE}
    assert duplicates(sb, world) == []

    again = plan_file(world)  # converged: the answers told the truth
    assert not changed_agreements(again)


def test_apply_without_a_plan_file_reuses_the_plans_reads(
    converged: tuple[World, Sandbox],
) -> None:
    """Planned in the same process: usage, lists and every agreement read once by the plan,
    the changed ones once more just before their first write (12.5), no verifying re-read."""
    world, sb = converged
    bump_usage(sb, world, pick(world, 130)[100:130])
    sb.stats.reset()
    out = reconcile(world, "apply", "--yes", "--no-email", "--as-of", AS_OF.isoformat())

    requests = sb.stats.requests
    agreements = len(set(world.agreement_of.values()))
    assert requests[ADDITIONS] == agreements + 30, out
    assert sum(requests[k] for k in WRITES) == sb.stats.writes == 30
    assert duplicates(sb, world) == []


def test_the_benchmarks_floor_is_usage_and_list_pages_changed_agreements_and_writes() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from plan_scale import request_floor

    requests = {"GET zt-usage": 2, "GET companies": 3, "GET additions": 7, "POST additions": 4}
    requests |= {"GET catalog": 1, "GET agreements": 2, "PATCH additions/{id}": 5}
    assert request_floor(requests, changed=7) == (2 + 3 + 1 + 2) + 7 + 9
