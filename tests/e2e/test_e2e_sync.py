"""plan and apply end to end: the CLI against the sandbox on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import jsonschema
import pytest
import world_edits
from clirun import checked, invoke, run
from conftest import set_setting
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.config.resources import load_schema
from reconciler.sandbox import Sandbox

AS_OF = ["--as-of", "2026-11-24"]


def active(sb: Sandbox, agreement: int) -> dict[str, list[int]]:
    """product identifier -> quantities of active additions (as of 2026-11-24)."""
    out: dict[str, list[int]] = {}
    for a in sb.additions(agreement):
        cancelled = a.get("cancelledDate")
        if cancelled is None or cancelled[:10] > "2026-11-24":
            out.setdefault(a["product"]["identifier"], []).append(int(a["quantity"]))
    return out


EXPECTED = {  # last billing period 2026-10-16..2026-11-15 (DESIGN example data)
    1001: {"ZT-OKTA-SSO": [42], "ZT-OKTA-MFA": [42], "MSP-HELPDESK": [42]},
    1002: {"ZT-OKTA-SSO": [12]},
    1003: {"ZT-OKTA-SSO": [18], "ZT-OKTA-MFA": [18], "ZT-OKTA-LCM": [6]},
    1004: {"ZT-OKTA-SSO": [27]},
    1005: {"ZT-OKTA-SSO": [60], "ZT-OKTA-UD": [60], "ZT-OKTA-MFA": [15]},
    1006: {"ZT-OKTA-SSO": [9], "ZT-OKTA-WF": [2]},
    1007: {"ZT-OKTA-WF": [4], "ZT-OKTA-SSO": [4]},
}


def _sorted(d: dict[str, list[int]]) -> dict[str, list[int]]:
    return {k: sorted(v) for k, v in sorted(d.items())}


def test_plan_is_read_only_then_apply_converges_and_reapply_is_a_noop(sandbox, config_dir):
    untouched_before = {a: sandbox.additions(a) for a in (1001, 1005)}
    plan = run(config_dir, "plan", *AS_OF, "--detailed-exitcode")
    assert plan.exit_code == 2
    assert "Plan: 7 to add, 3 to update, 1 to remove across 7 of 7 customers" in plan.output
    assert sandbox.stats.writes == 0

    applied = run(config_dir, "apply", "--yes", *AS_OF)
    assert applied.exit_code == 0, applied.output
    assert sandbox.stats.writes == 11
    for agreement, want in EXPECTED.items():
        assert _sorted(active(sandbox, agreement)) == _sorted(want), agreement

    # not ours: the unmapped product and the excluded SKU are byte-identical
    for agreement, before in untouched_before.items():
        after = {a["id"]: a for a in sandbox.additions(agreement)}
        for a in before:
            if a["product"]["identifier"] in ("MSP-HELPDESK", "ZT-OKTA-UD"):
                assert after[a["id"]] == a
    # the removal is a cancel dated the as-of day; adds carry the as-of date or billStartDate
    ud = next(a for a in sandbox.additions(1002) if a["product"]["identifier"] == "ZT-OKTA-UD")
    assert ud["cancelledDate"] == "2026-11-24T00:00:00Z" and ud["quantity"] == 7
    adds_1003 = [a for a in sandbox.additions(1003)]
    assert {a["effectiveDate"] for a in adds_1003} == {"2026-11-24T00:00:00Z"}
    assert {a["effectiveDate"] for a in sandbox.additions(1006)} == {"2026-12-01T00:00:00Z"}
    assert {a["billCustomer"] for a in adds_1003} == {"Billable"}

    again = run(config_dir, "plan", *AS_OF, "--detailed-exitcode")
    assert again.exit_code == 0 and "No changes." in again.output
    writes = sandbox.stats.writes
    reapply = run(config_dir, "apply", "--yes", *AS_OF)
    assert reapply.exit_code == 0 and sandbox.stats.writes == writes


@pytest.mark.parametrize("mode", ["zero", "delete"])
def test_removal_modes(sandbox, config_dir, mode):
    set_setting(config_dir, "removal", mode)
    assert run(config_dir, "apply", "--yes", *AS_OF).exit_code == 0
    ud = [a for a in sandbox.additions(1002) if a["product"]["identifier"] == "ZT-OKTA-UD"]
    if mode == "zero":
        assert [(a["quantity"], a["cancelledDate"]) for a in ud] == [(0, None)]
    else:
        assert ud == []
    assert run(config_dir, "plan", *AS_OF, "--detailed-exitcode").exit_code == 0


def test_add_missing_false_is_update_only(sandbox, config_dir):
    set_setting(config_dir, "add_missing", "false")
    result = run(config_dir, "apply", "--yes", *AS_OF)
    assert result.exit_code == 0
    assert sandbox.additions(1003) == []  # nothing created
    assert "but no ZT-OKTA-SSO addition, and add_missing is false" in result.output
    assert _sorted(active(sandbox, 1001)) == _sorted(EXPECTED[1001])  # updates still happen


def test_per_customer_errors_leave_only_those_customers_untouched(sandbox, config_dir):
    world_edits.update_agreement(sandbox, 1003, agreementStatus="Cancelled", cancelledFlag=True)
    world_edits.add_addition(
        sandbox, 1004, "ZT-OKTA-SSO", 25
    )  # now two active SSO additions: ambiguous
    before = {a: sandbox.additions(a) for a in (1003, 1004)}
    result = run(config_dir, "apply", "--yes", *AS_OF)
    assert result.exit_code == 1
    assert "agreement 1003 ('Big Quote - Identity') is cancelled" in result.output
    assert "2 active additions of ZT-OKTA-SSO on agreement 1004" in result.output
    assert {a: sandbox.additions(a) for a in (1003, 1004)} == before
    for agreement in (1001, 1002, 1005, 1006, 1007):
        assert _sorted(active(sandbox, agreement)) == _sorted(EXPECTED[agreement])


def test_inactive_catalog_product_errors_only_where_needed(sandbox, config_dir):
    world_edits.update_catalog_item(
        sandbox, "ZT-OKTA-LCM", inactiveFlag=True
    )  # only zt-0003 adds LCM
    result = run(config_dir, "plan", *AS_OF)
    assert result.exit_code == 1
    assert "catalog product 'ZT-OKTA-LCM' (SKU OKTA-LCM) is inactive" in result.output
    assert "Plan: 4 to add, 3 to update, 1 to remove across 6 of 7 customers" in result.output


def test_customer_option_touches_only_that_customer(sandbox, config_dir):
    others = {a: sandbox.additions(a) for a in EXPECTED if a != 1007}
    result = run(config_dir, "apply", "--yes", "--customer", "zt-0007", *AS_OF)
    assert result.exit_code == 0, result.output
    assert _sorted(active(sandbox, 1007)) == _sorted(EXPECTED[1007])
    assert {a: sandbox.additions(a) for a in others} == others
    assert sandbox.stats["GET zt-customer-usage"] == 1  # one per-customer call, not bulk
    assert sandbox.stats["GET zt-usage"] == 0


def test_unknown_customer_fails_before_any_request(sandbox, config_dir):
    result = run(config_dir, "plan", "--customer", "zt-nope")
    assert result.exit_code == 1
    assert "unknown customer 'zt-nope': not in the mappings" in result.output
    assert sandbox.stats.total == 0


def test_current_period_uses_its_window(sandbox, config_dir):
    cur = json.loads(
        run(config_dir, "plan", "--period", "current", "--format", "json", *AS_OF).stdout
    )
    last = json.loads(run(config_dir, "plan", "--format", "json", *AS_OF).stdout)
    assert cur["period"] == {
        "kind": "current",
        "start": "2026-11-16",
        "end": "2026-11-24",
        "as_of": "2026-11-24",
    }
    assert last["period"]["start"] == "2026-10-16" and last["period"]["end"] == "2026-11-15"
    schema = load_schema("plan.schema.json")
    jsonschema.validate(cur, schema)
    jsonschema.validate(last, schema)

    def quantities(p):
        return {(c["id"], ch["sku"]): ch["after"] for c in p["customers"] for ch in c["changes"]}

    assert quantities(cur) != quantities(last)  # joiners after Nov 15 only count in current
    usage = sandbox.usage(
        *(__import__("datetime").date.fromisoformat(d) for d in ("2026-11-16", "2026-11-24"))
    )
    assert quantities(cur)[("zt-0003", "OKTA-SSO")] == usage["zt-0003"]["OKTA-SSO"]


def test_saved_plan_applies_exactly_and_refuses_when_stale(sandbox, config_dir, tmp_path):
    plan_file = tmp_path / "plan.json"
    made = run(config_dir, "plan", "--out", str(plan_file), *AS_OF)
    assert made.exit_code == 0 and plan_file.exists()

    world_edits.set_addition_quantity(sandbox, 9001, 41)  # a clerk edits Acme's SSO after the plan
    edited = sandbox.additions(1001)
    stale = run(config_dir, "apply", str(plan_file))
    assert stale.exit_code == 1
    # 13.7: Acme's agreement is read just before its first write and skipped as stale;
    # the other customers are applied.
    assert (
        "zt-0001: stale: agreement 1001 addition #9001 (ZT-OKTA-SSO): quantity 40 → 41 since "
        "the plan was made; skipped, nothing written" in stale.output
    )
    assert sandbox.stats.writes == 10 and sandbox.additions(1001) == edited
    sandbox.stats.reset()

    # What the lists say about an agreement is read by every apply: a change refuses it all.
    run(config_dir, "plan", "--out", str(plan_file), *AS_OF)
    world_edits.update_agreement(sandbox, 1001, endDate="2027-06-30T00:00:00Z")
    listed = run(config_dir, "apply", str(plan_file))
    assert listed.exit_code == 1 and "stale plan: ConnectWise changed" in listed.output
    assert "  agreement 1001: end date none → 2027-06-30 since the plan was made\n" in listed.output
    assert sandbox.stats.writes == 0

    run(config_dir, "plan", "--out", str(plan_file), *AS_OF)
    settings = config_dir / "mappings" / "settings.yaml"
    settings.write_text(settings.read_text() + "\n# a comment changes the digest\n")
    changed = run(config_dir, "apply", str(plan_file))
    assert changed.exit_code == 1 and "the mappings changed since it was made" in changed.output
    assert sandbox.stats.writes == 0

    run(config_dir, "plan", "--out", str(plan_file), *AS_OF)
    fresh = run(config_dir, "apply", str(plan_file))
    assert fresh.exit_code == 0, fresh.output
    assert sandbox.stats.writes == 1  # Acme's SSO, skipped as stale the first time
    # the stale skip wrote (partial, recorded); the two refusals before any write, at a
    # terminal outside CI, are not in runs/ (issue 28)
    assert [r["outcome"] for r in _runs(config_dir)] == ["success", "partial"]
    assert "(not recorded in runs/: nothing was written" in changed.stderr


def test_unsafe_plan_exit_3_then_force(sandbox, config_dir):
    set_setting(config_dir, "min_existing", "1")
    set_setting(config_dir, "max_quantity_change_percent", "1")
    result = run(config_dir, "apply", "--yes", *AS_OF)
    assert result.exit_code == 3
    assert "unsafe plan refused" in result.output and sandbox.stats.writes == 0
    forced = run(config_dir, "apply", "--yes", "--force", *AS_OF)
    assert forced.exit_code == 0 and sandbox.stats.writes == 11


def test_deactivated_refuses_before_any_request(sandbox, config_dir):
    set_setting(config_dir, "enabled", "false")
    result = run(config_dir, "apply", "--yes", *AS_OF)
    assert result.exit_code == 1 and "integration is deactivated" in result.output
    assert sandbox.stats.total == 0
    assert not (config_dir / "runs").exists()


def test_no_tty_and_no_yes_refuses_before_reading_anything(sandbox, config_dir):
    """Issue 28: refused at once, as the JSON mode was: no API read, no plan printed."""
    result = run(config_dir, "apply", *AS_OF)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: apply without --yes needs a terminal to confirm on")
    assert "nothing was read or applied" in result.stderr and "or pass --yes" in result.stderr
    assert sandbox.stats.total == 0
    assert not (config_dir / "runs").exists()


def test_markdown_plan_for_pull_requests(sandbox, config_dir):
    out = run(config_dir, "plan", "--format", "markdown", *AS_OF).stdout
    assert out.startswith("<!-- reconcile:plan -->")
    assert "| ➕ add | 7 |" in out


def test_bad_as_of_is_one_line(sandbox, config_dir):
    result = run(config_dir, "plan", "--as-of", "24/11/2026")
    assert result.exit_code == 1
    assert (
        result.output.strip() == "error: --as-of: '24/11/2026' is not a date, expected YYYY-MM-DD"
    )


def test_identifiers_match_case_insensitively_like_connectwise(sandbox, config_dir):
    """A mapping spelling `acme` / `zt-okta-sso` must still find ACME's additions of
    ZT-OKTA-SSO: otherwise they look unmanaged and a duplicate would be added."""
    for name in ("skus.yaml", "customers.yaml"):
        path = config_dir / "mappings" / name
        text = path.read_text()
        text = text.replace("product: ZT-OKTA-SSO", "product: zt-okta-sso")
        text = text.replace("company: ACME", "company: acme")
        path.write_text(text)
    result = run(config_dir, "apply", "--yes", *AS_OF)
    assert result.exit_code == 0, result.output
    assert "update zt-okta-sso (OKTA-SSO) #9001 quantity 40 → 42" in result.output
    for agreement, want in EXPECTED.items():
        assert _sorted(active(sandbox, agreement)) == _sorted(want), agreement
    assert run(config_dir, "plan", *AS_OF, "--detailed-exitcode").exit_code == 0


def test_usage_errors_exit_1_never_2(config_dir):
    """2 means "changes present" under --detailed-exitcode: a typo must not look like it."""
    bad_option = run(config_dir, "plan", "--period", "bogus", "--detailed-exitcode")
    assert bad_option.exit_code == 1 and "Invalid value for '--period'" in bad_option.output
    assert invoke("no-such-command").exit_code == 1


def test_saved_plan_cannot_be_narrowed_at_apply_time(sandbox, config_dir, tmp_path):
    plan_file = tmp_path / "plan.json"
    run(config_dir, "plan", "--out", str(plan_file), *AS_OF)
    result = run(config_dir, "apply", str(plan_file), "--customer", "zt-0001")
    assert result.exit_code == 1
    assert "a saved plan is applied exactly as planned" in result.output
    assert sandbox.stats.writes == 0


def _runs(config_dir: Path) -> list[dict]:
    from reconciler.records import activity

    records = [
        activity.load_run(config_dir, r.run_id).to_json() for r in activity.list_runs(config_dir)
    ]
    for record in records:  # the program no longer checks its own records; the tests do
        jsonschema.validate(record, load_schema("run.schema.json"))
    return records


def test_failed_attempts_in_ci_are_recorded_as_failed_runs(sandbox, config_dir, monkeypatch):
    """Unattended (CI, or a scheduled run) a failure before any write is a sync outcome:
    recorded and e-mailed. At a terminal it is only shown (the next test)."""
    monkeypatch.setenv("CI", "true")
    set_setting(config_dir, "min_existing", "1")
    set_setting(config_dir, "max_quantity_change_percent", "1")
    assert run(config_dir, "apply", "--yes", *AS_OF).exit_code == 3
    (unsafe,) = _runs(config_dir)
    assert unsafe["outcome"] == "failed" and "unsafe plan refused" in unsafe["error"]
    assert unsafe["emails"][0]["detail"] == "not sent: SMTP not configured"

    wrong = sandbox.cw_url.replace("v4_6_release", "v2019_1")  # a wrong codebase: 404
    monkeypatch.setenv("CW_API_URL", wrong)
    down = run(config_dir, "apply", "--yes", "--force", *AS_OF)
    assert down.exit_code == 1 and "check credentials and API URL" in down.output
    latest = _runs(config_dir)[0]
    assert latest["outcome"] == "failed" and "check credentials and API URL" in latest["error"]
    assert sandbox.stats.writes == 0


def test_failed_local_attempts_stay_out_of_runs(sandbox, config_dir, monkeypatch):
    """Issue 28: a person trying things on a laptop (a wrong key, an unsafe plan) does not
    fill the committed sync log with runs that changed nothing; the error says so."""
    set_setting(config_dir, "min_existing", "1")
    set_setting(config_dir, "max_quantity_change_percent", "1")
    unsafe = run(config_dir, "apply", "--yes", *AS_OF)
    assert unsafe.exit_code == 3 and "unsafe plan refused" in unsafe.stderr
    assert "(not recorded in runs/: nothing was written" in unsafe.stderr
    monkeypatch.setenv("CW_PRIVATE_KEY", "wrong")
    wrong = run(config_dir, "apply", "--yes", "--force", *AS_OF)
    assert wrong.exit_code == 1 and "(not recorded in runs/" in wrong.stderr
    assert not (config_dir / "runs").exists() and sandbox.stats.writes == 0
    # the same refusal on a schedule is recorded, as are all of them in CI
    scheduled = run(config_dir, "apply", "--yes", "--trigger", "scheduled", *AS_OF)
    assert scheduled.exit_code == 1 and "not recorded" not in scheduled.stderr
    assert [r["outcome"] for r in _runs(config_dir)] == ["failed"]


def test_declined_confirmation_records_nothing(sandbox, config_dir):
    assert run(config_dir, "apply", *AS_OF).exit_code == 1
    assert _runs(config_dir) == []


def test_an_addition_that_has_not_started_is_zeroed_not_cancelled(sandbox, config_dir):
    """Globex's additions start at its billStartDate 2026-12-01; ConnectWise refuses a
    cancelledDate before that, so a removal on 2026-11-25 sets quantity 0 instead."""
    assert run(config_dir, "apply", "--yes", *AS_OF).exit_code == 0
    world_edits.set_users(sandbox, "zt-0006", "OKTA-SSO", 0)
    later = ["--as-of", "2026-11-25", "--customer", "zt-0006"]
    shown = run(config_dir, "plan", *later)
    assert "(set quantity 0: it starts 2026-12-01, after today)" in shown.output
    result = run(config_dir, "apply", "--yes", *later)
    assert result.exit_code == 0, result.output
    (sso,) = [a for a in sandbox.additions(1006) if a["product"]["identifier"] == "ZT-OKTA-SSO"]
    assert (sso["quantity"], sso["cancelledDate"]) == (0, None)
    assert run(config_dir, "plan", *later, "--detailed-exitcode").exit_code == 0


def test_customer_option_on_a_shared_agreement_plans_every_share(sandbox, config_dir):
    """zt-0007 and a new zt-0008 share Initech's agreement: `--customer zt-0007` must not
    set the agreement to zt-0007's users alone."""
    customers = config_dir / "mappings" / "customers.yaml"
    text = customers.read_text().replace(
        "agreement: Initech Identity", "agreement: Initech Identity\n  shared_agreement: true"
    )
    text += (
        "\n- id: zt-0008\n  name: Initech Labs\n  company: INITECH\n"
        "  agreement: 1007\n  shared_agreement: true\n"
    )
    customers.write_text(text)
    sandbox.zt_customers["zt-0008"] = {"id": "zt-0008", "name": "Initech Labs", "status": "active"}
    world_edits.set_users(sandbox, "zt-0008", "OKTA-WF", 3)
    result = run(config_dir, "apply", "--yes", "--customer", "zt-0007", *AS_OF)
    assert result.exit_code == 0, result.output
    assert "update ZT-OKTA-WF (OKTA-WF) #9010 quantity 3 → 7" in result.output  # 4 + 3
    assert _sorted(active(sandbox, 1007)) == {"ZT-OKTA-SSO": [4], "ZT-OKTA-WF": [7]}


