"""E-mail delivery: the SMTP server from the environment (`smtp_from_env`, `SmtpSettings`)
and one message sent within its deadlines (`deliver`), every failure coming back as an
`EmailOutcome` ("not sent: <why>", in the terms of the SMTP_* variables), never raised: mail is
a side channel of the sync it reports on.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from reconciler.config.urls import is_loopback_host
from reconciler.core.errors import ReconcileError
from reconciler.net.deadline import RunDeadline, within
from reconciler.records.record import EmailOutcome
from reconciler.secure.scrub import check_credentials, scrub
from reconciler.secure.untrusted import header as header_text
from reconciler.secure.untrusted import plain

TLS_MODES = {"starttls": 587, "ssl": 465, "none": 25}
SMTP_TIMEOUT = 30.0
NOT_CONFIGURED = "not sent: SMTP not configured"
NO_EMAIL = "not sent: --no-email"
NO_RECIPIENTS = "not sent: no recipients (notifications.administrators, billing)"


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
