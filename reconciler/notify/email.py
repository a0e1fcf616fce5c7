"""The e-mails after a sync: the sync outcome, then the agreement-ending one when an
applied plan has an agreement ending (`notify_after_sync`); and what they will record when
none can be sent (`outcomes_if_unsendable`), known before the run record is finished.

Each goes to administrators + billing as text with an HTML alternative. Mail is a side
channel: no failure here ever raises into a sync; it comes back as an EmailOutcome the run
log records ("not sent: <why>").
"""

from __future__ import annotations

from collections.abc import Callable

from reconciler.core.model import Settings
from reconciler.core.plan import Plan
from reconciler.net.deadline import RunDeadline
from reconciler.notify.ending_email import agreements_ending, ending_email
from reconciler.notify.smtp import SmtpSettings, deliver
from reconciler.notify.sync_email import sync_email
from reconciler.records.record import EmailOutcome, RunRecord

ABANDONED = "not sent: abandoned by a second stop signal"
SYNC, ENDING = "sync-outcome", "agreement-ending"


def notify_after_sync(
    settings: Settings,
    run: RunRecord,
    plan: Plan | None,
    *,
    send: bool = True,
    smtp: SmtpSettings | None,
) -> list[EmailOutcome]:
    """The sync-outcome e-mail for a finished run record (success or not), then the
    agreement-ending one when a plan was applied and an agreement is ending. Sends what it
    is handed; it reads nothing from ConnectWise or ZeroTek."""
    recipients = settings.notifications.recipients
    mails: list[tuple[str, Callable[[], tuple[str, str, str]]]] = [
        (SYNC, lambda: sync_email(run, settings.currency))
    ]
    days = settings.notifications.agreement_end_warning_days
    ending = agreements_ending(plan, days) if plan is not None else []
    if ending and plan is not None:
        ends, applied = ending, plan
        mails.append((ENDING, lambda: ending_email(ends, applied, days, run.run_id)))
    budget = RunDeadline(smtp.total_seconds) if smtp is not None else None
    outcomes: list[EmailOutcome] = []
    for kind, mail in mails:
        try:
            outcomes.append(deliver(kind, recipients, mail, send=send, smtp=smtp, budget=budget))
        except KeyboardInterrupt:  # a second stop signal (interrupt.Abandoned): drop the rest
            to = tuple(dict.fromkeys(recipients))
            left = mails[len(outcomes) :]
            outcomes += [EmailOutcome(k, to, False, ABANDONED) for k, _ in left]
            break
    return outcomes


def outcomes_if_unsendable(
    settings: Settings, plan: Plan | None, *, send: bool, smtp: SmtpSettings | None
) -> list[EmailOutcome] | None:
    """What `notify_after_sync` will record when it can send nothing (apply --no-email, no
    recipients, no SMTP server): known before the run record is finished, so the record is
    written once, with them, instead of once more after the e-mails (at 10,000 customers
    a full record, twin and index rewrite). None when an e-mail may go out."""
    recipients = settings.notifications.recipients
    if send and recipients and smtp is not None:
        return None
    days = settings.notifications.agreement_end_warning_days
    ending = plan is not None and bool(agreements_ending(plan, days))
    kinds = [SYNC, ENDING] if ending else [SYNC]
    return [deliver(kind, recipients, _not_built, send=send, smtp=smtp) for kind in kinds]


def _not_built() -> tuple[str, str, str]:
    raise AssertionError("an e-mail that cannot be sent is never built")