def test_customer_unknown_to_zerotek_warns_and_the_others_proceed(sandbox, config_dir):
    customers = config_dir / "mappings" / "customers.yaml"
    customers.write_text(
        customers.read_text()
        + "\n- id: zt-0404\n  name: Typo Inc\n  company: SMITHSONS\n  agreement: 1022\n"
    )
    result = run(config_dir, "plan", "--customer", "zt-0404", "--customer", "zt-0001", *AS_OF)
    assert result.exit_code == 0, result.output
    assert (
        "ZeroTek does not know customer 'zt-0404': left untouched (check the id)" in result.output
    )
    assert "update ZT-OKTA-SSO (OKTA-SSO) #9001 quantity 40 → 42" in result.output


def test_per_customer_errors_also_go_to_stderr(sandbox, config_dir):
    world_edits.update_agreement(sandbox, 1003, agreementStatus="Cancelled", cancelledFlag=True)
    # click < 8.2 mixes stderr into output unless told not to; newer runners keep it apart
    separate = "mix_stderr" in inspect.signature(CliRunner.__init__).parameters
    runner = CliRunner(mix_stderr=False) if separate else CliRunner()
    base = ["--config-dir", str(config_dir)]
    for command in (["plan", "--format", "json"], ["apply", "--yes"]):
        result = checked(runner.invoke(app, [*base, *command, *AS_OF]))
        assert result.exit_code == 1
        assert (
            "error: zt-0003: agreement 1003 ('Big Quote - Identity') is cancelled" in result.stderr
        )
    plan_json = checked(runner.invoke(app, [*base, "plan", "--format", "json", *AS_OF]))
    assert json.loads(plan_json.stdout)["summary"]["customers_with_errors"] == 1


