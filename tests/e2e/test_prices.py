"""Prices as desired state (DESIGN 13.4), end to end: the CLI against the sandbox.

The default sandbox bills ZT-OKTA-SSO at the catalog's 4.00 on four lines: #9001 (Acme,
40 -> 42 users), #9005 (O'Brien, 12), #9007 (Contoso, 25 -> 27) and #9008 (Northwind, 60).
These tests raise OKTA-SSO's unit_price to 4.25, as an annual increase would.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import world_edits
from clirun import run
from conftest import set_setting

from reconciler.sandbox import Sandbox

AS_OF = ["--as-of", "2026-11-24"]
SSO_LINES = {9001: 42, 9005: 12, 9007: 27, 9008: 60}  # quantities after the sync


def raise_sso(config_dir: Path, price: str = "4.25") -> None:
    path = config_dir / "mappings" / "skus.yaml"
    text, n = re.subn(
        r"(  product: ZT-OKTA-SSO)[^\n]*", rf"\1\n  unit_price: {price}", path.read_text()
    )
    assert n == 1
    path.write_text(text)


def give_price(config_dir: Path, customer: str, sku: str, price: str) -> None:
    """Add `prices: {sku: price}` to a customer of the example customers.yaml."""
    give_prices(config_dir, customer, {sku: price})


def give_prices(config_dir: Path, customer: str, prices: dict[str, str]) -> None:
    """Add `prices:` to a customer of the example customers.yaml."""
    path = config_dir / "mappings" / "customers.yaml"
    block = "  prices:\n" + "".join(f"    {sku}: {price}\n" for sku, price in prices.items())
    text, n = re.subn(
        rf"(- id: {customer}\n(?:  [^\n]*\n)*)", lambda m: m.group(1) + block, path.read_text()
    )
    assert n == 1
    path.write_text(text)


def sso_prices(sb: Sandbox) -> dict[int, tuple[int, float]]:
    """The live SSO lines: addition id -> (quantity, unitPrice)."""
    return {
        a["id"]: (int(a["quantity"]), a["unitPrice"])
        for a in sb.all_additions()
        if a["product"]["identifier"] == "ZT-OKTA-SSO" and a["cancelledDate"] is None
    }


def patches_of(sb: Sandbox, addition_id: int) -> list[list[dict[str, object]]]:
    return [
        json.loads(body)
        for method, path, body in sb.write_requests
        if method == "PATCH" and path.endswith(f"/additions/{addition_id}")
    ]


def test_reprice_true_brings_every_line_to_its_price_in_one_patch_each(sandbox, config_dir):
    raise_sso(config_dir)
    set_setting(config_dir, "reprice", "true")
    plan = run(config_dir, "plan", *AS_OF)
    assert plan.exit_code == 0, plan.output
    assert (
        "  ~ update ZT-OKTA-SSO (OKTA-SSO) #9005 price 4.00 → 4.25  [+3.00 USD/month]"
        in plan.output.splitlines()
    )
    # quantity and price of one line together, on one line of the plan
    assert "#9001 quantity 40 → 42, price 4.00 → 4.25  [+18.50 USD/month]" in plan.output
    assert "Plan: 7 to add, 5 to update, 1 to remove" in plan.output
    assert sandbox.stats.writes == 0

    applied = run(config_dir, "apply", "--yes", *AS_OF)
    assert applied.exit_code == 0, applied.output
    prices = sso_prices(sandbox)
    assert {i: prices[i] for i in SSO_LINES} == {i: (q, 4.25) for i, q in SSO_LINES.items()}
    assert {price for _, price in prices.values()} == {4.25}  # the new lines too
    # one PATCH carries both the quantity and the price: never two writes, never a repeat
    assert patches_of(sandbox, 9001) == [
        [
            {"op": "replace", "path": "quantity", "value": 42},
            {"op": "replace", "path": "unitPrice", "value": 4.25},
        ]
    ]
    assert patches_of(sandbox, 9005) == [[{"op": "replace", "path": "unitPrice", "value": 4.25}]]
    assert "update ZT-OKTA-SSO 12 → 12, price 4.00 → 4.25: ok" in applied.output

    (record_path,) = (config_dir / "runs").glob("*/*/*.json")
    record = json.loads(record_path.read_text())
    changes = {
        ch["sku"] + str(ch["before"]): ch for c in record["customers"] for ch in c["changes"]
    }
    assert changes["OKTA-SSO12"]["price_change"] == {"before": "4.00", "after": "4.25"}
    assert changes["OKTA-SSO12"]["ok"] is True and changes["OKTA-SSO12"]["revenue_delta"] == "3.00"
    assert record["totals"]["updates"] == 5
    md = record_path.with_suffix(".md").read_text()
    assert "4.00 → 4.25" in md

    again = run(config_dir, "plan", *AS_OF, "--detailed-exitcode")
    assert (
        again.exit_code == 0
        and "No changes." in again.output
        and "warning: OKTA-SSO" not in again.output
    )


def test_reprice_false_warns_once_per_sku_and_changes_no_price(sandbox, config_dir):
    raise_sso(config_dir)
    plan = run(config_dir, "plan", *AS_OF)
    assert plan.exit_code == 0, plan.output
    warnings = [line for line in plan.output.splitlines() if "bill another price" in line]
    assert warnings == [
        "? warning: OKTA-SSO: 4 lines of ZT-OKTA-SSO bill another price than mapped "
        "(4.25 USD); repricing would change revenue by +35.25 USD/month. Left as they are: "
        "set billing.reprice: true to update them"
    ]  # 0.25 x (42 + 12 + 27 + 60)
    assert "price 4.00" not in plan.output
    assert "#9001 quantity 40 → 42  [+8.00 USD/month @ 4.00 USD]" in plan.output

    applied = run(config_dir, "apply", "--yes", *AS_OF)
    assert applied.exit_code == 0, applied.output
    prices = sso_prices(sandbox)
    assert {i: prices[i] for i in SSO_LINES} == {i: (q, 4.0) for i, q in SSO_LINES.items()}
    new = {i: p for i, p in prices.items() if i not in SSO_LINES}
    assert new and all(price == 4.25 for _, price in new.values())  # new lines: the new price
    bodies = [b for _, _, b in sandbox.write_requests if b"unitPrice" in b and b"op" in b]
    assert bodies == []


def test_a_customer_keeps_its_own_price(sandbox, config_dir):
    raise_sso(config_dir)
    set_setting(config_dir, "reprice", "true")
    give_price(config_dir, "zt-0002", "OKTA-SSO", "3.80")  # negotiated: stays below 4.00
    give_price(config_dir, "zt-0003", "OKTA-SSO", "3.90")  # new customer, new line
    assert run(config_dir, "validate").exit_code == 0
    plan = run(config_dir, "plan", *AS_OF)
    assert "#9005 price 4.00 → 3.80  [-2.40 USD/month]" in plan.output
    assert (
        "add ZT-OKTA-SSO (OKTA-SSO) quantity 18, effective 2026-11-24  "
        "[+70.20 USD/month @ 3.90 USD]" in plan.output
    )
    assert run(config_dir, "apply", "--yes", *AS_OF).exit_code == 0
    prices = sso_prices(sandbox)
    assert prices[9005] == (12, 3.8) and prices[9001] == (42, 4.25)
    (added,) = [a for a in sandbox.additions(1003) if a["product"]["identifier"] == "ZT-OKTA-SSO"]
    assert added["unitPrice"] == 3.9
    assert run(config_dir, "plan", *AS_OF, "--detailed-exitcode").exit_code == 0


def test_a_price_for_an_excluded_sku_is_refused_before_any_request(sandbox, config_dir):
    give_price(config_dir, "zt-0005", "OKTA-UD", "1.50")  # zt-0005 excludes OKTA-UD
    give_price(config_dir, "zt-0001", "OKTA-NOPE", "1.50")
    for command in (["validate"], ["plan", *AS_OF], ["apply", "--yes", *AS_OF]):
        result = run(config_dir, *command)
        assert result.exit_code == 1
        # validate lists `file:line:col: ...`; the other commands say `error: file:line:col: ...`
        lines = [line.removeprefix("error: ") for line in result.stderr.splitlines()]
        assert (
            "mappings/customers.yaml:53:5: prices: SKU 'OKTA-UD' is in this customer's "
            "exclude_skus, so it is never billed to it; remove the price or the exclusion"
        ) in lines, result.stderr
        assert (
            "mappings/customers.yaml:30:5: prices: unknown SKU 'OKTA-NOPE', expected a SKU "
            "listed in mappings/skus.yaml"
        ) in lines
    assert sandbox.stats.total == 0


def test_a_price_changed_between_plan_and_apply_skips_that_customer_as_stale(
    sandbox, config_dir, tmp_path
):
    """13.7: the saved plan's agreements are not re-read before the writes; the one edited
    is read just before its first write and its customer skipped, the others applied."""
    raise_sso(config_dir)
    set_setting(config_dir, "reprice", "true")
    saved = tmp_path / "plan.json"
    assert run(config_dir, "plan", *AS_OF, "--out", str(saved)).exit_code == 0
    data = json.loads(saved.read_text())
    (change,) = [ch for c in data["customers"] for ch in c["changes"] if ch["addition_id"] == 9005]
    assert change["price_change"] == {"before": "4.00", "after": "4.25"}
    world_edits.update_addition(sandbox, 9005, unitPrice=4.10)  # a clerk's own price rise
    edited = sandbox.additions(change["agreement_id"])
    result = run(config_dir, "apply", str(saved), "--yes")
    assert result.exit_code == 1
    assert (
        f"stale: agreement {change['agreement_id']} addition #9005 (ZT-OKTA-SSO): unit price "
        "4.00 → 4.10 since the plan was made; skipped, nothing written" in result.output
    )
    assert sandbox.additions(change["agreement_id"]) == edited  # nothing written to it
    others = [c for c in data["customers"] if c["agreement"]["id"] != change["agreement_id"]]
    assert sandbox.stats.writes == sum(len(c["changes"]) for c in others) > 0


def test_a_price_changed_just_before_the_write_skips_that_customer(sandbox, config_dir):
    """The just-in-time re-read (12.5): a price edited after the plan was derived, before
    the agreement's first write, makes that customer stale; nothing is written to it."""
    raise_sso(config_dir)
    set_setting(config_dir, "reprice", "true")
    set_setting(config_dir, "max_concurrency", "1")  # customers one by one: zt-0001 first
    edited = threading.Event()

    def edit_once(count: int) -> None:
        if not edited.is_set():
            world_edits.update_addition(sandbox, 9008, unitPrice=4.10)
            edited.set()

    sandbox.on_write = edit_once
    result = run(config_dir, "apply", "--yes", "--no-email", *AS_OF)
    sandbox.on_write = None
    assert edited.is_set() and result.exit_code == 1
    assert (
        "stale: agreement 1005 addition #9008 (ZT-OKTA-SSO): unit price 4.00 → 4.10 since the "
        "plan was made" in result.output
    )
    assert patches_of(sandbox, 9008) == []
    assert sso_prices(sandbox)[9008] == (60, 4.1)
    assert sso_prices(sandbox)[9001] == (42, 4.25)  # the others proceed


