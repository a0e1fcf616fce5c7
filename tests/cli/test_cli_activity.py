"""`reconcile activity` and `reconcile check-unmapped` through the real CLI."""

from __future__ import annotations

import datetime as dt
import html
import json
import shutil
from pathlib import Path

import clirun
import pytest
import world_edits
from runlog_samples import (
    STARTED,
    SmtpServer,
    failed_result,
    free_port,
    partial_result,
    success_result,
)

from reconciler.records import runlog

SMTP_VARS = ("SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_TLS")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*SMTP_VARS, "RECONCILE_CONFIG_DIR", "GITHUB_EVENT_NAME"):
        monkeypatch.delenv(name, raising=False)


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return clirun.invoke(*args, env=env)


# --- activity ------------------------------------------------------------------------------


def three_runs(config_dir: Path) -> list[str]:
    ids = []
    for days, result in ((0, success_result()), (1, partial_result()), (2, failed_result())):
        started = STARTED + dt.timedelta(days=days)
        trigger = "scheduled" if days == 0 else "manual"
        handle = runlog.start_run(config_dir, result.plan, trigger=trigger, started=started)
        handle.finish(result)
        ids.append(handle.run_id)
    return ids


def test_no_runs_yet(tmp_path: Path) -> None:
    (tmp_path / "mappings").mkdir()  # a config directory without a sync yet
    result = invoke("activity", "--config-dir", str(tmp_path))
    assert result.exit_code == 0
    assert result.stdout.strip() == f"No runs yet under {tmp_path / 'runs'}"


def test_lists_runs_newest_first(tmp_path: Path) -> None:
    first, second, third = three_runs(tmp_path)
    result = invoke("--config-dir", str(tmp_path), "activity")  # option before the command
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["WHEN", "(UTC)", "TRIGGER", "PERIOD"]
    assert [line.split()[-1] for line in lines[1:]] == [third, second, first]
    assert lines[1].split()[5:] == ["failed", "0", "0", "+0.00", "2", third]
    assert lines[3].split()[2:] == [
        "scheduled",
        "last-billing-period",
        "2026-10-16..2026-11-15",
        "success",
        "1",
        "2",
        "+21.00",
        "0",
        first,
    ]
    limited = invoke("activity", "--limit", "1", "--config-dir", str(tmp_path))
    assert len(limited.stdout.splitlines()) == 2 and third in limited.stdout


def test_lists_runs_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _, third = three_runs(tmp_path)
    monkeypatch.setenv("RECONCILE_CONFIG_DIR", str(tmp_path))
    result = invoke("activity", "--format", "json")
    runs = json.loads(result.stdout)["runs"]
    assert [r["run_id"] for r in runs][::2] == [third, first]
    assert runs[2]["outcome"] == "success" and runs[2]["revenue_delta"] == "21.00"
    assert runs[2]["quantities_updated"] == 2 and runs[2]["trigger"] == "scheduled"


def test_one_run_in_detail(tmp_path: Path) -> None:
    _, second, _ = three_runs(tmp_path)
    text = invoke("activity", second, "--config-dir", str(tmp_path))
    assert text.exit_code == 0
    out = text.stdout
    assert f"Run {second}" in out and "outcome:    partial" in out
    assert "update OKTA-SSO [CW-OKTA-SSO] 40 → 42 @ 3.00 = +6.00 USD  done" in out
    assert "FAILED: ConnectWise 400: quantity: must not be negative" in out
    assert "error: company GAMMA not found in ConnectWise" in out
    as_json = invoke("activity", second[:16], "--format", "json", "--config-dir", str(tmp_path))
    record = json.loads(as_json.stdout)
    assert record["run_id"] == second and record["totals"]["errors"] == 2


def test_unknown_run_is_one_clear_error(tmp_path: Path) -> None:
    three_runs(tmp_path)
    result = invoke("activity", "20991231T000000Z-manual", "--config-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: no run '20991231T000000Z-manual' under {tmp_path / 'runs'}"
    )


# --- check-unmapped (CSV usage source: no network) -----------------------------------------

