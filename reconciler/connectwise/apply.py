"""Execute a plan against ConnectWise and verify what was written (DESIGN 13.7).

Billing data is never guessed at:
- only the additions named in the plan are written (the plan holds only managed ones);
- a POST whose outcome is unknown (dropped connection, timeout, 5xx after sending) is
  resolved by re-reading that agreement's additions before any retry, so no fault can
  create a duplicate addition;
- customers run concurrently (bounded), each customer's changes in order, so the re-read
  after an unknown outcome sees a settled agreement;
- just before the first write to an agreement its additions are read, once: if they are
  not what the plan was made against, that customer is skipped as stale (staleness.py);
- a write is verified by its response (POST and PATCH answer with the addition as it now
  stands, confirm.py); the agreement is re-read only when an answer was lost, unusable or
  shows something else, or a write's outcome is unknown (verification.py);
- every write's outcome goes to the journal (the run record) as soon as it is known; a
  write whose outcome cannot be settled, even by re-reading, is recorded as unknown;
- `stop()` true (SIGINT/SIGTERM) means no new write starts; writes in flight finish;
- any exception while writing one customer is that customer's error, never the others'.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from reconciler.connectwise import confirm
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.staleness import Freshness
from reconciler.connectwise.state import additions_path, read_additions
from reconciler.connectwise.verification import live_quantities, verify
from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config, Removal
from reconciler.core.money import json_number
from reconciler.core.plan import Action, Change, CustomerPlan, Plan
from reconciler.core.results import ApplyResult, ChangeResult, CustomerResult
from reconciler.core.state import Addition
from reconciler.net.errors import ApiError, OutcomeUnknown, one_line

MAX_POST_ATTEMPTS = 6
# Before re-reading after an unknown POST outcome: a server that timed out on us may still
# be committing; a moment's pause makes the re-read see it rather than race it.
SETTLE_SECONDS = 0.25

# A write's result, and whether its response settled it (see `_Applier.change`).
Written = tuple[ChangeResult, bool]


class Journal(Protocol):
    """Where apply reports outcomes as they become known (runlog.RunHandle)."""

    def change(self, result: ChangeResult) -> None: ...

    def customer(self, result: CustomerResult) -> None: ...


class _NoJournal:
    def change(self, result: ChangeResult) -> None:
        pass

    def customer(self, result: CustomerResult) -> None:
        pass


def _never() -> bool:
    return False


def cw_datetime(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


class _Applier:
    def __init__(
        self,
        plan: Plan,
        config: Config,
        cw: ConnectWiseClient,
        *,
        expected: Mapping[str, Any] | None,
        journal: Journal,
        stop: Callable[[], bool],
    ) -> None:
        self.plan = plan
        self.config = config
        self.cw = cw
        self.products = config.owned_products  # orphans' lines too (DESIGN 13.1)
        self.writes = 0
        self.journal = journal
        self.stop = stop
        self.freshness = Freshness(cw, self.products, plan.period.as_of, expected)

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
            if live_quantities((addition,), change.product, self.products, self.plan.period.as_of):
                return addition
        return None

    async def _settle_add(self, change: Change, why: str) -> ChangeResult | None:
        """After a POST whose answer is unusable: the committed addition's result, None when
        the re-read shows it was not written, or an unknown result when even the re-read
        fails (then nothing is re-sent: a duplicate is worse than a missing line)."""
        await asyncio.sleep(SETTLE_SECONDS)
        try:
            found = await self._committed_add(change)
        except ReconcileError as exc:
            error = f"outcome unknown: {why}; re-reading the agreement failed too: {exc}"
            return ChangeResult(change, False, error=error, unknown=True)
        if found is None:
            return None
        self.writes += 1
        note = f"{why}; found committed on re-read, not re-sent"
        return ChangeResult(change, True, addition_id=found.id, note=note)

    def _shows(self, change: Change, body: dict[str, Any]) -> bool:
        method = self.plan.removal_of(change) if change.action is Action.REMOVE else None
        return confirm.shows(change, method, body, self.products, self.plan.period.as_of)

    async def _add(self, change: Change) -> Written:
        path = additions_path(change.agreement_id)
        body = self._post_body(change)
        last: ApiError | None = None
        for _ in range(MAX_POST_ATTEMPTS):
            try:
                created = await self.cw.post(path, body)
            except OutcomeUnknown as exc:
                last = exc
                settled = await self._settle_add(change, "response lost")
                if settled is not None:
                    return settled, False
                continue
            except ApiError:
                raise
            except ReconcileError as exc:
                # A 2xx that is not the API's answer (a proxy's HTML page): committed or
                # not, only a re-read can tell; never re-sent on a guess.
                why = f"unusable answer ({exc})"
                settled = await self._settle_add(change, why)
                if settled is not None:
                    return settled, False
                error = f"{exc}; a re-read shows it was not written"
                return ChangeResult(change, False, error=error), True
            self.writes += 1
            new_id = created.get("id")
            result = ChangeResult(
                change, True, addition_id=new_id if isinstance(new_id, int) else None
            )
            return result, self._shows(change, created)
        assert last is not None
        error = f"{last} (gave up after {MAX_POST_ATTEMPTS} tries)"
        return ChangeResult(change, False, error=error), True

    async def _patch(self, change: Change, field: str, value: Any) -> Written:
        return await self._patch_ops(change, [{"op": "replace", "path": field, "value": value}])

    async def _patch_ops(self, change: Change, ops: list[dict[str, Any]]) -> Written:
        assert change.addition_id is not None
        path = f"{additions_path(change.agreement_id)}/{change.addition_id}"
        updated = await self.cw.patch(path, ops)
        self.writes += 1
        result = ChangeResult(change, True, addition_id=change.addition_id)
        return result, self._shows(change, updated)

    async def _update(self, change: Change) -> Written:
        """Quantity and price of one line in one PATCH (DESIGN 13.4): one write, so the
        line is never left with the new quantity at the old price or the reverse."""
        ops: list[dict[str, Any]] = []
        if change.after != change.before:
            ops.append({"op": "replace", "path": "quantity", "value": change.after})
        if change.repriced:
            price = json_number(change.unit_price)  # refused, never rounded
            ops.append({"op": "replace", "path": "unitPrice", "value": price})
        if not ops:  # the planner never makes one; a PATCH of nothing would be a 400
            return ChangeResult(change, False, error="an update that changes nothing"), True
        return await self._patch_ops(change, ops)

    async def _delete(self, change: Change) -> Written:
        path = f"{additions_path(change.agreement_id)}/{change.addition_id}"
        try:
            await self.cw.delete(path)
        except ApiError as exc:
            # A retried DELETE whose first response was lost answers 404: gone is gone.
            if exc.status != 404:
                raise
            note = "already gone (an earlier attempt's response was lost)"
            return ChangeResult(change, True, addition_id=change.addition_id, note=note), True
        self.writes += 1
        return ChangeResult(change, True, addition_id=change.addition_id), True

    async def change(self, change: Change) -> Written:
        """The write's result, and whether its answer settles it: True when the response
        showed the intended state or nothing was written, False when only a re-read of the
        agreement can tell (a lost or unusable answer, an outcome still unknown)."""
        try:
            if change.action is Action.ADD:
                return await self._add(change)
            if change.action is Action.UPDATE:
                return await self._update(change)
            method = self.plan.removal_of(change)  # the method `plan` showed
            if method is Removal.DELETE:
                return await self._delete(change)
            if method is Removal.ZERO:
                return await self._patch(change, "quantity", 0)
            # Dated the as-of day, never later, so the next plan already sees it as gone.
            as_of = cw_datetime(self.plan.period.as_of)
            return await self._patch(change, "cancelledDate", as_of)
        except ApiError as exc:
            # Idempotent writes (PATCH, DELETE) failing without a verdict may still have
            # landed: recorded as unknown, and settled by the verification re-read.
            sent = change.action is not Action.ADD and (exc.status is None or exc.status >= 500)
            return ChangeResult(change, False, error=str(exc), unknown=sent), not sent
        except ValueError as exc:  # a price JSON cannot carry exactly: never sent
            return ChangeResult(change, False, error=str(exc)), True
        except ReconcileError as exc:  # a 2xx with an unusable body
            unknown = change.action is not Action.ADD
            return ChangeResult(change, False, error=str(exc), unknown=unknown), not unknown

    async def customer(self, cp: CustomerPlan) -> CustomerResult:
        if cp.errors:
            return CustomerResult(cp, (), cp.errors, False)
        if not cp.changes:
            return CustomerResult(cp, (), (), True)
        results: list[ChangeResult] = []
        try:
            return await self._write(cp, results)
        except Exception as exc:  # isolation: one customer's fault is its own
            what = one_line(str(exc)) or type(exc).__name__
            errors = [*_failures(results), f"stopped by an unexpected error: {what}"]
            return CustomerResult(cp, tuple(results), tuple(errors), verified=False)

    async def _write(self, cp: CustomerPlan, results: list[ChangeResult]) -> CustomerResult:
        assert cp.agreement_id is not None
        if self.stop():
            return CustomerResult(cp, (), (INTERRUPTED_BEFORE,), False)
        for agreement_id in sorted({cp.agreement_id, *(c.agreement_id for c in cp.changes)}):
            stale = await self.freshness.check(agreement_id)
            if stale is not None:
                return CustomerResult(cp, (), (stale,), False, stale=True)
        settled_by_answers = True
        for c in cp.changes:
            if self.stop():
                left = len(cp.changes) - len(results)
                errors = [*_failures(results), f"interrupted: {left} change(s) not started"]
                return CustomerResult(cp, tuple(results), tuple(errors), False)
            result, answered = await self.change(c)
            results.append(result)
            settled_by_answers = settled_by_answers and answered
            self.journal.change(result)
        if settled_by_answers:
            # Every answer showed its line as planned (or nothing was written): verified
            # without another read (13.7). Known failures are the customer's errors.
            failures = _failures(results)
            return CustomerResult(cp, tuple(results), tuple(failures), verified=not failures)
        try:
            verified = await verify(self.cw, self.products, self.plan.period.as_of, cp, results)
        except ReconcileError as exc:
            settled, problems = results, [f"verification failed: {exc}"]
        else:
            settled, problems = verified.settled, verified.problems
            self.writes += verified.written
        return CustomerResult(
            cp, tuple(settled), (*_failures(settled), *problems), verified=not problems
        )


INTERRUPTED_BEFORE = "interrupted before this customer's first write: nothing written"


def _failures(results: list[ChangeResult]) -> list[str]:
    return [f"{r.change.action.value} {r.change.product}: {r.error}" for r in results if not r.ok]


async def apply_plan(
    plan: Plan,
    config: Config,
    cw: ConnectWiseClient,
    *,
    max_concurrency: int = 8,
    on_customer: Callable[[CustomerResult], None] | None = None,
    expected: Mapping[str, Any] | None = None,
    journal: Journal | None = None,
    stop: Callable[[], bool] = _never,
) -> ApplyResult:
    """Apply every customer's changes; customers with planning errors are left untouched.

    `expected`: the plan's state snapshot, for the just-in-time re-read (None: no check);
    `journal`: told each outcome as soon as it is known; `stop`: true once no new write may
    start (a stop signal)."""
    started = dt.datetime.now(dt.UTC)
    sink = journal if journal is not None else _NoJournal()
    # An error no customer owns (the journal or a progress hook raising) stops every new
    # write, and apply returns (raises) only once the writes already sent have ended:
    # nothing is left writing behind the error (DESIGN 13.5).
    broken: list[BaseException] = []
    applier = _Applier(
        plan, config, cw, expected=expected, journal=sink, stop=lambda: stop() or bool(broken)
    )
    slots = asyncio.Semaphore(max_concurrency)

    async def one(cp: CustomerPlan) -> CustomerResult:
        try:
            async with slots:
                result = await applier.customer(cp)
            if cp.changes or cp.errors:
                sink.customer(result)
            if on_customer is not None:
                on_customer(result)
        except BaseException as exc:
            broken.append(exc)
            raise
        return result

    outcomes = await asyncio.gather(*(one(cp) for cp in plan.customers), return_exceptions=True)
    if broken:
        raise broken[0]
    results = [r for r in outcomes if isinstance(r, CustomerResult)]
    return ApplyResult(
        plan=plan,
        customers=tuple(results),
        started=started,
        finished=dt.datetime.now(dt.UTC),
        writes=applier.writes,
    )