def test_index_starts_with_a_chart_of_billed_seats_and_revenue(sandbox, config_dir):
    assert run(config_dir, "apply", "--yes", *AS_OF).exit_code == 0
    # A month later Contoso's agreement has ended: that customer errs, the others sync.
    assert run(config_dir, "apply", "--yes", "--as-of", "2026-12-20").exit_code == 1
    index = (config_dir / "runs" / "INDEX.md").read_text()
    assert index.startswith("# Activity\n\n```mermaid\nxychart-beta\n")
    seats, revenue = index.split("```mermaid\n")[1:3]
    # Before: 189 managed seats, 707.50/month (40x4 + 42x3 + 12x4 + 7x2 + 25x4 + 60x4 + 3x6.5);
    # the first run adds 77 licences (+288.50) and cancels 7 (-14.00): 259 and 982.00.
    assert 'x-axis ["15 Nov 2026", "15 Dec 2026"]' in seats
    assert "bar [259, " in seats
    assert "line [982.00, " in revenue and "(USD)" in revenue
    record = json.loads(next((config_dir / "runs" / "2026").glob("*/*.json")).read_text())
    jsonschema.validate(record, load_schema("run"))


def test_run_records_name_the_currency_and_keep_exact_money(sandbox, config_dir):
    """DESIGN 12.2: billing.currency on every money figure, the run log included; figures
    exact with at least two decimals (6.5 is recorded as 6.50, never 6.5 or 6.499...)."""
    settings = config_dir / "mappings" / "settings.yaml"
    settings.write_text(
        settings.read_text().replace("billing:\n", "billing:\n  currency: EUR\n", 1)
    )
    assert run(config_dir, "apply", "--yes", *AS_OF).exit_code == 0
    (record,) = _runs(config_dir)
    assert record["currency"] == "EUR"
    changes = [ch for c in record["customers"] for ch in c["changes"]]
    assert changes and all(
        len(ch[k].partition(".")[2]) >= 2 for ch in changes for k in ("unit_price", "revenue_delta")
    )
    assert "6.50" in {ch["unit_price"] for ch in changes}
    assert record["totals"]["revenue_delta"] == "274.50"
    from reconciler.records import activity

    (summary,) = activity.list_runs(config_dir)
    md = (config_dir / "runs" / summary.md_link).read_text()
    assert "+274.50 EUR per month" in md and "Unit price (EUR)" in md
    detail = run(config_dir, "activity", summary.run_id).stdout
    assert "+274.50 EUR per month" in detail and "= +13.00 EUR" in detail
