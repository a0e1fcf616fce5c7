"""Issue 25 / DESIGN 13.5: an error no customer owns (here the journal raising for one
customer) stops new writes, and `apply_plan` raises only once the writes already sent have
ended: nothing is left writing behind the error (old: `gather` raised at once and the other
customers' tasks kept writing)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reconciler.config.loader import load_config
from reconciler.connectwise.apply import apply_plan
from reconciler.core.model import PeriodKind
from reconciler.core.periods import period_for
from reconciler.core.results import ChangeResult, CustomerResult
from reconciler.engine.clients import Clients
from reconciler.engine.planning import make_plan
from reconciler.sandbox import Sandbox


class _Boom(Exception):
    pass


class _Journal:
    def change(self, result: ChangeResult) -> None:
        pass

    def customer(self, result: CustomerResult) -> None:
        if result.plan.customer_id == "zt-0001":
            raise _Boom("the journal broke")


def test_an_unowned_error_stops_new_writes_and_leaves_nothing_running(
    sandbox: Sandbox, config_dir: Path
) -> None:
    config = load_config(config_dir)
    period = period_for(PeriodKind.LAST_BILLING_PERIOD, config.settings, _as_of())
    clients = Clients(sandbox.env())
    sandbox.latency_ms = 30  # the other customers are mid-write when the error comes

    async def go() -> tuple[list[Any], int]:
        async with clients.connectwise(config) as cw:
            planned = await make_plan(config, period, None, cw, clients)
            with pytest.raises(_Boom):
                await apply_plan(planned.plan, config, cw, journal=_Journal(), max_concurrency=8)
            writes_then = sandbox.stats.writes
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.sleep(0.5)
            return left, sandbox.stats.writes - writes_then

    left, later = asyncio.run(go())
    assert left == []
    assert later == 0
    assert sandbox.stats.writes < 11  # new writes stopped after the error


def _as_of() -> Any:
    import datetime as dt

    return dt.date(2026, 11, 24)
