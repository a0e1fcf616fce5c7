"""Apply's writes (steps 5-6 of `manager`): the journaled `apply_plan` against ConnectWise,
the condition that stops new writes from starting (a stop signal, a run log that refused a
write, the time limit), and state/managed.json rewritten from the outcomes (DESIGN 13.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.connectwise.apply import apply_plan
from reconciler.core.model import Config
from reconciler.core.results import ApplyResult
from reconciler.engine.clients import Clients
from reconciler.engine.interface import Planned, Ui
from reconciler.engine.interrupt import StopSignals
from reconciler.net.deadline import RunDeadline
from reconciler.records import ledger, runlog


@dataclass
class StopWhen:
    """Apply's stop condition, asked before each write starts: a stop signal, a run log
    that refused a write, or the time limit (which sets `limited`)."""

    signals: StopSignals
    handle: runlog.RunHandle
    deadline: RunDeadline
    limited: bool = False  # the time limit kept a write from starting

    def __call__(self) -> bool:
        if self.signals.requested or self.handle.broken is not None:
            return True
        if self.deadline.expired:
            self.limited = True
            return True
        return False


async def write(
    planned: Planned,
    config: Config,
    clients: Clients,
    ui: Ui,
    handle: runlog.RunHandle,
    stop: Callable[[], bool],
) -> ApplyResult:
    """The verified plan written customer by customer, each outcome journaled in `handle`."""
    async with clients.connectwise(config) as cw:
        return await apply_plan(
            planned.plan,
            config,
            cw,
            max_concurrency=config.settings.max_concurrency,
            on_customer=ui.customer_done,
            expected=planned.state,
            journal=handle,
            stop=stop,
        )


def rewrite_ledger(
    config: Config,
    planned: Planned,
    result: ApplyResult,
    run_id: str,
    notice: Callable[[str], None],
) -> bool:
    """state/managed.json from this run's outcomes, still under the lock (13.1). A
    ledger that cannot be written is a failed run (one line naming the path): the
    next plan would miss what this one wrote."""
    try:
        ledger.rewrite(config, planned.state, result, run_id)
    except OSError as exc:
        notice(
            f"error: cannot write {exc.filename or 'state/managed.json'}: "
            f"{exc.strerror or exc}; the lines this run wrote are in its run record"
        )
        return False
    return True
