"""The daily schedule as runs/ records it (DESIGN 12.1): whether the last billing period is
due today (`plan --if-due`), the chat message when a sync day passed without a sync, and the
refusal of a period already applied by the schedule (`apply --if-due`).
"""

from __future__ import annotations

import datetime as dt

from reconciler.core import schedule
from reconciler.core.model import Config
from reconciler.core.periods import Period
from reconciler.engine.interface import AlreadyApplied
from reconciler.engine.notices import Notifier
from reconciler.notify import chat


def decide(config: Config, today: dt.date, notifier: Notifier) -> schedule.Decision:
    """Whether the last billing period is due today (its sync day up to CATCH_UP_DAYS
    after it, and no successful scheduled run for it in runs/). A sync day passed without
    one is posted to chat: each catch-up day, and once on the first day after the catch-up
    week."""
    billed = schedule.scheduled_successes(config.config_dir)
    decision = schedule.decide(today, config.settings.sync_day, billed)
    event = missed_sync(decision, today, billed)
    if event is not None:
        notifier.chat(event)
    return decision


def missed_sync(
    decision: schedule.Decision, today: dt.date, billed: set[schedule.Window]
) -> chat.ChatEvent | None:
    """The chat message for a sync day passed without a successful scheduled sync, on the
    days it is posted; else None."""
    period = decision.period
    if (period.start, period.end) in billed:
        return None
    late = (today - period.end).days
    if decision.due and late >= 1:
        return chat.missed_sync_event(period, today.isoformat(), late, catching_up=True)
    if not decision.due and late == schedule.CATCH_UP_DAYS + 1:
        return chat.missed_sync_event(period, today.isoformat(), late, catching_up=False)
    return None


def check_not_applied(config: Config, window: Period) -> None:
    """`apply --if-due`, asked under the lock (a run finishing now has written its record):
    AlreadyApplied when the period has a successful scheduled sync."""
    if (window.start, window.end) in schedule.scheduled_successes(config.config_dir):
        raise AlreadyApplied(
            f"not applied: period {window.start.isoformat()}..{window.end.isoformat()} "
            "already has a successful scheduled sync in runs/ (a run that finished while "
            "this one waited); nothing was written"
        )
