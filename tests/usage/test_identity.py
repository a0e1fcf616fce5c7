"""Identity and the quantity cap (DESIGN 13.2, 13.3), replayed from issue 24 against the
sandbox: one SKU in two spellings, one agreement named two ways, a glitch of a million
seats, and lines ConnectWise does not bill. Ground truth is the sandbox's own state."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import world_edits
from conftest import set_setting
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.sandbox import Sandbox

AS_OF = ["--as-of", "2026-11-24"]
SINCE = dt.date(2026, 5, 1)


def run(config_dir: Path, *args: str):
    result = CliRunner().invoke(app, ["--config-dir", str(config_dir), *args])
    assert "Traceback" not in result.output, result.output
    return result


def plan_json(config_dir: Path, *args: str) -> tuple[int, dict]:
    result = run(config_dir, "plan", "--format", "json", *AS_OF, *args)
    return result.exit_code, json.loads(result.stdout)


def customer(plan: dict, cid: str) -> dict:
    return next(c for c in plan["customers"] if c["id"] == cid)


def live(sb: Sandbox, agreement: int) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for a in sb.additions(agreement):
        cancelled = a.get("cancelledDate")
        if (cancelled is None or cancelled[:10] > "2026-11-24") and a["quantity"]:
            out.setdefault(a["product"]["identifier"], []).append(int(a["quantity"]))
    return out


# --- one SKU in two spellings ------------------------------------------------------------------


def test_zerotek_case_variants_are_that_customers_error_never_summed(sandbox, config_dir):
    # Found: 27 users under OKTA-SSO and 5 under okta-sso were summed and billed as 32.
    world_edits.set_users(sandbox, "zt-0004", "okta-sso", 5)
    code, plan = plan_json(config_dir)
    assert code == 1
    contoso = customer(plan, "zt-0004")
    assert contoso["changes"] == []
    assert any("one SKU in two spellings" in e for e in contoso["errors"]), contoso
    assert customer(plan, "zt-0001")["changes"]  # the others proceed
    result = run(config_dir, "apply", "--yes", "--no-email", *AS_OF)
    assert result.exit_code == 1
    assert live(sandbox, 1004) == {"ZT-OKTA-SSO": [25]}  # untouched


def test_a_trailing_space_is_the_same_sku_not_a_cancelled_line(sandbox, config_dir):
    # Found: `"OKTA-SSO "` read as an unmapped SKU, and Contoso's line in use was cancelled.
    world_edits.set_users(sandbox, "zt-0004", "OKTA-SSO", 0)
    world_edits.set_users(sandbox, "zt-0004", "OKTA-SSO ", 25)
    code, plan = plan_json(config_dir, "--customer", "zt-0004")
    assert code == 0
    contoso = customer(plan, "zt-0004")
    assert contoso["changes"] == [] and contoso["errors"] == []
    assert not any("not mapped" in w for w in contoso["warnings"])


def test_csv_counts_a_user_under_two_spellings_once(sandbox, config_dir):
    # Found: alice assigned under OKTA-SSO and okta-sso counted as two licences.
    set_setting(config_dir, "source", "csv")
    csv_file = config_dir / "usage" / "assignments.csv"
    csv_file.parent.mkdir()
    csv_file.write_text(
        "customer_id,sku,user,assigned_on,unassigned_on\n"
        "zt-0004,OKTA-SSO,alice,2026-01-01,\n"
        "zt-0004,okta-sso ,alice,2026-01-01,\n"
        "zt-0004, OKTA-SSO,bob,2026-01-01,\n",
        encoding="utf-8",
    )
    code, plan = plan_json(config_dir, "--customer", "zt-0004")
    assert code == 0, plan
    (change,) = customer(plan, "zt-0004")["changes"]
    assert (change["product"], change["before"], change["after"]) == ("ZT-OKTA-SSO", 25, 2)


# --- one agreement named two ways ------------------------------------------------------------


def _second_acme_customer(config_dir: Path, sandbox: Sandbox, *, shared: bool) -> None:
    """zt-0099 (5 OKTA-SSO users) billed on agreement 1001 by its id, while zt-0001 names
    it by its name "Acme Managed Services"."""
    customers = config_dir / "mappings" / "customers.yaml"
    flag = "\n  shared_agreement: true" if shared else ""
    text = customers.read_text().replace(
        "agreement: Acme Managed Services      # by exact name",
        f"agreement: Acme Managed Services{flag}",
    )
    text += f"\n- id: zt-0099\n  name: Acme Labs\n  company: ACME\n  agreement: 1001{flag}\n"
    customers.write_text(text)
    assert sandbox.zt_customers["zt-0099"]["status"] == "active"


def test_customer_option_never_cuts_an_agreement_named_by_id_and_by_name(sandbox, config_dir):
    # Found: validate passed, `apply --customer zt-0001` set SSO to zt-0001's 42 users and
    # zt-0099's 5 licences were no longer billed.
    _second_acme_customer(config_dir, sandbox, shared=False)
    assert run(config_dir, "validate").exit_code == 0  # offline: names are not resolved
    result = run(config_dir, "apply", "--yes", "--no-email", "--customer", "zt-0001", *AS_OF)
    assert result.exit_code == 1
    assert "zt-0001, zt-0099 all map to agreement 1001" in result.output
    assert live(sandbox, 1001) == {"ZT-OKTA-SSO": [40], "ZT-OKTA-MFA": [42], "MSP-HELPDESK": [42]}
    assert sandbox.write_requests == []


def test_customer_option_brings_the_other_shares_along_and_says_so(sandbox, config_dir):
    _second_acme_customer(config_dir, sandbox, shared=True)
    result = run(config_dir, "apply", "--yes", "--no-email", "--customer", "zt-0001", *AS_OF)
    assert result.exit_code == 0, result.output
    assert "customers zt-0001, zt-0099 are billed on agreement 1001: planned together" in (
        result.output
    )
    assert live(sandbox, 1001)["ZT-OKTA-SSO"] == [47]  # 42 + 5


# --- the quantity cap ----------------------------------------------------------------------


def test_a_glitch_of_many_seats_on_a_new_line_is_unsafe(sandbox, config_dir):
    # Found: 1,000,000 users of a SKU without a line was applied (+6,000,000.00 USD/month);
    # the percentage thresholds never count adds. 10,001 crosses the default cap alike.
    world_edits.set_users(sandbox, "zt-0004", "OKTA-WF", 10_001, since=SINCE)
    result = run(config_dir, "apply", "--yes", "--no-email", *AS_OF)
    assert result.exit_code == 3, result.output
    assert "above max_quantity 10000" in result.output
    assert "zt-0004 ZT-OKTA-WF 0 → 10001" in result.output
    assert sandbox.write_requests == []


def test_the_quantity_cap_is_a_setting_and_force_overrides_it(sandbox, config_dir):
    settings = config_dir / "mappings" / "settings.yaml"
    assert "max_quantity: 10000" in settings.read_text()
    set_setting(config_dir, "max_quantity", "10")
    _, plan = plan_json(config_dir, "--customer", "zt-0005")
    assert plan["safe"] is False and any("max_quantity 10" in r for r in plan["unsafe_reasons"])
    set_setting(config_dir, "max_quantity", "0")
    bad = run(config_dir, "validate")
    assert bad.exit_code == 1 and "settings.yaml:" in bad.output
    set_setting(config_dir, "max_quantity", "10")
    forced = run(config_dir, "apply", "--yes", "--no-email", "--force", "--customer", "zt-0005")
    assert forced.exit_code == 0, forced.output


# --- lines ConnectWise does not bill --------------------------------------------------------


def test_a_no_charge_line_is_managed_at_zero_money(sandbox, config_dir):
    # Found: a DoNotBill line's update was valued at 4.00 a licence in plan and report.
    world_edits.update_addition(sandbox, 9007, billCustomer="DoNotBill")
    _, plan = plan_json(config_dir, "--customer", "zt-0004")
    (change,) = customer(plan, "zt-0004")["changes"]
    assert (change["before"], change["after"], change["no_charge"]) == (25, 27, True)
    assert change["revenue_delta"] == "0.00" and plan["summary"]["revenue_delta"] == "0.00"
    text = run(config_dir, "plan", "--customer", "zt-0004", *AS_OF).output
    assert "no charge" in text
    report = json.loads(run(config_dir, "report", "--format", "json", *AS_OF).stdout)
    rows = [r for r in report["rows"] if r["customer_id"] == "zt-0004"]
    assert [(r["kind"], r["difference"], r["monthly_amount"]) for r in rows] == [
        ("under-billed", 2, "0.00")
    ]
    applied = run(config_dir, "apply", "--yes", "--no-email", "--customer", "zt-0004", *AS_OF)
    assert applied.exit_code == 0, applied.output
    assert live(sandbox, 1004) == {"ZT-OKTA-SSO": [27]}  # the quantity is still managed
    (path,) = sorted((config_dir / "runs").glob("*/*/*.json"))
    (written,) = [ch for c in json.loads(path.read_text())["customers"] for ch in c["changes"]]
    assert (written["why"], written["revenue_delta"], written["ok"]) == ("no charge", "0.00", True)