SETTINGS_YAML = """\
enabled: true
connectwise:
  api_url: https://api-na.myconnectwise.net/v4_6_release/apis/3.0
zerotek:
  api_url: https://api.zerotek.example/
usage:
  source: csv
  path: usage/assignments.csv
notifications:
  administrators: [ops@msp.example]
  billing: [billing@msp.example, ops@msp.example]
"""
SKUS_YAML = "- sku: OKTA-SSO\n  product: ZT-OKTA-SSO\n"
CUSTOMERS_YAML = """\
- id: zt-0001
  name: Acme Corp
  company: ACME
  agreement: 1001
- id: zt-0002
  name: Beta Ltd
  company: BETA
  agreement: 1002
"""
# As of 2026-11-24 (current period 11-16..11-24): Acme uses OKTA-NEW (2 users); Beta's
# OKTA-PAM ended 11-10; zt-0099 is not a mapped customer. As of 11-05 (10-16..11-05) Beta's
# OKTA-PAM still counts. zt-0099 (unmapped) uses OKTA-NEW and OKTA-SSO until 12-01. As of
# 2026-12-20 nothing unmapped is in use any more.
ASSIGNMENTS = """\
customer_id,sku,user,assigned_on,unassigned_on
zt-0001,OKTA-SSO,u1,2026-01-01,
zt-0001,OKTA-NEW,u1,2026-11-01,2026-12-01
zt-0001,OKTA-NEW,u2,2026-11-20,2026-12-01
zt-0002,OKTA-PAM,u9,2026-01-01,2026-11-10
zt-0099,OKTA-NEW,u5,2026-01-01,2026-12-01
zt-0099,OKTA-SSO,u5,2026-01-01,2026-12-01
"""


@pytest.fixture
def csv_config(tmp_path: Path) -> Path:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "usage").mkdir()
    (tmp_path / "mappings/settings.yaml").write_text(SETTINGS_YAML)
    (tmp_path / "mappings/skus.yaml").write_text(SKUS_YAML)
    (tmp_path / "mappings/customers.yaml").write_text(CUSTOMERS_YAML)
    (tmp_path / "usage/assignments.csv").write_text(ASSIGNMENTS)
    return tmp_path


def check(config_dir: Path, as_of: str, *extra: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return invoke(
        "check-unmapped", "--as-of", as_of, "--config-dir", str(config_dir), *extra, env=env
    )


def test_unmapped_present_is_listed_and_mailed(csv_config: Path, smtp_server: SmtpServer) -> None:
    result = check(csv_config, "2026-11-24", env=smtp_server.env())
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Customers using unmapped ZeroTek SKUs (current 2026-11-16..2026-11-24):"
    assert [line.split() for line in lines[2:3]] == [["Acme", "Corp", "zt-0001", "OKTA-NEW", "2"]]
    # The unmapped customer's usage, valued (no ConnectWise here: "not priced").
    assert (
        lines[4] == "ZeroTek customers with usage but no mapping (current 2026-11-16..2026-11-24):"
    )
    assert [line.split() for line in lines[6:]] == [
        ["zt-0099", "zt-0099", "OKTA-NEW", "1", "not", "priced"],
        ["zt-0099", "zt-0099", "OKTA-SSO", "1", "not", "priced"],
    ]
    assert result.stderr.strip() == "e-mail unmapped-sku: sent"
    (mail,) = smtp_server.sink.received
    assert mail.rcpt_tos == ["ops@msp.example", "billing@msp.example"]
    assert mail.subject == (
        "[reconcile] Unmapped ZeroTek SKUs in use: 1 customer; unmapped customers with usage: 1"
    )
    row = next(line for line in mail.text.splitlines() if "OKTA-NEW" in line)
    assert row.split()[:5] == ["Acme", "Corp", "zt-0001", "OKTA-NEW", "2"]
    assert ">Acme Corp<" in mail.html and ">2<" in mail.html
    for body in (mail.text, mail.html):
        assert "zt-0099" in body and "current period to date, 16 – 24 Nov 2026" in body
        assert "not priced: ConnectWise catalog unreadable" in body
        assert "reconcile report" in body and "reconcile discover" in body

    earlier = check(csv_config, "2026-11-05", env=smtp_server.env())
    rows = [line.split() for line in earlier.stdout.splitlines()[2:4]]
    assert rows == [
        ["Acme", "Corp", "zt-0001", "OKTA-NEW", "1"],
        ["Beta", "Ltd", "zt-0002", "OKTA-PAM", "1"],
    ]
    assert "in use: 2 customers;" in smtp_server.sink.received[1].subject


def test_resolved_is_silent(csv_config: Path, smtp_server: SmtpServer) -> None:
    result = check(csv_config, "2026-12-20", env=smtp_server.env())
    assert result.exit_code == 0
    assert result.stdout == "No unmapped SKUs in use.\n"
    assert result.stderr == ""
    assert smtp_server.sink.received == []


def test_no_email_and_no_smtp_still_exit_0(csv_config: Path, smtp_server: SmtpServer) -> None:
    quiet = check(csv_config, "2026-11-24", "--no-email", env=smtp_server.env())
    assert quiet.exit_code == 0 and "OKTA-NEW" in quiet.stdout
    assert quiet.stderr.strip() == "e-mail unmapped-sku: not sent: --no-email"
    unconfigured = check(csv_config, "2026-11-24")
    assert unconfigured.exit_code == 0
    assert unconfigured.stderr.strip() == "e-mail unmapped-sku: not sent: SMTP not configured"
    assert smtp_server.sink.received == []


def test_mail_failure_is_reported_and_exits_1(csv_config: Path) -> None:
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(free_port()), "SMTP_TLS": "none"}
    result = check(csv_config, "2026-11-24", env=env)
    assert result.exit_code == 1
    assert "OKTA-NEW" in result.stdout
    assert result.stderr.startswith("e-mail unmapped-sku: not sent: connection refused by ")


