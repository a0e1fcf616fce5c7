"""What the engine says beyond the terminal: after a sync, the e-mails (handed the finished
or failed run record, their outcomes recorded in it), then the chat message (off unless
RECONCILE_WEBHOOK_URL is set); and any other chat message (a missed sync day). A second stop
signal abandons what is left; the record says which e-mails were sent. Nothing here raises
for a message that could not be delivered: its outcome is recorded (e-mails) or shown (chat).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.core.model import Settings
from reconciler.core.plan import Plan
from reconciler.engine.interrupt import Abandoned, StopSignals
from reconciler.notify import chat
from reconciler.notify.email import notify_after_sync, outcomes_if_unsendable
from reconciler.notify.smtp import SmtpSettings
from reconciler.records import runlog
from reconciler.records.record import EmailOutcome


@dataclass(frozen=True)
class Notifier:
    """The messages of one command: where they go (`settings`, `environ`), whether
    e-mails are sent at all (`send_email`, apply --no-email) and through which server."""

    settings: Settings
    environ: Mapping[str, str]
    notice: Callable[[str], None]  # one line for the user (a chat message's outcome)
    send_email: bool = False
    smtp: SmtpSettings | None = None

    def after_sync(
        self,
        handle: runlog.RunHandle,
        plan: Plan | None,
        signals: StopSignals,
        *,
        chat_event: bool = True,
        unsent: Sequence[EmailOutcome] | None = None,
    ) -> tuple[EmailOutcome, ...]:
        """E-mails, then the chat message; a second stop signal abandons what is left
        (the record says which were sent). `unsent`: `unsendable`'s outcomes, which the
        finished record holds already; then no e-mail is built or sent."""
        with signals.notifying():
            emails = tuple(unsent) if unsent is not None else self.email(handle, plan)
            if chat_event and not signals.abandoned:
                with contextlib.suppress(Abandoned):
                    self.chat(chat.sync_outcome_event(handle.record))
        return emails

    def unsendable(self, plan: Plan | None) -> list[EmailOutcome] | None:
        """The e-mails' outcomes when none can be sent (see outcomes_if_unsendable)."""
        return outcomes_if_unsendable(self.settings, plan, send=self.send_email, smtp=self.smtp)

    def after_failure(self, handle: runlog.RunHandle, signals: StopSignals) -> None:
        """A sync that did not happen, e-mailed and posted like one that did."""
        with signals.notifying():
            self.email(handle, None)
            if not signals.abandoned:
                with contextlib.suppress(Abandoned):
                    self.chat(chat.sync_failed_event(handle.record))

    def email(self, handle: runlog.RunHandle, plan: Plan | None) -> tuple[EmailOutcome, ...]:
        """Hand the finished record to the e-mails, then record how they went."""
        emails: list[EmailOutcome] = []
        try:
            emails = notify_after_sync(
                self.settings, handle.record, plan, send=self.send_email, smtp=self.smtp
            )
        finally:  # the record's twin, summary and INDEX.md are written here, always
            if handle.broken is None:
                handle.set_emails(emails)
        return tuple(emails)

    def chat(self, event: chat.ChatEvent) -> None:
        """The chat message (off unless RECONCILE_WEBHOOK_URL is set; never raises)."""
        outcome = chat.send(event, self.environ)
        if outcome is not None:
            self.notice(str(outcome))
