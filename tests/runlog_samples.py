"""Shared by the run-log, notification and activity tests: model objects built by hand (no
planner, no apply) and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from reconciler.core.model import Notifications, PeriodKind, Settings
from reconciler.core.periods import Period
from reconciler.core.plan import Action, Change, CustomerPlan, Plan
from reconciler.core.results import ApplyResult, ChangeResult, CustomerResult

AS_OF = dt.date(2026, 11, 24)
PERIOD = Period(PeriodKind.LAST_BILLING_PERIOD, dt.date(2026, 10, 16), dt.date(2026, 11, 15), AS_OF)
STARTED = dt.datetime(2026, 11, 24, 10, 15, 0, tzinfo=dt.UTC)
FINISHED = STARTED + dt.timedelta(seconds=42)
SETTINGS = Settings(
    notifications=Notifications(
        administrators=("ops@msp.example", "billing@msp.example"),
        billing=("billing@msp.example", "ar@msp.example"),
        agreement_end_warning_days=30,
    )
)
RECIPIENTS = ["ops@msp.example", "billing@msp.example", "ar@msp.example"]


AGREEMENT = {"zt-0001": 501, "zt-0002": 502}  # the customers' below: changes are on them


def change(action: Action, cid: str, sku: str, before: int, after: int, price: str) -> Change:
    return Change(
        action=action,
        customer_id=cid,
        sku=sku,
        product=f"CW-{sku}",
        product_id=hash(sku) % 1000,
        agreement_id=AGREEMENT[cid],
        addition_id=None if action is Action.ADD else 9000 + before,
        before=before,
        after=after,
        unit_price=Decimal(price),
    )


ACME_UPDATE = change(Action.UPDATE, "zt-0001", "OKTA-SSO", 40, 42, "3.00")
ACME_ADD = change(Action.ADD, "zt-0001", "OKTA-MFA", 0, 10, "1.50")
BETA_REMOVE = change(Action.REMOVE, "zt-0002", "OKTA-SSO", 5, 0, "3.00")

ACME = CustomerPlan(
    "zt-0001", "Acme Corp", "ACME", 501, "Okta licences", AS_OF + dt.timedelta(days=29),
    changes=(ACME_UPDATE, ACME_ADD), managed=1,
)  # fmt: skip
BETA = CustomerPlan(
    "zt-0002", "Beta | Ltd <b>", "BETA", 502, "Beta Okta", AS_OF + dt.timedelta(days=31),
    changes=(BETA_REMOVE,), managed=1,
)  # fmt: skip
GAMMA = CustomerPlan(
    "zt-0003", "Gamma GmbH", "GAMMA", errors=("company GAMMA not found in ConnectWise",)
)
DELTA = CustomerPlan("zt-0004", "Delta Inc", "DELTA", 504, "Delta open-ended", None)
EPSILON = CustomerPlan(
    "zt-0005", "Epsilon AG", "EPS", 505, "Epsilon 2026", AS_OF + dt.timedelta(days=30),
    warnings=("uses SKU OKTA-NEW, which is not mapped",),
)  # fmt: skip
BETA_ERROR = "ConnectWise 400: quantity: must not be negative"


def plan(*customers: CustomerPlan, warnings: tuple[str, ...] = ()) -> Plan:
    return Plan(PERIOD, customers, warnings=warnings)


def success_result() -> ApplyResult:
    p = plan(ACME, DELTA, EPSILON, warnings=("ZeroTek customer zt-0099 has usage but no mapping",))
    return ApplyResult(
        p,
        (
            CustomerResult(
                ACME, (ChangeResult(ACME_UPDATE, True), ChangeResult(ACME_ADD, True, None, 777)),
                verified=True,
            ),
            CustomerResult(DELTA, verified=True),
            CustomerResult(EPSILON, verified=True),
        ),
        STARTED,
        FINISHED,
        writes=2,
    )  # fmt: skip


def partial_result() -> ApplyResult:
    p = plan(ACME, BETA, GAMMA, DELTA)
    return ApplyResult(
        p,
        (
            CustomerResult(
                ACME, (ChangeResult(ACME_UPDATE, True), ChangeResult(ACME_ADD, True)), verified=True
            ),
            CustomerResult(
                BETA, (ChangeResult(BETA_REMOVE, False, BETA_ERROR),), errors=(BETA_ERROR,)
            ),
            CustomerResult(GAMMA, errors=GAMMA.errors),
            CustomerResult(DELTA, verified=True),
        ),
        STARTED,
        FINISHED,
        writes=2,
    )


def failed_result() -> ApplyResult:
    p = plan(BETA, GAMMA)
    return ApplyResult(
        p,
        (
            CustomerResult(
                BETA, (ChangeResult(BETA_REMOVE, False, BETA_ERROR),), errors=(BETA_ERROR,)
            ),
            CustomerResult(GAMMA, errors=GAMMA.errors),
        ),
        STARTED,
        FINISHED,
    )


# --- SMTP ----------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def subject(self) -> str:
        # Long subjects fold right after "Subject:"; the stdlib parser keeps the fold's space.
        return str(self.message["Subject"]).strip()

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]


@dataclass
class Sink:
    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), msg, envelope.content)
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpServer:
    host: str
    port: int
    sink: Sink

    def env(self, **extra: str) -> dict[str, str]:
        return {"SMTP_HOST": self.host, "SMTP_PORT": str(self.port), "SMTP_TLS": "none", **extra}


@contextmanager
def run_smtp(**kwargs: Any) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1 and a free port; kwargs go to its SMTP class (e.g. auth)."""
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, sink)
    finally:
        controller.stop()
