"""A write is verified by its answer (DESIGN 13.7): POST and PATCH answer with the addition
as it now stands; apply re-reads an agreement only when an answer is missing, unusable or
shows something other than the write meant.

`confirm.shows` is pure and tested directly. The integration tests run apply against the
sandbox with the production client, wrapped to replace one answer: a 2xx whose body is
empty, or one showing another quantity (what ConnectWise answers when another writer got
in between). The sandbox always answers truthfully, so those answers cannot come from it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
import world_edits

from reconciler.config.loader import load_config
from reconciler.connectwise.apply import apply_plan
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.confirm import shows
from reconciler.core.model import ManagedProducts, PeriodKind, Removal
from reconciler.core.periods import period_for
from reconciler.core.plan import Action, Change
from reconciler.core.results import ApplyResult
from reconciler.engine.clients import Clients
from reconciler.engine.planning import make_plan
from reconciler.sandbox import Sandbox

AS_OF = dt.date(2026, 11, 24)
PRODUCTS = ManagedProducts(["ZT-OKTA-SSO", "ZT-OKTA-MFA"])


def change(action: Action, *, after: int, addition_id: int | None = 9001) -> Change:
    return Change(
        action, "zt-0001", "OKTA-SSO", "ZT-OKTA-SSO", 501, 1001,
        None if action is Action.ADD else addition_id, 40, after, Decimal("4.00"),
    )  # fmt: skip


def answer(quantity: int, *, aid: int = 9001, product: str = "zt-okta-sso", **more: Any) -> dict:
    return {"id": aid, "product": {"id": 501, "identifier": product}, "quantity": quantity, **more}


CANCELLED = {"cancelledDate": "2026-11-24T00:00:00Z"}
REPRICED = replace(change(Action.UPDATE, after=42), repriced=True, price_before=Decimal("3.50"))


@pytest.mark.parametrize(
    ("write", "method", "body", "expected"),
    [
        (change(Action.ADD, after=42), None, answer(42, aid=9100), True),
        (change(Action.ADD, after=42), None, answer(41, aid=9100), False),
        (change(Action.ADD, after=42), None, answer(42, product="ZT-OKTA-MFA"), False),
        (change(Action.ADD, after=42), None, answer(42, **CANCELLED), False),
        (change(Action.ADD, after=42), None, {}, False),  # a 201 without a body
        (change(Action.ADD, after=42), None, {"id": "x"}, False),
        (change(Action.UPDATE, after=42), None, answer(42), True),
        (change(Action.UPDATE, after=42), None, answer(42, aid=9002), False),
        (change(Action.UPDATE, after=42), None, answer(40), False),
        (change(Action.UPDATE, after=42), None, answer(-1), False),
        # a repriced line (13.4) must show its new price too (4.00 is the change's price)
        (REPRICED, None, answer(42, unitPrice=4), True),
        (REPRICED, None, answer(42, unitPrice=3.5), False),
        (change(Action.UPDATE, after=42), None, answer(42, unitPrice=3.5), True),
        (change(Action.REMOVE, after=0), Removal.CANCEL, answer(40, **CANCELLED), True),
        (change(Action.REMOVE, after=0), Removal.CANCEL, answer(40), False),
        (
            change(Action.REMOVE, after=0),
            Removal.CANCEL,
            answer(40, cancelledDate="2026-12-31T00:00:00Z"),  # still live on the as-of day
            False,
        ),
        (change(Action.REMOVE, after=0), Removal.ZERO, answer(0), True),
        (change(Action.REMOVE, after=0), Removal.ZERO, answer(40), False),
        (change(Action.REMOVE, after=0), Removal.DELETE, {}, True),  # 204: gone is its answer
    ],
)
def test_an_answer_confirms_only_the_intended_state(
    write: Change, method: Removal | None, body: dict, expected: bool
) -> None:
    assert shows(write, method, body, PRODUCTS, AS_OF) is expected


# --- through the sandbox ----------------------------------------------------------------------


class Answers:
    """The production client; the answer to a write on `agreement` goes through `alter`."""

    def __init__(self, cw: ConnectWiseClient, agreement: int, alter: Callable[[dict], dict]):
        self._cw, self._agreement, self._alter = cw, agreement, alter
        self.reads: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cw, name)

    def _mine(self, path: str) -> bool:
        return path.startswith(f"/finance/agreements/{self._agreement}/")

    async def get_all(self, path: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        self.reads[path] += 1
        return await self._cw.get_all(path, *args, **kwargs)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        created = await self._cw.post(path, body)
        return self._alter(created) if self._mine(path) else created

    async def patch(self, path: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
        updated = await self._cw.patch(path, operations)
        return self._alter(updated) if self._mine(path) else updated


def sync(config_dir: Path, agreement: int, alter: Callable[[dict], dict]) -> tuple:
    config = load_config(config_dir)
    clients = Clients()
    period = period_for(PeriodKind.LAST_BILLING_PERIOD, config.settings, AS_OF)

    async def go() -> tuple[ApplyResult, Counter[str]]:
        async with clients.connectwise(config) as cw:
            planned = await make_plan(config, period, None, cw, clients)
            wrapped = Answers(cw, agreement, alter)
            client = cast(ConnectWiseClient, wrapped)
            result = await apply_plan(planned.plan, config, client, expected=planned.state)
            return result, wrapped.reads

    return asyncio.run(go())


def reads_of(reads: Counter[str], agreement: int) -> int:
    return reads[f"/finance/agreements/{agreement}/additions"]


def planned_changes(result: ApplyResult) -> int:
    return sum(len(c.plan.changes) for c in result.customers)


def customer(result: ApplyResult, agreement: int) -> Any:
    (found,) = [c for c in result.customers if c.plan.agreement_id == agreement]
    return found


def test_answers_showing_the_write_need_no_re_read(sandbox: Sandbox, config_dir: Path) -> None:
    result, reads = sync(config_dir, 0, lambda body: body)
    assert result.ok and all(c.verified for c in result.customers if c.plan.changes)
    # One read each, just before the first write (12.5 staleness); none after.
    changed = {c.plan.agreement_id for c in result.customers if c.plan.changes}
    assert {a: reads_of(reads, a) for a in changed} == {a: 1 for a in changed}


@pytest.mark.parametrize(
    ("agreement", "alter"),
    [
        (1004, lambda body: {**body, "quantity": 25}),  # the PATCH answer shows the old 25
        (1006, lambda body: {}),  # 201 with no body: which addition, if any?
    ],
    ids=["patch-answer-shows-another-quantity", "post-answer-empty"],
)
def test_an_answer_that_does_not_show_the_write_is_settled_by_one_re_read(
    sandbox: Sandbox, config_dir: Path, agreement: int, alter: Callable[[dict], dict]
) -> None:
    writes_before = sandbox.stats.writes
    result, reads = sync(config_dir, agreement, alter)
    assert result.ok, [e for c in result.customers for e in c.errors]
    mine = customer(result, agreement)
    assert mine.verified and all(r.ok for r in mine.results)
    assert reads_of(reads, agreement) == 2  # before the first write, and once to settle it
    assert reads_of(reads, 1005) == 1  # the others are verified by their answers
    # nothing was sent twice
    assert sandbox.stats.writes - writes_before == planned_changes(result)


def test_an_answer_showing_another_writers_quantity_is_reported_not_overwritten(
    sandbox: Sandbox, config_dir: Path
) -> None:
    """Someone sets zt-0004's SSO to 30 right after our PATCH to 27 committed: the
    answer shows 30, the re-read confirms it, and the customer is an error, not re-sent."""
    sso = next(a for a in sandbox.additions(1004) if a["product"]["identifier"] == "ZT-OKTA-SSO")

    def racing_writer(body: dict) -> dict:
        world_edits.set_addition_quantity(sandbox, sso["id"], 30)
        return {**body, "quantity": 30}

    writes_before = sandbox.stats.writes
    result, reads = sync(config_dir, 1004, racing_writer)
    mine = customer(result, 1004)
    assert not mine.ok and not mine.verified
    assert any("expected quantity 27, found 30" in e for e in mine.errors), mine.errors
    assert reads_of(reads, 1004) == 2
    assert sandbox.addition(sso["id"])["quantity"] == 30
    assert sandbox.stats.writes - writes_before == planned_changes(result)