def test_clear_text_smtp_to_a_remote_host_is_refused(csv_config: Path) -> None:
    env = {"SMTP_HOST": "smtp.msp.example", "SMTP_TLS": "none"}
    result = check(csv_config, "2026-11-24", env=env)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: SMTP_TLS=none would send mail and credentials")


def test_bad_as_of(csv_config: Path) -> None:
    result = check(csv_config, "24/11/2026")
    assert result.exit_code == 1
    assert "expected YYYY-MM-DD" in result.stderr


# --- check-unmapped against the ZeroTek simulator ------------------------------------------


def test_unmapped_against_the_sandbox(tmp_path: Path, smtp_server: SmtpServer) -> None:
    from reconciler.config.loader import load_config
    from reconciler.config.resources import example_dir
    from reconciler.sandbox import Sandbox

    shutil.copytree(example_dir(), tmp_path / "mappings")
    config = load_config(tmp_path)
    mapped = {s.sku for s in config.skus}
    start, end = dt.date(2026, 11, 16), dt.date(2026, 11, 24)
    with Sandbox() as sb:
        env = {**sb.env(), **smtp_server.env()}
        usage = sb.usage(start, end)  # the simulator's own count, not the client's
        expected = sorted(
            (c.name, c.id, sku, str(n))
            for c in config.customers
            for sku, n in usage.get(c.id, {}).items()
            if sku not in mapped and n > 0
        )
        expected.sort(key=lambda row: (row[0].casefold(), row[1], row[2]))
        assert expected, "the example data should include an unmapped SKU in use"
        found = check(tmp_path, "2026-11-24", env=env)
        assert found.exit_code == 0, found.output
        listed = found.stdout.split("\n\n")[0].splitlines()[2:]
        assert len(listed) == len(expected)
        for line, (name, cid, sku, n) in zip(listed, expected, strict=True):
            assert line.split()[-3:] == [cid, sku, n] and line.strip().startswith(name)
        # The unmapped customer's usage, valued at the catalog price (6 x 4.00).
        unmapped = found.stdout.split("\n\n")[1].splitlines()
        assert unmapped[2].split() == [
            "Unmapped",
            "Startup",
            "zt-0099",
            "OKTA-SSO",
            "6",
            "24.00",
            "USD",
        ]
        # One bulk usage read (plus the directory), never a request per customer; the
        # catalog, to price what is not billed.
        assert set(sb.stats.requests) <= {"GET zt-usage", "GET zt-customers", "GET catalog"}
        assert sb.stats.writes == 0
        (mail,) = smtp_server.sink.received
        for name, cid, sku, n in expected:
            for cell in (name, cid, sku, n):
                assert f">{html.escape(cell)}<" in mail.html
        assert ">24.00 USD<" in mail.html and "Not billed in total: 24.00 USD" in mail.text

        for _, cid, sku, _ in expected:  # the customers stop using them: resolved
            world_edits.set_users(sb, cid, sku, 0)
        world_edits.set_users(sb, "zt-0099", "OKTA-SSO", 0)
        resolved = check(tmp_path, "2026-11-24", env=env)
        assert resolved.exit_code == 0
        assert resolved.stdout == "No unmapped SKUs in use.\n"
        assert len(smtp_server.sink.received) == 1
