"""The three e-mails: sync outcome, agreement ending, unmapped SKU in use.

Each goes to administrators + billing as text with an HTML alternative. Mail is a side
channel: no failure here ever raises into a sync; it comes back as an EmailOutcome the run
log records ("not sent: <why>").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from reconciler.config.urls import is_loopback_host
from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config, Settings
from reconciler.core.periods import Period
from reconciler.core.plan import Plan
from reconciler.core.state import Usage
from reconciler.core.wording import amount, period_words, run_links
from reconciler.insight.report import Row
from reconciler.net.deadline import RunDeadline, within
from reconciler.plan.render import UNMAPPED_HEADER, text_table
from reconciler.records.customers import ChangeRecord, CustomerRecord
from reconciler.records.record import EmailOutcome, RunRecord
from reconciler.secure.scrub import check_credentials, scrub
from reconciler.secure.untrusted import header as header_text
from reconciler.secure.untrusted import html as _e
from reconciler.secure.untrusted import plain

TLS_MODES = {"starttls": 587, "ssl": 465, "none": 25}
SMTP_TIMEOUT = 30.0
NOT_CONFIGURED = "not sent: SMTP not configured"
NO_EMAIL = "not sent: --no-email"
NO_RECIPIENTS = "not sent: no recipients (notifications.administrators, billing)"
ABANDONED = "not sent: abandoned by a second stop signal"
SYNC, ENDING, UNMAPPED = "sync-outcome", "agreement-ending", "unmapped-sku"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    tls: str = "starttls"  # starttls | ssl | none
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # Total deadlines (DESIGN 13.5), connect through the server's last answer: a server
    # trickling a byte every few seconds never trips SMTP_TIMEOUT, a per-read limit.
    message_seconds: float = 60.0
    total_seconds: float = 120.0  # for all the e-mails of one command


def delivery_failed(outcome: EmailOutcome) -> bool:
    """Delivery was attempted and failed (not: switched off or nobody to tell)."""
    return not outcome.sent and outcome.detail not in (NOT_CONFIGURED, NO_EMAIL, NO_RECIPIENTS)


def smtp_from_env(environ: Mapping[str, str] | None = None) -> SmtpSettings | None:
    """SMTP_* from the environment; None when SMTP_HOST is unset (mail is optional)."""
    env = os.environ if environ is None else environ
    host = env.get("SMTP_HOST", "").strip()
    if not host:
        return None
    check_credentials(("SMTP_PASSWORD",), env)
    tls = env.get("SMTP_TLS", "").strip().lower() or "starttls"
    if tls not in TLS_MODES:
        raise ReconcileError(f"SMTP_TLS must be starttls, ssl or none, got {tls!r}")
    if tls == "none" and not is_loopback_host(host):
        raise ReconcileError(
            f"SMTP_TLS=none would send mail and credentials in clear to {host}: "
            "allowed only to a loopback host; use starttls or ssl"
        )
    raw_port = env.get("SMTP_PORT", "").strip()
    try:
        port = int(raw_port) if raw_port else TLS_MODES[tls]
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ReconcileError(f"SMTP_PORT must be a port number 1..65535, got {raw_port!r}")
    return SmtpSettings(
        host=host,
        port=port,
        sender=env.get("SMTP_FROM", "").strip() or f"reconcile@{host}",
        tls=tls,
        username=env.get("SMTP_USERNAME", "").strip() or None,
        password=env.get("SMTP_PASSWORD") or None,
    )


# --- delivery ------------------------------------------------------------------------------


def _reason(exc: BaseException, smtp: SmtpSettings) -> str:
    """What went wrong and what to change, in the terms of the SMTP_* variables."""
    where = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}: check SMTP_HOST and SMTP_PORT"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out talking to {where}: check SMTP_HOST, SMTP_PORT and the firewall"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {smtp.host}: check SMTP_HOST"
    if isinstance(exc, ssl.SSLError):
        hint = (
            "the port may expect STARTTLS: set SMTP_TLS=starttls (usually port 587)"
            if smtp.tls == "ssl"
            else "check SMTP_TLS (ssl for port 465, starttls for 587) and the server certificate"
        )
        return f"TLS with {where} failed ({exc.reason or exc}): {hint}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        if smtp.tls == "starttls":
            return (
                f"{where} does not offer STARTTLS: use its TLS port with SMTP_TLS=ssl "
                "(usually 465), or another server; mail is never sent in clear text"
            )
        return f"{where} does not support what was asked ({exc}): check SMTP_TLS and SMTP_USERNAME"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        code = exc.smtp_code
        return f"{where} refused the SMTP login ({code}): check SMTP_USERNAME and SMTP_PASSWORD"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"{where} refused the sender {exc.sender} ({exc.smtp_code}): check SMTP_FROM"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return (
            f"{where} refused every recipient: {', '.join(sorted(exc.recipients))}: check "
            "notifications.administrators and notifications.billing in settings.yaml"
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{where} closed the connection: check SMTP_PORT and SMTP_TLS"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        return f"{where} answered {exc.smtp_code} {text}".strip()
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot talk to {where}: {exc.strerror}: check SMTP_HOST and SMTP_PORT"
    return (
        f"sending through {where} failed: {exc}" if str(exc) else f"sending through {where} failed"
    )


def _transmit(smtp: SmtpSettings, msg: EmailMessage, seconds: float) -> dict[str, Any]:
    """One message within `seconds` in all; at the deadline its connection is shut down."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.tls == "ssl":
        client = smtplib.SMTP_SSL(timeout=SMTP_TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(timeout=SMTP_TIMEOUT)

    def cut() -> None:
        sock = getattr(client, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            client.close()

    return within(seconds, lambda: _converse(client, smtp, msg, context), cut)


def _converse(
    client: smtplib.SMTP, smtp: SmtpSettings, msg: EmailMessage, context: ssl.SSLContext
) -> dict[str, Any]:
    # What SMTP(host) sets: the TLS server name (SNI and the certificate check).
    client._host = smtp.host  # type: ignore[attr-defined]
    code, greeting = client.connect(smtp.host, smtp.port)
    if code != 220:
        client.close()
        raise smtplib.SMTPConnectError(code, greeting)
    with client:
        if smtp.tls == "starttls":
            # Raises when the server does not offer STARTTLS: never fall back to clear text.
            client.starttls(context=context)
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        return dict(client.send_message(msg))


def deliver(
    kind: str,
    recipients: Sequence[str],
    mail: Callable[[], tuple[str, str, str]],
    *,
    send: bool,
    smtp: SmtpSettings | None,
    budget: RunDeadline | None = None,
) -> EmailOutcome:
    """One e-mail, sent within its deadline: `smtp.message_seconds`, and what is left of
    `budget` (the command's e-mails' `total_seconds`)."""
    to = tuple(dict.fromkeys(recipients))

    def outcome(sent: bool, detail: str) -> EmailOutcome:
        return EmailOutcome(kind, to, sent, scrub(plain(detail)))

    if not send:
        return outcome(False, NO_EMAIL)
    if not to:
        return outcome(False, NO_RECIPIENTS)
    if smtp is None:
        return outcome(False, NOT_CONFIGURED)
    seconds = smtp.message_seconds if budget is None else budget.cap(smtp.message_seconds)
    if seconds <= 0:
        return outcome(False, f"not sent: the e-mails' {smtp.total_seconds:g} s were used up")
    # Built only now: at 10,000 customers an e-mail nobody sends is tens of megabytes.
    subject, text, html_body = mail()
    try:
        msg = EmailMessage()
        # Headers hold only our own words and configured addresses, never names from data.
        msg["Subject"] = header_text(scrub(subject))
        msg["From"] = header_text(smtp.sender)
        msg["To"] = header_text(", ".join(to))
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        # An explicit domain: make_msgid would otherwise do a (possibly slow) FQDN lookup.
        msg["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or "reconcile")
        msg.set_content(scrub(text))
        msg.add_alternative(scrub(html_body), subtype="html")
        refused = _transmit(smtp, msg, seconds)
    except TimeoutError as exc:
        if "total deadline" not in str(exc):
            return outcome(False, f"not sent: {_reason(exc, smtp)}")
        where = f"{smtp.host}:{smtp.port}"
        return outcome(False, f"not sent: {where} did not finish within {seconds:g} s: {exc}")
    # Deliberately broad: mail is a side channel and must never fail the sync it reports on.
    except Exception as exc:
        return outcome(False, f"not sent: {_reason(exc, smtp)}")
    if refused:
        return outcome(True, f"sent (refused: {', '.join(sorted(refused))})")
    return outcome(True, "sent")


# --- rendering helpers ---------------------------------------------------------------------


def _html_doc(title: str, parts: Sequence[str]) -> str:
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>'
        f"{_e(title)}</title></head>\n"
        '<body style="font-family: sans-serif; font-size: 14px">\n'
        f"{body}\n</body></html>\n"
    )


def _html_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cell = 'style="border: 1px solid #ccc; padding: 2px 6px; text-align: left"'
    head = "".join(f"<th {cell}>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td {cell}>{_e(c)}</td>" for c in row) + "</tr>\n" for row in rows
    )
    return f'<table style="border-collapse: collapse">\n<tr>{head}</tr>\n{body}</table>'


# --- sync outcome --------------------------------------------------------------------------


def _headline(run: RunRecord) -> str:
    failed = sum(1 for c in run.customers if not c.ok)
    written = run.totals.writes
    return {
        "success": "Sync succeeded",
        "partial": f"Sync failed for {failed} of {len(run.customers)} customers",
        "failed": "Sync failed",
        "interrupted": f"Sync interrupted ({run.interrupted_by}) after {written} "
        f"write{'s' if written != 1 else ''}",
        "incomplete": "Sync did not finish",
    }.get(run.outcome, f"Sync {run.outcome}")


_SECTIONS = (
    ("add", "Added", "new additions"),
    ("update", "Quantities updated", "additions whose quantity changed"),
    ("remove", "Removed", "additions removed"),
)
_CHANGE_HEADER = (
    "Customer",
    "Company",
    "Agreement",
    "SKU",
    "Quantity",
    "Unit price",
    "Revenue delta per month",
)
REPORT_HINT = "What is and is not billed, valued: run `reconcile report`."


def _period_words(run: RunRecord) -> str:
    p = run.period
    return period_words(p.kind, dt.date.fromisoformat(p.start), dt.date.fromisoformat(p.end))


def run_md_path(run_id: str) -> str:
    """runs/YYYY/MM/<run id>.md, the run's Markdown twin (as runlog writes it)."""
    return f"runs/{run_id[:4]}/{run_id[4:6]}/{run_id}.md"


def _sync_email(
    run: RunRecord, currency: str = "USD", environ: Mapping[str, str] | None = None
) -> tuple[str, str, str]:
    """The sync-outcome e-mail, from the run record: the figures it states are the ones
    the journal recorded as committed, so an interrupted or failed run says exactly what
    was written. Written for a billing person: the period in words, the currency on every
    figure, additions / quantity updates / removals under their own headings, warnings,
    refused changes, and a link to the run in the repository when run in Actions."""
    headline = _headline(run)
    when = _period_words(run)
    subject = f"[reconcile] {headline}: {when}"
    summary = _sync_summary(run, headline, when, currency)
    body = _Body(text=[*summary, ""])
    body.parts.append(f"<p><strong>{_e(summary[0])}</strong><br>{_e(summary[1])}</p>")
    body.parts.append("<p>" + "<br>\n".join(_e(line) for line in summary[3:]) + "</p>")
    _add_changes(body, run, currency)
    body.notes("Errors", "Error", _sync_errors(run))
    body.notes("Warnings", "Warning", _sync_warnings(run))
    _add_links(body, run.run_id, os.environ if environ is None else environ)
    body.text.append(REPORT_HINT)
    body.parts.append(f"<p>{_e(REPORT_HINT)}</p>")
    return subject, body.plain_text(), _html_doc(subject, body.parts)


@dataclass
class _Body:
    """An e-mail's body in its two renderings, written side by side: plain-text lines and
    HTML parts (`_html_doc` wraps them)."""

    text: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    def table(self, title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.text += [f"{title}:", *text_table([header, *rows]), ""]
        self.parts += [f"<h3>{_e(title)}</h3>", _html_table(header, rows)]

    def notes(self, title: str, column: str, notes: Sequence[tuple[str, str]]) -> None:
        """Errors or warnings, each with whose it is; nothing when there are none."""
        if notes:
            self.text += [f"{title}:", *(f"  {plain(who)}: {plain(msg)}" for who, msg in notes), ""]
            self.parts += [f"<h3>{_e(title)}</h3>", _html_table(("Customer", column), notes)]

    def listing(
        self, intro: str, header: Sequence[str], rows: Sequence[Sequence[str]], advice: str
    ) -> None:
        """A table between the sentence that says what it lists and what to do about it."""
        self.text += [intro, "", *text_table([header, *rows]), "", advice, ""]
        self.parts += [f"<p>{_e(intro)}</p>", _html_table(header, rows), f"<p>{_e(advice)}</p>"]

    def lines(self, lines: Sequence[str]) -> None:
        """Lines of text, one paragraph in HTML."""
        self.text += lines
        self.parts.append("<p>" + "<br>\n".join(_e(line) for line in lines) + "</p>")

    def plain_text(self) -> str:
        return "\n".join(self.text) + "\n"


def _sync_summary(run: RunRecord, headline: str, when: str, currency: str) -> list[str]:
    """The headline, the run id, a blank line, then the figures (committed changes only)."""
    totals = run.totals
    licences = {
        action: sum(ch.after - ch.before for c in run.customers for ch in c.changes
                    if ch.committed and ch.action == action)
        for action, _, _ in _SECTIONS
    }  # fmt: skip
    summary = [
        f"{headline}: {when} (as of {run.period.as_of})",
        f"Run: {run.run_id}",
        "",
        f"Customers: {totals.customers}, {totals.customers_changed} changed",
        f"Added: {totals.adds} additions ({licences['add']:+d} licences)",
        f"Quantities updated: {totals.updates} additions ({licences['update']:+d} licences)",
        f"Removed: {totals.removes} additions ({licences['remove']:+d} licences)",
        f"Revenue delta: {amount(totals.revenue_delta, currency, signed=True)} per month",
        f"Errors: {totals.errors}",
    ]
    repriced = [ch for c in run.customers for ch in c.changes if ch.committed and ch.price_change]
    if repriced:  # DESIGN 13.4: counted among the updates above, named here
        summary.insert(-2, f"Prices changed: {len(repriced)} of the updated additions")
    if totals.unknown:
        summary.append(f"Writes with unknown outcome: {totals.unknown} (check ConnectWise)")
    return summary


def _change_row(c: CustomerRecord, ch: ChangeRecord, currency: str) -> tuple[str, ...]:
    money = amount(ch.revenue_delta, currency, signed=True)
    sku = f"{ch.sku} ({ch.why})" if ch.why else ch.sku
    price = ch.price_words(lambda p: amount(p, currency))
    where = (ch.agreement or c.agreement).text()  # the one written to (13.1)
    return (c.name, c.company, where, sku, f"{ch.before} → {ch.after}",
            price, money)  # fmt: skip


def _add_changes(body: _Body, run: RunRecord, currency: str) -> None:
    """The committed changes under their section's title (or that there were none), then
    the refused ones."""
    done = {
        action: [_change_row(c, ch, currency) for c in run.customers for ch in c.changes
                 if ch.committed and ch.action == action]
        for action, _, _ in _SECTIONS
    }  # fmt: skip
    for action, title, _ in _SECTIONS:
        if done[action]:
            body.table(title, _CHANGE_HEADER, done[action])
    if not any(done.values()):
        nothing = "Nothing was written to ConnectWise by this attempt."
        body.text += [nothing, ""]
        body.parts.append(f"<p>{_e(nothing)}</p>")
    # Never attempted although planned: the whole plan when it was refused (unsafe, stale).
    if run.outcome == "failed" and run.error:
        refused = [
            _change_row(c, ch, currency) for c in run.customers for ch in c.changes if ch.ok is None
        ]
        if refused:
            body.table("Refused changes (planned, not applied)", _CHANGE_HEADER, refused)


def _sync_errors(run: RunRecord) -> list[tuple[str, str]]:
    """(whose, error): the run's own first, then each customer's, then its failed writes'."""
    errors = [(c.name, e) for c in run.customers for e in c.errors]
    errors += [
        (c.name, f"{ch.action} {ch.sku} {ch.before} → {ch.after}: {ch.error}")
        for c in run.customers
        for ch in c.changes
        if ch.ok in (False, "unknown") and ch.error not in c.errors
    ]
    if run.error:
        errors.insert(0, ("(the whole run)", run.error))
    return errors


def _sync_warnings(run: RunRecord) -> list[tuple[str, str]]:
    warnings = [("(the plan)", w) for w in run.warnings]
    return warnings + [(c.name, w) for c in run.customers for w in c.warnings]


def _add_links(body: _Body, run_id: str, environ: Mapping[str, str]) -> None:
    """Where to read the run: its links in the repository when run in Actions, else the
    command that shows it."""
    links = run_links(run_md_path(run_id), environ)
    if links:
        body.text += [f"{name.capitalize()}: {url}" for name, url in links.items()]
        body.parts.append(
            "<p>"
            + "<br>\n".join(
                f'{_e(name.capitalize())}: <a href="{_e(url)}">{_e(url)}</a>'
                for name, url in links.items()
            )
            + "</p>"
        )
    else:
        body.text.append(
            f"Details: `reconcile activity {run_id}` (runs/INDEX.md in the repository)"
        )
        body.parts.append(
            f"<p>Details: <code>reconcile activity {_e(run_id)}</code> "
            "(runs/INDEX.md in the repository)</p>"
        )


# --- agreement ending ----------------------------------------------------------------------


@dataclass(frozen=True)
class EndingAgreement:
    agreement_id: int
    agreement_name: str
    company: str
    end_date: dt.date
    days_left: int
    customers: tuple[str, ...]  # "Name (id)"


def agreements_ending(plan: Plan, warning_days: int) -> list[EndingAgreement]:
    """Every mapped agreement, changed or not, ending 0..warning_days days after the as-of
    date (inclusive); one entry per agreement even when customers share it."""
    found: dict[int, EndingAgreement] = {}
    for cp in plan.customers:
        end, agreement_id = cp.agreement_end_date, cp.agreement_id
        if end is None or agreement_id is None:
            continue
        days = (end - plan.period.as_of).days
        if not 0 <= days <= warning_days:
            continue
        who = f"{cp.name} ({cp.customer_id})"
        prior = found.get(agreement_id)
        found[agreement_id] = EndingAgreement(
            agreement_id,
            cp.agreement_name or f"#{agreement_id}",
            cp.company,
            end,
            days,
            (*prior.customers, who) if prior else (who,),
        )
    return sorted(found.values(), key=lambda a: (a.end_date, a.company, a.agreement_id))


def _ending_email(
    ending: Sequence[EndingAgreement], plan: Plan, warning_days: int, run_id: str
) -> tuple[str, str, str]:
    n = len(ending)
    subject = (
        f"[reconcile] {n} agreement{'s' if n != 1 else ''} "
        f"end{'s' if n == 1 else ''} within {warning_days} days"
    )
    intro = (
        f"These mapped ConnectWise agreements end within {warning_days} days of "
        f"{plan.period.as_of.isoformat()}:"
    )
    advice = (
        "Renew them in ConnectWise or map the customers to new agreements in "
        "mappings/customers.yaml; an expired agreement stops the sync for its customers."
    )
    header = ("Agreement", "Company", "Customers", "Ends", "Days left")
    rows = [
        (f"{a.agreement_name} (#{a.agreement_id})", a.company, ", ".join(a.customers),
         a.end_date.isoformat(), str(a.days_left))
        for a in ending
    ]  # fmt: skip
    text = [intro, "", *text_table([header, *rows]), "", advice, f"Run: {run_id}"]
    parts = [
        f"<p>{_e(intro)}</p>",
        _html_table(header, rows),
        f"<p>{_e(advice)}<br>Run: {_e(run_id)}</p>",
    ]
    return subject, "\n".join(text) + "\n", _html_doc(subject, parts)


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
        (SYNC, lambda: _sync_email(run, settings.currency))
    ]
    days = settings.notifications.agreement_end_warning_days
    ending = agreements_ending(plan, days) if plan is not None else []
    if ending and plan is not None:
        ends, applied = ending, plan
        mails.append((ENDING, lambda: _ending_email(ends, applied, days, run.run_id)))
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


# --- unmapped SKUs -------------------------------------------------------------------------


def unmapped_skus(config: Config, usage: Usage) -> list[tuple[str, str, str, int]]:
    """(customer id, customer name, sku, users) for each mapped customer using a ZeroTek SKU
    that has no mapping in skus.yaml, sorted by customer name, id and SKU."""
    mapped = {s.sku for s in config.skus}
    rows = [
        (c.id, c.name, sku, users)
        for c in config.customers
        for sku, users in usage.users.get(c.id, {}).items()
        if users > 0 and sku not in mapped
    ]
    return sorted(rows, key=lambda r: (r[1].casefold(), r[0], r[2]))


def _valued_rows(rows: Sequence[Row], currency: str) -> list[tuple[str, ...]]:
    def money(value: Any) -> str:
        return "not priced" if value is None else amount(value, currency)

    return [
        (r.customer_name, r.customer_id, r.sku, str(r.zerotek_users), r.product or "-",
         money(r.unit_price), money(r.amount))
        for r in rows
    ]  # fmt: skip


_VALUED_HEADER = ("Customer", "Customer id", "SKU", "Users", "Product", "Unit price", "Per month")


def send_unmapped(
    settings: Settings,
    rows: Sequence[tuple[str, str, str, int]],
    *,
    send: bool = True,
    smtp: SmtpSettings | None,
    period: Period | None = None,
    valued: Sequence[Row] = (),
    customers: Sequence[Row] = (),
    price_note: str | None = None,
) -> EmailOutcome | None:
    """The daily unmapped e-mail, while anything is billed nowhere: mapped customers using
    unmapped SKUs (`rows`, or `valued` when priced) and ZeroTek customers with usage but no
    mapping (`customers`), valued at the catalog price. None (nothing sent) once none remain."""
    if not rows and not customers:
        return None
    currency = settings.currency
    when = f" ({period_words(period.kind.value, period.start, period.end)})" if period else ""
    subject = _unmapped_subject(rows, customers)
    body = _Body()
    if rows:
        _add_unmapped_skus(body, rows, valued, currency, when)
    if customers:
        intro = f"These ZeroTek customers have usage but no mapping, so nobody is billed{when}:"
        advice = (
            "Map them in mappings/customers.yaml; `reconcile discover` proposes the "
            "ConnectWise company and agreement for each."
        )
        body.listing(intro, _VALUED_HEADER, _valued_rows(customers, currency), advice)
    total = sum((r.amount for r in (*valued, *customers) if r.amount is not None), Decimal(0))
    closing = [f"Not billed in total: {amount(total, currency)} per month (priced rows)."]
    if price_note:
        closing.append(plain(price_note))
    body.lines([*closing, "This e-mail repeats daily until none remain.", REPORT_HINT])
    mail = (subject, body.plain_text(), _html_doc(subject, body.parts))
    return deliver(UNMAPPED, settings.notifications.recipients, lambda: mail, send=send, smtp=smtp)


def _unmapped_subject(rows: Sequence[tuple[str, str, str, int]], customers: Sequence[Row]) -> str:
    n_sku = len({r[0] for r in rows})
    n_cust = len({r.customer_id for r in customers})
    what = []
    if n_sku:
        what.append(f"Unmapped ZeroTek SKUs in use: {n_sku} customer{'s' if n_sku != 1 else ''}")
    if n_cust:
        what.append(f"unmapped customers with usage: {n_cust}")
    return "[reconcile] " + "; ".join(what)[:1].upper() + "; ".join(what)[1:]


def _add_unmapped_skus(
    body: _Body,
    rows: Sequence[tuple[str, str, str, int]],
    valued: Sequence[Row],
    currency: str,
    when: str,
) -> None:
    """Mapped customers using unmapped SKUs: valued at the catalog price when `valued`."""
    intro = f"These synced customers use ZeroTek SKUs that have no ConnectWise mapping{when}:"
    table = (
        _valued_rows(valued, currency)
        if valued
        else [(name, cid, sku, str(users)) for cid, name, sku, users in rows]
    )
    advice = (
        "Their usage is not billed. Map each SKU in mappings/skus.yaml (or list it in the "
        "customer's exclude_skus); `reconcile discover` proposes the catalog product."
    )
    body.listing(intro, _VALUED_HEADER if valued else UNMAPPED_HEADER, table, advice)