def test_a_mistyped_price_makes_the_plan_unsafe(sandbox, config_dir):
    raise_sso(config_dir, "42.50")  # meant 4.25
    set_setting(config_dir, "reprice", "true")
    plan = run(config_dir, "plan", *AS_OF)
    assert "4 repriced lines move beyond max_price_change_percent 50%" in plan.output
    assert "ZT-OKTA-SSO #9001 4.00 → 42.50, 962%" in plan.output
    result = run(config_dir, "apply", "--yes", *AS_OF)
    assert result.exit_code == 3 and sandbox.stats.writes == 0


def test_the_pull_request_shows_its_repricing(sandbox, config_dir, tmp_path):
    """An annual increase by one pull request: the base branch bills 4.00, the head raises
    OKTA-SSO to 4.25 with reprice on; the repricing is the pull request's own change."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "mappings").mkdir()
    for f in (config_dir / "mappings").iterdir():
        (base / "mappings" / f.name).write_bytes(f.read_bytes())
    raise_sso(config_dir)
    set_setting(config_dir, "reprice", "true")
    args = ["plan", *AS_OF, "--baseline", str(base)]
    md = run(config_dir, *args, "--format", "markdown")
    assert md.exit_code == 0, md.output
    mine, drift = md.stdout.split("#### This pull request")[1].split("#### Drift")
    assert "| update | ZT-OKTA-SSO | OKTA-SSO | 12 | 12 |  | 4.00 → 4.25 | +3.00 |" in mine
    assert "4.00 → 4.25" not in drift
    data = json.loads(run(config_dir, *args, "--format", "json").stdout)
    (change,) = [ch for c in data["customers"] for ch in c["changes"] if ch["addition_id"] == 9008]
    assert change["cause"] == "change"
    assert change["price_change"] == {"before": "4.00", "after": "4.25"}
    # 0.25 x 141 repriced licences + 2 new SSO adds' 0.25 x (18 + 9 + 4)
    assert data["baseline"]["pull_request_revenue_delta"] == "43.00"


def test_a_saved_repriced_plan_applies_as_reviewed_and_an_edited_one_is_refused(
    sandbox, config_dir, tmp_path
):
    raise_sso(config_dir)
    set_setting(config_dir, "reprice", "true")
    saved = tmp_path / "plan.json"
    assert run(config_dir, "plan", *AS_OF, "--out", str(saved)).exit_code == 0
    edited = tmp_path / "edited.json"
    data = json.loads(saved.read_text())
    for c in data["customers"]:
        for ch in c["changes"]:
            if ch["addition_id"] == 9005:
                ch["price_change"]["after"] = ch["unit_price"] = "4.50"
    edited.write_text(json.dumps(data))
    refused = run(config_dir, "apply", str(edited), "--yes")
    assert refused.exit_code == 1 and "price_change.after" in refused.output
    assert sandbox.stats.writes == 0

    applied = run(config_dir, "apply", str(saved), "--yes")
    assert applied.exit_code == 0, applied.output
    prices = sso_prices(sandbox)
    assert {i: prices[i] for i in SSO_LINES} == {i: (q, 4.25) for i, q in SSO_LINES.items()}
