"""Execute a plan against ConnectWise, then re-read and verify what was written.

Billing data is never guessed at:
- only the additions named in the plan are written (the plan holds only managed ones);
- a POST whose outcome is unknown (dropped connection, timeout, 5xx after sending) is
  resolved by re-reading that agreement's additions before any retry, so no fault can
  create a duplicate addition;
- customers run concurrently (bounded), each customer's changes in order, so the re-read
  after an unknown outcome sees a settled agreement.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.state import additions_path, read_additions
from reconciler.http import ApiError, OutcomeUnknown
from reconciler.model import (
    Action,
    Addition,
    ApplyResult,
    Change,
    ChangeResult,
    Config,
    CustomerPlan,
    CustomerResult,
    Plan,
    Removal,
)
from reconciler.money import json_number

MAX_POST_ATTEMPTS = 6
# Before re-reading after an unknown POST outcome: a server that timed out on us may still
# be committing; a moment's pause makes the re-read see it rather than race it.
SETTLE_SECONDS = 0.25


def cw_datetime(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _not_started(change: Change, plan: Plan) -> bool:
    """An addition dated after the as-of day (raised to a future billStartDate) cannot be
    cancelled before it starts (ConnectWise: 400); quantity 0 also counts as removed."""
    return change.effective_date is not None and change.effective_date > plan.period.as_of


class _Applier:
    def __init__(self, plan: Plan, config: Config, cw: ConnectWiseClient) -> None:
        self.plan = plan
        self.config = config
        self.cw = cw
        self.products = {s.product for s in config.skus}
        self.writes = 0

    def _post_body(self, change: Change) -> dict[str, Any]:
        assert change.effective_date is not None
        body: dict[str, Any] = {
            "product": {"id": change.product_id},
            "quantity": change.after,
            "billCustomer": "Billable",
            "effectiveDate": cw_datetime(change.effective_date),
        }
        # Exactly the terms the plan shows (DESIGN 12.2: one decision per product, made by
        # the planner): the figure reviewed is the figure billed, whichever SKU it came from.
        body["unitPrice"] = json_number(change.unit_price)
        if change.unit_cost is not None:
            body["unitCost"] = json_number(change.unit_cost)
        if change.description:
            body["description"] = change.description
        return body

    async def _committed_add(self, change: Change) -> Addition | None:
        """After an unknown outcome: the addition our POST created, if it did."""
        current = await read_additions(self.cw, change.agreement_id, managed=self.products)
        for addition in current:
            if (
                addition.product_identifier == change.product
                and addition.active_on(self.plan.period.as_of)
                and addition.quantity > 0
            ):
                return addition
        return None

    async def _add(self, change: Change) -> ChangeResult:
        path = additions_path(change.agreement_id)
        body = self._post_body(change)
        last: ApiError | None = None
        for _ in range(MAX_POST_ATTEMPTS):
            try:
                created = await self.cw.post(path, body)
            except OutcomeUnknown as exc:
                last = exc
                await asyncio.sleep(SETTLE_SECONDS)
                found = await self._committed_add(change)
                if found is not None:
                    self.writes += 1
                    note = "response lost; found committed on re-read, not re-sent"
                    return ChangeResult(change, True, addition_id=found.id, note=note)
                continue
            self.writes += 1
            new_id = created.get("id")
            return ChangeResult(
                change, True, addition_id=new_id if isinstance(new_id, int) else None
            )
        assert last is not None
        return ChangeResult(
            change, False, error=f"{last} (gave up after {MAX_POST_ATTEMPTS} tries)"
        )

    async def _patch(self, change: Change, field: str, value: Any) -> ChangeResult:
        assert change.addition_id is not None
        path = f"{additions_path(change.agreement_id)}/{change.addition_id}"
        await self.cw.patch(path, [{"op": "replace", "path": field, "value": value}])
        self.writes += 1
        return ChangeResult(change, True, addition_id=change.addition_id)

    async def _delete(self, change: Change) -> ChangeResult:
        path = f"{additions_path(change.agreement_id)}/{change.addition_id}"
        try:
            await self.cw.delete(path)
        except ApiError as exc:
            # A retried DELETE whose first response was lost answers 404: gone is gone.
            if exc.status != 404:
                raise
            note = "already gone (an earlier attempt's response was lost)"
            return ChangeResult(change, True, addition_id=change.addition_id, note=note)
        self.writes += 1
        return ChangeResult(change, True, addition_id=change.addition_id)

    async def change(self, change: Change) -> ChangeResult:
        try:
            if change.action is Action.ADD:
                return await self._add(change)
            if change.action is Action.UPDATE:
                return await self._patch(change, "quantity", change.after)
            if self.plan.removal is Removal.DELETE:
                return await self._delete(change)
            if self.plan.removal is Removal.ZERO or _not_started(change, self.plan):
                return await self._patch(change, "quantity", 0)
            # Dated the as-of day, never later, so the next plan already sees it as gone.
            as_of = cw_datetime(self.plan.period.as_of)
            return await self._patch(change, "cancelledDate", as_of)
        except (ApiError, ValueError) as exc:  # ValueError: a price JSON cannot carry exactly
            return ChangeResult(change, False, error=str(exc))

    async def verify(self, cp: CustomerPlan) -> list[str]:
        """Re-read the agreement: every changed product must now hold its planned quantity."""
        assert cp.agreement_id is not None
        current = await read_additions(self.cw, cp.agreement_id, managed=self.products)
        problems = []
        for c in cp.changes:
            live = [
                a.quantity
                for a in current
                if a.product_identifier == c.product
                and a.active_on(self.plan.period.as_of)
                and a.quantity > 0
            ]
            want = [c.after] if c.after > 0 else []
            if live != want:
                found = ", ".join(map(str, live)) or "none"
                problems.append(
                    f"verification: {c.product} expected quantity {c.after or 'none'}, "
                    f"found {found}"
                )
        return problems

    async def customer(self, cp: CustomerPlan) -> CustomerResult:
        if cp.errors:
            return CustomerResult(cp, (), cp.errors, False)
        if not cp.changes:
            return CustomerResult(cp, (), (), True)
        results = [await self.change(c) for c in cp.changes]
        try:
            problems = await self.verify(cp)
        except ApiError as exc:
            problems = [f"verification failed: {exc}"]
        failed = [
            f"{r.change.action.value} {r.change.product}: {r.error}" for r in results if not r.ok
        ]
        errors = tuple(failed + problems)
        return CustomerResult(cp, tuple(results), errors, verified=not problems)


async def apply_plan(
    plan: Plan,
    config: Config,
    cw: ConnectWiseClient,
    *,
    max_concurrency: int = 8,
    on_customer: Callable[[CustomerResult], None] | None = None,
) -> ApplyResult:
    """Apply every customer's changes; customers with planning errors are left untouched."""
    started = dt.datetime.now(dt.UTC)
    applier = _Applier(plan, config, cw)
    slots = asyncio.Semaphore(max_concurrency)

    async def one(cp: CustomerPlan) -> CustomerResult:
        async with slots:
            result = await applier.customer(cp)
        if on_customer is not None:
            on_customer(result)
        return result

    results = await asyncio.gather(*(one(cp) for cp in plan.customers))
    return ApplyResult(
        plan=plan,
        customers=tuple(results),
        started=started,
        finished=dt.datetime.now(dt.UTC),
        writes=applier.writes,
    )
