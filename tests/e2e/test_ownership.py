"""Ownership (DESIGN 13.1), replayed from issue 24 against the sandbox: lines left behind by
a mapping edit kept billing while `plan` said "No changes". The ledger state/managed.json
written by apply makes them orphans: removed, labelled, counted, reported."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import jsonschema
from conftest import set_setting
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.config.resources import load_schema
from reconciler.sandbox import Sandbox
from reconciler.sandbox.records import agreement_record

AS_OF = ["--as-of", "2026-11-24"]
APPLY = ["apply", "--yes", "--no-email", *AS_OF]


def run(config_dir: Path, *args: str):
    result = CliRunner().invoke(app, ["--config-dir", str(config_dir), *args])
    assert "Traceback" not in result.output, result.output
    return result


def live(sb: Sandbox, agreement: int) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for a in sb.additions(agreement):
        cancelled = a.get("cancelledDate")
        if (cancelled is None or cancelled[:10] > "2026-11-24") and a["quantity"]:
            out.setdefault(a["product"]["identifier"], []).append(int(a["quantity"]))
    return out


def ledger(config_dir: Path) -> list[dict]:
    return json.loads((config_dir / "state" / "managed.json").read_text(encoding="utf-8"))


def converge(config_dir: Path) -> None:
    first = run(config_dir, *APPLY)
    assert first.exit_code == 0, first.output
    assert run(config_dir, "plan", "--detailed-exitcode", *AS_OF).exit_code == 0


def drop_sku(config_dir: Path, sku: str) -> None:
    skus = config_dir / "mappings" / "skus.yaml"
    text, n = re.subn(rf"\n- sku: {sku}\n  product: [^\n]*\n", "\n", skus.read_text())
    assert n == 1
    skus.write_text(text)


def orphans(plan: dict) -> list[tuple[str, str, int, int]]:
    return [
        (c["id"], ch["product"], ch["agreement_id"], ch["before"])
        for c in plan["customers"]
        for ch in c["changes"]
        if ch.get("cause") == "unmapped"
    ]


def test_first_apply_writes_the_ledger_and_plan_says_once_without_it(sandbox, config_dir):
    before = run(config_dir, "plan", *AS_OF)
    assert "state/managed.json does not exist yet" in before.stderr
    converge(config_dir)
    lines = ledger(config_dir)
    assert {(x["agreement_id"], x["product"], x["customer_id"]) for x in lines} >= {
        (1001, "ZT-OKTA-SSO", "zt-0001"),
        (1001, "ZT-OKTA-MFA", "zt-0001"),
        (1004, "ZT-OKTA-SSO", "zt-0004"),
    }
    assert all(x["product"] != "MSP-HELPDESK" for x in lines)  # never someone else's
    assert run(config_dir, "validate").exit_code == 0
    schema = json.loads(run(config_dir, "schema", "managed").stdout)
    assert schema["title"] == "state/managed.json"
    after = run(config_dir, "plan", *AS_OF)
    assert "does not exist yet" not in after.stderr


def test_a_removed_sku_mapping_cancels_its_lines_with_the_reason(sandbox, config_dir):
    # Found: OKTA-MFA removed from skus.yaml, its lines billed on; plan said "No changes".
    converge(config_dir)
    drop_sku(config_dir, "OKTA-MFA")
    plan = json.loads(run(config_dir, "plan", "--format", "json", *AS_OF).stdout)
    found = orphans(plan)
    assert ("zt-0001", "ZT-OKTA-MFA", 1001, 42) in found
    text = run(config_dir, "plan", *AS_OF).stdout
    assert "no longer mapped: was SKU OKTA-MFA of customer zt-0001" in text
    report = json.loads(run(config_dir, "report", "--format", "json", *AS_OF).stdout)
    over = [
        r for r in report["rows"] if r["kind"] == "over-billed" and r["product"] == "ZT-OKTA-MFA"
    ]
    assert {r["customer_id"] for r in over} >= {"zt-0001"} and over[0]["monthly_amount"] != "0.00"
    # this apply's record is the one it adds: sorting names puts `<second>-manual-2.json`
    # before `<second>-manual.json`, so "the last" is the converge run within one second
    before = set((config_dir / "runs").glob("*/*/*.json"))
    applied = run(config_dir, *APPLY, "--force")  # 4 of ~14 lines: above 30%
    assert applied.exit_code == 0, applied.output
    assert "ZT-OKTA-MFA" not in live(sandbox, 1001)
    assert all(x["product"] != "ZT-OKTA-MFA" for x in ledger(config_dir))
    (path,) = set((config_dir / "runs").glob("*/*/*.json")) - before
    record = json.loads(path.read_text())
    whys = {ch["why"] for c in record["customers"] for ch in c["changes"] if ch["ok"] is True}
    assert "no longer mapped: was SKU OKTA-MFA of customer zt-0001" in whys
    assert run(config_dir, "plan", "--detailed-exitcode", *AS_OF).exit_code == 0


def test_orphans_count_in_the_safety_thresholds(sandbox, config_dir):
    converge(config_dir)
    drop_sku(config_dir, "OKTA-SSO")  # the line of nearly every customer
    result = run(config_dir, *APPLY)
    assert result.exit_code == 3, result.output
    assert "max_removal_percent" in result.output
    assert live(sandbox, 1001)["ZT-OKTA-SSO"] == [42]


def test_a_customer_moved_to_another_agreement_stops_paying_twice(sandbox, config_dir):
    # Found: Contoso moved to a new agreement paid its lines on both.
    converge(config_dir)
    move_contoso(sandbox, config_dir)
    plan = json.loads(run(config_dir, "plan", "--format", "json", *AS_OF).stdout)
    assert ("zt-0004", "ZT-OKTA-SSO", 1004, 27) in orphans(plan)
    applied = run(config_dir, *APPLY)
    assert applied.exit_code == 0, applied.output
    assert live(sandbox, 1004) == {} and live(sandbox, 1030) == {"ZT-OKTA-SSO": [27]}
    assert run(config_dir, "plan", "--detailed-exitcode", *AS_OF).exit_code == 0


def move_contoso(sandbox: Sandbox, config_dir: Path) -> None:
    """Contoso (zt-0004) moved from agreement 1004 'Contoso Identity' to a new one, 1030."""
    with sandbox.lock:  # a new agreement created in ConnectWise
        contoso = next(c for c in sandbox.companies.values() if c["identifier"] == "CONTOSO")
        sandbox.agreements[1030] = agreement_record(
            1030, "Contoso 2027", contoso, "Active", dt.date(2026, 1, 1)
        )
    customers = config_dir / "mappings" / "customers.yaml"
    customers.write_text(customers.read_text().replace("agreement: 1004", "agreement: 1030"))


def test_a_moved_customers_old_line_is_shown_under_its_old_agreement(
    sandbox, config_dir, smtp_server, monkeypatch
):
    # Found: the removal on 1004 was listed under "agreement 1030" (plan, pull-request
    # comment, run record, activity, e-mail): a reviewer read it as the new agreement's.
    converge(config_dir)
    for name, value in smtp_server.env().items():
        monkeypatch.setenv(name, value)
    move_contoso(sandbox, config_dir)
    new = "zt-0004 Contoso Health → CONTOSO, agreement 1030 'Contoso 2027'"
    old = "zt-0004 Contoso Health, former agreement 1004 'Contoso Identity'"
    text = run(config_dir, "plan", *AS_OF).stdout
    under_new = text.split(new)[1].split("\n\n")[0]
    under_old = text.split(old)[1].split("\n\n")[0]
    assert "+ add ZT-OKTA-SSO" in under_new and "remove" not in under_new
    assert "- remove ZT-OKTA-SSO (OKTA-SSO) #9007 quantity 27" in under_old
    md = run(config_dir, "plan", "--format", "markdown", *AS_OF).stdout
    contoso = md.split("<b>zt-0004</b>")[1].split("</details>")[0]
    own, moved = contoso.split("Former agreement 1004 Contoso Identity")
    assert "agreement 1030 Contoso 2027" in own and "| add |" in own and "remove" not in own
    assert "| remove — no longer mapped" in moved and "| add |" not in moved
    saved = config_dir / "plan.json"
    assert run(config_dir, "plan", "--out", str(saved), *AS_OF).exit_code == 0
    again = run(config_dir, "show", str(saved)).stdout  # a plan file has the id, not the name
    assert "- remove" in again.split(", former agreement 1004\n")[1].split("\n\n")[0]
    before = set((config_dir / "runs").glob("*/*/*.json"))
    applied = run(config_dir, *[a for a in APPLY if a != "--no-email"])
    assert applied.exit_code == 0, applied.output
    (path,) = set((config_dir / "runs").glob("*/*/*.json")) - before
    (mail,) = smtp_server.sink.received
    removed = mail.text.replace("\r\n", "\n").split("\n\nRemoved:\n")[1].split("\n\n")[0]
    assert "former Contoso Identity (#1004)" in removed and "#1030" not in removed, removed
    assert "CONTOSO" not in removed  # the former agreement is not put beside a company
    record = json.loads(path.read_text())
    jsonschema.validate(record, load_schema("run"))
    (changes,) = [c["changes"] for c in record["customers"] if c["id"] == "zt-0004"]
    assert [ch["agreement"] for ch in changes] == [
        None,
        {"id": 1004, "name": "Contoso Identity", "end_date": None},
    ]
    rows = path.with_suffix(".md").read_text().splitlines()
    (removal,) = [r for r in rows if "| remove" in r]
    assert removal.startswith("| Contoso Health | Contoso Identity \\(\\#\u200b1004\\) |"), removal
    shown = run(config_dir, "activity", path.stem).stdout
    moved_text = shown.split(", former agreement Contoso Identity (#1004)")[1].split("\n\n")[0]
    assert "remove OKTA-SSO [ZT-OKTA-SSO] 27 → 0" in moved_text
    assert "remove" not in shown.split("agreement Contoso 2027 (#1030)")[1].split("\n\n")[0]
    assert live(sandbox, 1004) == {} and live(sandbox, 1030) == {"ZT-OKTA-SSO": [27]}


def test_a_removed_customer_mapping_and_customer_option(sandbox, config_dir):
    converge(config_dir)
    customers = config_dir / "mappings" / "customers.yaml"
    text, n = re.subn(r"\n- id: zt-0004\n(  [^\n]*\n)+", "\n", customers.read_text())
    assert n == 1
    customers.write_text(text)
    plan = json.loads(run(config_dir, "plan", "--format", "json", *AS_OF).stdout)
    assert orphans(plan) == [("zt-0004", "ZT-OKTA-SSO", 1004, 27)]
    # 6 mapped customers and the removed one's orphans: counted like the JSON counts them,
    # and said (found: "across 1 of 7 customers" with 6 in customers.yaml)
    assert (plan["summary"]["customers"], plan["summary"]["customers_with_changes"]) == (7, 1)
    saved = config_dir / "plan.json"
    text = run(config_dir, "plan", "--out", str(saved), *AS_OF).stdout
    line = "1 to remove across 1 of 7 customers (1 no longer mapped); revenue -108.00 USD/month"
    assert line in text and line in run(config_dir, "show", str(saved)).stdout
    other = json.loads(
        run(config_dir, "plan", "--format", "json", "--customer", "zt-0001", *AS_OF).stdout
    )
    assert orphans(other) == []  # not zt-0001's
    applied = run(config_dir, *APPLY)
    assert applied.exit_code == 0, applied.output
    assert live(sandbox, 1004) == {}


def test_customer_option_selects_a_removed_customers_orphans(sandbox, config_dir, tmp_path):
    # Found: `--customer zt-0004` after its mapping was removed said "unknown customer",
    # though DESIGN 13.1 says `--customer C` includes C's orphans (known from the ledger).
    converge(config_dir)
    base = tmp_path / "base"
    shutil.copytree(config_dir, base)
    customers = config_dir / "mappings" / "customers.yaml"
    text, n = re.subn(r"\n- id: zt-0004\n(  [^\n]*\n)+", "\n", customers.read_text())
    assert n == 1
    customers.write_text(text)
    result = run(config_dir, "plan", "--format", "json", "--customer", "zt-0004", *AS_OF)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert orphans(plan) == [("zt-0004", "ZT-OKTA-SSO", 1004, 27)]
    assert plan["safe"] is True and plan["selection"] == ["zt-0004"]  # no wipe guard
    pr = run(config_dir, "plan", "--format", "json", "--customer", "zt-0004",
             "--baseline", str(base), *AS_OF)  # fmt: skip
    assert pr.exit_code == 0, pr.output
    assert orphans(json.loads(pr.stdout)) == [("zt-0004", "ZT-OKTA-SSO", 1004, 27)]
    # an id neither mapped nor in the ledger stays an error before any request, with a hint
    requests = sandbox.stats.total
    typo = run(config_dir, "plan", "--customer", "zt-004", *AS_OF)
    assert typo.exit_code == 1 and sandbox.stats.total == requests
    assert "unknown customer 'zt-004': not in the mappings" in typo.output
    assert "did you mean 'zt-0004'?" in typo.output  # the ledger's ids are candidates
    writes = sandbox.stats.writes
    applied = run(config_dir, *APPLY, "--customer", "zt-0004")
    assert applied.exit_code == 0, applied.output
    assert live(sandbox, 1004) == {} and sandbox.stats.writes == writes + 1
    assert all(x["customer_id"] != "zt-0004" for x in ledger(config_dir))
    gone = run(config_dir, "plan", "--customer", "zt-0004", *AS_OF)  # nothing left of it
    assert gone.exit_code == 1 and "unknown customer 'zt-0004'" in gone.output


def test_orphans_keep_warns_with_their_money(sandbox, config_dir):
    converge(config_dir)
    set_setting(config_dir, "orphans", "keep")
    drop_sku(config_dir, "OKTA-LCM")
    result = run(config_dir, "plan", "--format", "json", *AS_OF)
    plan = json.loads(result.stdout)
    assert orphans(plan) == []
    (warning,) = [w for w in plan["warnings"] if "no longer mapped" in w]
    assert "billing.orphans: keep" in warning and "30.00 USD/month" in warning  # 6 x 5.00
    assert live(sandbox, 1003)["ZT-OKTA-LCM"] == [6]


def test_a_broken_ledger_is_a_validate_error_with_its_line(sandbox, config_dir):
    converge(config_dir)
    path = config_dir / "state" / "managed.json"
    path.write_text(path.read_text().replace('"addition_id": 9001', '"addition_id": "x"', 1))
    result = run(config_dir, "validate")
    assert result.exit_code == 1
    assert re.search(r"state/managed.json:\d+:\d+: addition_id", result.output), result.output
    assert "Traceback" not in result.output


def test_an_orphan_is_under_this_pull_request_with_baseline(sandbox, config_dir, tmp_path):
    converge(config_dir)
    base = tmp_path / "base"
    shutil.copytree(config_dir, base)
    drop_sku(config_dir, "OKTA-LCM")
    md = run(config_dir, "plan", "--format", "markdown", "--baseline", str(base), *AS_OF).stdout
    this_pr = md.split("#### This pull request")[1].split("#### Drift")[0]
    assert "no longer mapped\\: was SKU OKTA-LCM of customer zt-0003" in this_pr
    assert "-30.00 USD" in this_pr
    data = json.loads(
        run(config_dir, "plan", "--format", "json", "--baseline", str(base), *AS_OF).stdout
    )
    causes = [ch["cause"] for c in data["customers"] for ch in c["changes"]]
    assert causes == ["unmapped"]


def report_rows(config_dir: Path, customer: str, sku: str) -> tuple[dict, list[dict]]:
    result = run(config_dir, "report", "--format", "json", *AS_OF)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    jsonschema.validate(report, load_schema("report"))
    rows = [r for r in report["rows"] if (r["customer_id"], r["sku"]) == (customer, sku)]
    return report, rows


def test_report_shows_a_removed_customers_line_once_as_an_orphan(sandbox, config_dir):
    # Found: the line was over-billed (ZeroTek 0) AND the same usage an unmapped customer's
    # row billed 0: two rows for one line, neither true.
    converge(config_dir)
    customers = config_dir / "mappings" / "customers.yaml"
    text, n = re.subn(r"\n- id: zt-0004\n(  [^\n]*\n)+", "\n", customers.read_text())
    assert n == 1
    customers.write_text(text)
    report, rows = report_rows(config_dir, "zt-0004", "OKTA-SSO")
    (row,) = rows
    assert (row["kind"], row["agreement_id"], row["customer_name"]) == (
        "over-billed",
        1004,
        "Contoso Health",
    )
    assert (row["zerotek_users"], row["billed_quantity"], row["difference"]) == (27, 27, 27)
    assert row["monthly_amount"] == "108.00"  # 27 x 4.00, what the next sync takes away
    assert row["note"] == (
        "no longer mapped: was SKU OKTA-SSO of customer zt-0004; the next sync removes it"
    )
    assert report["totals"]["unmapped-customer"]["quantity"] == 5  # zt-0099 alone
    # mapped customers' seats vs their users: zt-0004's line and users are in neither
    assert (report["billed_quantity"], report["zerotek_users"]) == (232, 232)


def test_report_shows_a_removed_skus_line_once_and_kept_ones_as_kept(sandbox, config_dir):
    converge(config_dir)
    drop_sku(config_dir, "OKTA-LCM")
    report, rows = report_rows(config_dir, "zt-0003", "OKTA-LCM")
    (row,) = rows  # not also an unmapped SKU "billed 0"
    assert (row["kind"], row["zerotek_users"], row["billed_quantity"]) == ("over-billed", 6, 6)
    assert (row["difference"], row["monthly_amount"]) == (6, "30.00")
    assert row["note"].endswith("; the next sync removes it")
    assert report["totals"]["unmapped-sku"]["quantity"] == 3  # OKTA-PAM alone
    text = run(config_dir, "report", *AS_OF).stdout
    assert "ZeroTek 6, billed 6: 6 x 5.00 USD = 30.00 USD/month" in text
    assert "no longer mapped: was SKU OKTA-LCM of customer zt-0003" in text
    # billing.orphans: keep keeps the line billing: still over-billed money (13.1), said so
    set_setting(config_dir, "orphans", "keep")
    kept, rows = report_rows(config_dir, "zt-0003", "OKTA-LCM")
    (row,) = rows
    assert (row["kind"], row["monthly_amount"]) == ("over-billed", "30.00")
    assert row["note"] == (
        "no longer mapped: was SKU OKTA-LCM of customer zt-0003; kept (billing.orphans: keep)"
    )
    assert kept["totals"] == report["totals"]


def test_discover_remembers_a_removed_mapping_from_the_ledger(sandbox, config_dir):
    converge(config_dir)
    drop_sku(config_dir, "OKTA-LCM")
    customers = config_dir / "mappings" / "customers.yaml"
    text, n = re.subn(r"\n- id: zt-0004\n(  [^\n]*\n)+", "\n", customers.read_text())
    assert n == 1
    customers.write_text(text)
    found = json.loads(run(config_dir, "discover", "--format", "json", *AS_OF).stdout)
    (contoso,) = [c for c in found["customers"] if c["id"] == "zt-0004"]
    assert contoso["confidence"] == 0.99 and contoso["agreement"]["id"] == 1004
    assert "state/managed.json" in contoso["reason"]
    (lcm,) = [s for s in found["skus"] if s["sku"] == "OKTA-LCM"]
    assert lcm["product"]["identifier"] == "ZT-OKTA-LCM" and "state/managed.json" in lcm["reason"]


def test_a_sku_pointed_at_another_product_leaves_no_line_behind(sandbox, config_dir):
    # Found: OKTA-LCM repointed from ZT-OKTA-LCM: the new product was added and the old
    # line billed on beside it.
    converge(config_dir)
    skus = config_dir / "mappings" / "skus.yaml"
    text, n = re.subn(
        r"(- sku: OKTA-LCM\n  product: )ZT-OKTA-LCM", r"\1MSP-BACKUP", skus.read_text()
    )
    assert n == 1
    skus.write_text(text)
    plan = json.loads(run(config_dir, "plan", "--format", "json", *AS_OF).stdout)
    assert orphans(plan) == [("zt-0003", "ZT-OKTA-LCM", 1003, 6)]
    applied = run(config_dir, *APPLY)
    assert applied.exit_code == 0, applied.output
    assert live(sandbox, 1003) == {"ZT-OKTA-SSO": [18], "ZT-OKTA-MFA": [18], "MSP-BACKUP": [6]}
    assert run(config_dir, "plan", "--detailed-exitcode", *AS_OF).exit_code == 0
