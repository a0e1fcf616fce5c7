"""The three e-mails, delivered to a real SMTP server on 127.0.0.1 (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from runlog_samples import (
    ACME,
    AS_OF,
    BETA,
    BETA_ERROR,
    DELTA,
    PERIOD,
    RECIPIENTS,
    SETTINGS,
    STARTED,
    SmtpServer,
    failed_result,
    free_port,
    partial_result,
    plan,
    run_smtp,
    success_result,
)

from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config, Settings, SkuMap
from reconciler.core.model import CustomerMap as CM
from reconciler.core.periods import Period
from reconciler.core.plan import CustomerPlan
from reconciler.core.results import ApplyResult, CustomerResult
from reconciler.core.state import Usage
from reconciler.notify.email import notify_after_sync
from reconciler.notify.ending_email import agreements_ending
from reconciler.notify.smtp import SmtpSettings, smtp_from_env
from reconciler.notify.unmapped_email import send_unmapped, unmapped_skus
from reconciler.records import runlog
from reconciler.records.record import RunRecord

PERIOD_TEXT = "last billing period, 16 Oct – 15 Nov 2026"  # a billing person's words


def sent(result: ApplyResult, run_id: str) -> RunRecord:
    """The finished run record the engine hands the e-mail."""
    return RunRecord.of_result(result, run_id)


def failure(message: str, period: Period | None, run_id: str) -> RunRecord:
    """The record of an attempt that failed before any write."""
    record = RunRecord.start(run_id, "manual", STARTED, period or PERIOD, None)
    record.end(STARTED, outcome="failed", error=message)
    return record


def smtp_for(server: SmtpServer, **extra: str) -> SmtpSettings:
    settings = smtp_from_env(server.env(**extra))
    assert settings is not None
    return settings


# --- SMTP settings from the environment ----------------------------------------------------


def test_no_smtp_host_means_mail_is_off() -> None:
    assert smtp_from_env({}) is None
    assert smtp_from_env({"SMTP_HOST": "  ", "SMTP_PORT": "25"}) is None


@pytest.mark.parametrize(("tls", "port"), [("starttls", 587), ("ssl", 465), ("", 587)])
def test_default_ports_and_sender(tls: str, port: int) -> None:
    s = smtp_from_env({"SMTP_HOST": "smtp.msp.example", "SMTP_TLS": tls})
    assert s is not None
    assert (s.port, s.tls or "starttls", s.sender) == (port, tls or "starttls", s.sender)
    assert s.sender == "reconcile@smtp.msp.example"


def test_none_port_25_on_loopback_and_password_hidden() -> None:
    env = {
        "SMTP_HOST": "localhost",
        "SMTP_TLS": "none",
        "SMTP_USERNAME": "mailer",
        "SMTP_PASSWORD": "hunter2-SENTINEL",
        "SMTP_FROM": "billing-bot@msp.example",
    }
    s = smtp_from_env(env)
    assert s is not None and s.port == 25 and s.sender == "billing-bot@msp.example"
    assert s.password == "hunter2-SENTINEL"
    assert "hunter2" not in repr(s)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMTP_TLS": "none"}, "SMTP_TLS=none .* only to a loopback host"),
        ({"SMTP_TLS": "tls"}, "SMTP_TLS must be starttls, ssl or none, got 'tls'"),
        ({"SMTP_PORT": "smtp"}, "SMTP_PORT must be a port number 1..65535, got 'smtp'"),
        ({"SMTP_PORT": "70000"}, "SMTP_PORT must be a port number"),
    ],
)
def test_bad_smtp_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ReconcileError, match=message):
        smtp_from_env({"SMTP_HOST": "smtp.msp.example", **env})


# --- sync outcome --------------------------------------------------------------------------


def test_success_email(smtp_server: SmtpServer) -> None:
    outcomes = notify_after_sync(
        SETTINGS, sent(success_result(), "RUN-1"), success_result().plan, smtp=smtp_for(smtp_server)
    )
    assert [(o.kind, o.sent, o.detail) for o in outcomes] == [
        ("sync-outcome", True, "sent"),
        ("agreement-ending", True, "sent"),
    ]
    assert all(list(o.to) == RECIPIENTS for o in outcomes)
    sync = smtp_server.sink.received[0]
    assert sync.rcpt_tos == RECIPIENTS  # administrators + billing, billing@ only once
    assert sync.mail_from == "reconcile@127.0.0.1"
    assert sync.subject == f"[reconcile] Sync succeeded: {PERIOD_TEXT}"
    text, html = sync.text, sync.html
    for body in (text, html):
        assert "RUN-1" in body
        assert "Acme Corp" in body and "OKTA-SSO" in body and "OKTA-MFA" in body
        assert "+21.00 USD" in body  # revenue delta: 2 x 3.00 + 10 x 1.50
        assert "+6.00 USD" in body and "+15.00 USD" in body
        assert "3.00 USD" in body and "1.50 USD" in body  # unit prices name the currency
    assert "40 → 42" in text and "0 → 10" in text
    assert "40 → 42" in html and "0 → 10" in html
    assert "Errors: 0" in text
    assert "Delta Inc" not in text  # unchanged customers are not "updated"


def test_partial_failure_email_lists_errors(smtp_server: SmtpServer) -> None:
    notify_after_sync(
        SETTINGS, sent(partial_result(), "RUN-2"), partial_result().plan, smtp=smtp_for(smtp_server)
    )
    sync = smtp_server.sink.received[0]
    assert sync.subject == f"[reconcile] Sync failed for 2 of 4 customers: {PERIOD_TEXT}"
    assert "Errors: 2" in sync.text
    assert f"Beta | Ltd <b>: {BETA_ERROR}" in sync.text
    assert "Gamma GmbH: company GAMMA not found in ConnectWise" in sync.text
    assert "Beta | Ltd &lt;b&gt;" in sync.html and "Ltd <b>" not in sync.html
    assert BETA_ERROR in sync.html
    assert "40 → 42" in sync.html  # Acme's writes did happen and are reported


def test_total_failure_email(smtp_server: SmtpServer) -> None:
    notify_after_sync(
        SETTINGS, sent(failed_result(), "RUN-3"), failed_result().plan, smtp=smtp_for(smtp_server)
    )
    sync = smtp_server.sink.received[0]
    assert sync.subject == f"[reconcile] Sync failed: {PERIOD_TEXT}"
    assert "Nothing was written to ConnectWise by this attempt." in sync.text
    assert BETA_ERROR in sync.text and BETA_ERROR in sync.html


def test_failure_before_a_result(smtp_server: SmtpServer) -> None:
    (outcome,) = notify_after_sync(
        SETTINGS,
        failure("plan is stale: config changed", PERIOD, "RUN-4"),
        None,
        smtp=smtp_for(smtp_server),
    )
    assert outcome.sent
    (mail,) = smtp_server.sink.received
    assert mail.subject == f"[reconcile] Sync failed: {PERIOD_TEXT}"
    assert mail.rcpt_tos == RECIPIENTS
    for body in (mail.text, mail.html):
        assert "plan is stale: config changed" in body and "RUN-4" in body


# --- agreement ending ----------------------------------------------------------------------


def ending_in(days: int | None, n: int = 1) -> CustomerPlan:
    end = None if days is None else AS_OF + dt.timedelta(days=days)
    return CustomerPlan(f"zt-9{n}", f"Customer {n}", f"CO{n}", 600 + n, f"Agreement {n}", end)


@pytest.mark.parametrize(
    ("days", "listed"), [(29, True), (30, True), (0, True), (31, False), (None, False), (-1, False)]
)
def test_agreement_ending_window(smtp_server: SmtpServer, days: int | None, listed: bool) -> None:
    result = ApplyResult(plan(ending_in(days)), (), STARTED, STARTED)
    outcomes = notify_after_sync(
        SETTINGS, sent(result, "RUN-5"), result.plan, smtp=smtp_for(smtp_server)
    )
    subjects = [m.subject for m in smtp_server.sink.received]
    if listed:
        assert [o.kind for o in outcomes] == ["sync-outcome", "agreement-ending"]
        assert subjects[1] == "[reconcile] 1 agreement ends within 30 days"
        mail = smtp_server.sink.received[1]
        assert mail.rcpt_tos == RECIPIENTS
        end = (AS_OF + dt.timedelta(days=days or 0)).isoformat()
        for body in (mail.text, mail.html):
            assert "Agreement 1 (#601)" in body and "Customer 1 (zt-91)" in body
            assert end in body and "CO1" in body
    else:
        assert [o.kind for o in outcomes] == ["sync-outcome"]
        assert len(subjects) == 1


def test_one_ending_email_for_all_agreements(smtp_server: SmtpServer) -> None:
    # Acme ends in 29 days (changed), Epsilon in 30 (unchanged), Delta never: one e-mail.
    notify_after_sync(
        SETTINGS, sent(success_result(), "RUN-6"), success_result().plan, smtp=smtp_for(smtp_server)
    )
    ending = [m for m in smtp_server.sink.received if "within" in m.subject]
    assert len(ending) == 1
    mail = ending[0]
    assert mail.subject == "[reconcile] 2 agreements end within 30 days"
    lines = mail.text.splitlines()
    acme = next(line for line in lines if "Okta licences (#501)" in line)
    assert "2026-12-23" in acme and acme.rstrip().endswith("29")
    epsilon = next(line for line in lines if "Epsilon 2026 (#505)" in line)
    assert "2026-12-24" in epsilon and epsilon.rstrip().endswith("30")
    assert "Delta" not in mail.text and "Delta" not in mail.html


def test_shared_agreement_listed_once() -> None:
    a, b = ending_in(10, 1), ending_in(10, 2)
    b = CustomerPlan(
        b.customer_id, b.name, a.company, a.agreement_id, a.agreement_name, a.agreement_end_date
    )
    (row,) = agreements_ending(plan(a, b), 30)
    assert row.customers == ("Customer 1 (zt-91)", "Customer 2 (zt-92)")


# --- unmapped SKUs -------------------------------------------------------------------------

CONFIG = Config(
    config_dir=Path("."),
    settings=SETTINGS,
    skus=(SkuMap("OKTA-SSO", "CW-SSO"), SkuMap("OKTA-MFA", "CW-MFA")),
    customers=(CM("zt-0002", "beta", "BETA", 2), CM("zt-0001", "Acme", "ACME", 1)),
    digest="x",
)


def usage(users: dict[str, dict[str, int]]) -> Usage:
    return Usage(PERIOD, users)


def test_unmapped_skus_only_for_mapped_customers() -> None:
    rows = unmapped_skus(
        CONFIG,
        usage(
            {
                "zt-0001": {"OKTA-SSO": 4, "OKTA-NEW": 3, "OKTA-PAM": 0},
                "zt-0002": {"OKTA-LCM": 7},
                "zt-0404": {"OKTA-NEW": 9},  # not mapped: the plan warns, this e-mail does not
            }
        ),
    )
    assert rows == [("zt-0001", "Acme", "OKTA-NEW", 3), ("zt-0002", "beta", "OKTA-LCM", 7)]
    assert unmapped_skus(CONFIG, usage({"zt-0001": {"OKTA-SSO": 4}})) == []


def test_unmapped_email_present_then_resolved(smtp_server: SmtpServer) -> None:
    smtp = smtp_for(smtp_server)
    rows = [("zt-0001", "Acme", "OKTA-NEW", 3), ("zt-0002", "beta & co", "OKTA-LCM", 7)]
    outcome = send_unmapped(SETTINGS, rows, smtp=smtp, period=PERIOD)
    assert outcome is not None and outcome.sent and outcome.kind == "unmapped-sku"
    (mail,) = smtp_server.sink.received
    assert mail.rcpt_tos == RECIPIENTS
    assert mail.subject == "[reconcile] Unmapped ZeroTek SKUs in use: 2 customers"
    acme = next(line for line in mail.text.splitlines() if "OKTA-NEW" in line)
    assert acme.split() == ["Acme", "zt-0001", "OKTA-NEW", "3"]
    assert "OKTA-LCM" in mail.text and "beta & co" in mail.text
    assert "<td" in mail.html and ">OKTA-LCM<" in mail.html and ">7<" in mail.html
    assert "beta &amp; co" in mail.html
    # Resolved: no rows, no e-mail.
    assert send_unmapped(SETTINGS, [], smtp=smtp) is None
    assert len(smtp_server.sink.received) == 1


# --- delivery failures ---------------------------------------------------------------------


def test_connection_refused_does_not_raise() -> None:
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(free_port()), "SMTP_TLS": "none"}
    outcomes = notify_after_sync(
        SETTINGS,
        sent(success_result(), "RUN-7"),
        success_result().plan,
        smtp=smtp_from_env(env),
    )
    assert [o.sent for o in outcomes] == [False, False]
    assert outcomes[0].detail.startswith("not sent: connection refused by 127.0.0.1:")
    assert outcomes[0].detail.endswith(": check SMTP_HOST and SMTP_PORT")


def test_not_configured_and_no_email(smtp_server: SmtpServer) -> None:
    (a, _) = notify_after_sync(
        SETTINGS, sent(success_result(), "R"), success_result().plan, smtp=None
    )
    assert (a.sent, a.detail) == (False, "not sent: SMTP not configured")
    (b, _) = notify_after_sync(
        SETTINGS,
        sent(success_result(), "R"),
        success_result().plan,
        send=False,
        smtp=smtp_for(smtp_server),
    )
    assert (b.sent, b.detail) == (False, "not sent: --no-email")
    nobody = Settings()
    (c,) = notify_after_sync(nobody, failure("x", None, "R"), None, smtp=smtp_for(smtp_server))
    assert not c.sent and "no recipients" in c.detail
    assert smtp_server.sink.received == []


def test_starttls_is_required_when_asked(smtp_server: SmtpServer) -> None:
    # This server offers no STARTTLS: the mail must not go out in clear instead.
    smtp = smtp_from_env(smtp_server.env(SMTP_TLS="starttls"))
    (outcome, _) = notify_after_sync(
        SETTINGS, sent(success_result(), "R"), success_result().plan, smtp=smtp
    )
    assert not outcome.sent and "does not offer STARTTLS" in outcome.detail
    assert "SMTP_TLS=ssl" in outcome.detail  # what to change, not an exception class name
    assert "Error" not in outcome.detail
    assert smtp_server.sink.received == []


def test_ssl_against_a_plain_server_fails_cleanly(smtp_server: SmtpServer) -> None:
    smtp = smtp_from_env(smtp_server.env(SMTP_TLS="ssl"))
    (outcome,) = notify_after_sync(SETTINGS, failure("x", PERIOD, "R"), None, smtp=smtp)
    assert not outcome.sent and outcome.detail.startswith("not sent: ")
    assert "SMTP_TLS=starttls" in outcome.detail and "Error" not in outcome.detail


def _authenticator(password: bytes) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == password
        return AuthResult(success=ok, handled=False)

    return check


def test_login_and_refused_login() -> None:
    kwargs = {"authenticator": _authenticator(b"right-pw"), "auth_require_tls": False}
    with run_smtp(**kwargs) as server:
        good = smtp_for(server, SMTP_USERNAME="mailer", SMTP_PASSWORD="right-pw")
        (sent,) = notify_after_sync(SETTINGS, failure("x", PERIOD, "R"), None, smtp=good)
        bad = smtp_for(server, SMTP_USERNAME="mailer", SMTP_PASSWORD="wrong-pw")
        (refused,) = notify_after_sync(SETTINGS, failure("x", PERIOD, "R"), None, smtp=bad)
        assert sent.sent and len(server.sink.received) == 1
        assert not refused.sent and "refused the SMTP login (535)" in refused.detail
        assert refused.detail.endswith("check SMTP_USERNAME and SMTP_PASSWORD")


# --- secrets -------------------------------------------------------------------------------

SENTINELS = {
    "CW_PRIVATE_KEY": "SENTINEL-cw-private-7f3a",
    "SMTP_PASSWORD": "SENTINEL-smtp-pass-91b2",
    "ZEROTEK_API_TOKEN": "SENTINEL-zt-token-44c0",
}


def test_secrets_never_reach_run_files_or_emails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SENTINELS.items():
        monkeypatch.setenv(name, value)
    kwargs = {"authenticator": _authenticator(SENTINELS["SMTP_PASSWORD"].encode()),
              "auth_require_tls": False}  # fmt: skip
    with run_smtp(**kwargs) as server:
        monkeypatch.setenv("SMTP_HOST", server.host)
        monkeypatch.setenv("SMTP_PORT", str(server.port))
        monkeypatch.setenv("SMTP_TLS", "none")
        monkeypatch.setenv("SMTP_USERNAME", "mailer")
        smtp = smtp_from_env()
        # An upstream error that echoes a credential (the worst case the scrubber exists for).
        leaky = f"401 Unauthorized for key {SENTINELS['CW_PRIVATE_KEY']}"
        base = partial_result()
        beta = base.customers[1]
        customers = (*base.customers[:1], CustomerResult(beta.plan, beta.results, (leaky,)),
                     *base.customers[2:])  # fmt: skip
        result = ApplyResult(base.plan, customers, base.started, base.finished)
        handle = runlog.start_run(tmp_path, result.plan, trigger="manual", started=STARTED)
        handle.finish(result)
        emails = notify_after_sync(SETTINGS, handle.record, result.plan, smtp=smtp)
        handle.set_emails(emails)
        failed = runlog.start_run(
            tmp_path, result.plan, trigger="manual", started=STARTED + dt.timedelta(hours=1)
        )
        failed.fail(leaky)
        failed.set_emails(notify_after_sync(SETTINGS, failed.record, None, smtp=smtp))
        received = list(server.sink.received)

    assert [o.sent for o in emails] == [True, True] and len(received) == 3
    assert any("[CW_PRIVATE_KEY redacted]" in m.text for m in received)
    files = sorted(p for p in (tmp_path / "runs").rglob("*") if p.is_file())
    assert len(files) == 7  # 2 runs x (json + md + index summary) + INDEX.md
    blobs = [p.read_bytes() for p in files] + [m.raw for m in received]
    for value in SENTINELS.values():
        assert not any(value.encode() in blob for blob in blobs), value
    record = json.loads(handle.path.read_text())
    assert Decimal(record["totals"]["revenue_delta"]) == Decimal("21.00")
    assert record["emails"][0]["detail"] == "sent"
    assert ACME.name in handle.md_path.read_text() and DELTA.customer_id in handle.path.read_text()


# --- read as a billing person would ----------------------------------------------------------


def _section(text: str, title: str) -> str:
    """The lines under `title:` up to the next blank line."""
    text = text.replace("\r\n", "\n")
    return text.split(f"\n{title}:\n", 1)[1].split("\n\n", 1)[0]


def test_success_email_reads_like_an_invoice_summary(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    settings = Settings(currency="EUR", notifications=SETTINGS.notifications)
    notify_after_sync(settings, sent(success_result(), "RUN-5"), None, smtp=smtp_for(smtp_server))
    (mail,) = smtp_server.sink.received
    assert mail.subject == "[reconcile] Sync succeeded: last billing period, 16 Oct – 15 Nov 2026"
    text, html = mail.text, mail.html
    # Counts of additions and licences per kind, each under its own heading.
    assert "Added: 1 additions (+10 licences)" in text
    assert "Quantities updated: 1 additions (+2 licences)" in text
    assert "Removed: 0 additions (+0 licences)" in text
    added, updated = _section(text, "Added"), _section(text, "Quantities updated")
    assert "0 → 10" in added and "40 → 42" not in added
    assert "40 → 42" in updated and "0 → 10" not in updated
    assert "<h3>Added</h3>" in html and "<h3>Quantities updated</h3>" in html
    assert "<h3>Removed</h3>" not in html
    for body in (text, html):
        # The currency on every figure: unit prices, deltas, the total.
        assert "3.00 EUR" in body and "1.50 EUR" in body
        assert "+6.00 EUR" in body and "+15.00 EUR" in body and "+21.00 EUR" in body
        assert " USD" not in body
        # Warnings are part of a successful sync's news.
        assert "zt-0099 has usage but no mapping" in body
        assert "reconcile report" in body
    assert "Warnings:" in text and "<h3>Warnings</h3>" in html
    assert "last-billing-period" not in text + html


def test_unsafe_plan_email_lists_the_refused_changes(smtp_server: SmtpServer) -> None:
    record = RunRecord.start("RUN-6", "scheduled", STARTED, PERIOD, plan(ACME, BETA))
    record.end(STARTED, outcome="failed", error="unsafe plan refused: removals 100% > 30%")
    notify_after_sync(SETTINGS, record, None, smtp=smtp_for(smtp_server))
    (mail,) = smtp_server.sink.received
    refused = _section(mail.text, "Refused changes (planned, not applied)")
    assert "40 → 42" in refused and "0 → 10" in refused and "5 → 0" in refused
    assert "Acme Corp" in refused and "-15.00 USD" in refused  # 5 x 3.00 no longer billed
    assert "<h3>Refused changes (planned, not applied)</h3>" in mail.html
    assert "5 → 0" in mail.html
    assert "Nothing was written to ConnectWise by this attempt." in mail.text
    assert "unsafe plan refused" in mail.text


def test_in_actions_the_email_links_the_run_in_the_repository(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "msp/billing",
        "GITHUB_SHA": "f00dfeed",
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_REF_NAME": "main",
        "GITHUB_RUN_ID": "777",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run_id = "20261115T061700Z-scheduled"
    notify_after_sync(SETTINGS, sent(success_result(), run_id), None, smtp=smtp_for(smtp_server))
    (mail,) = smtp_server.sink.received
    url = f"https://github.com/msp/billing/blob/main/runs/2026/11/{run_id}.md"
    assert f"Run log: {url}" in mail.text
    assert f'<a href="{url}">' in mail.html
    assert "https://github.com/msp/billing/actions/runs/777" in mail.text
    assert "see runs/INDEX.md" not in mail.text
