"""Billing correctness end to end (DESIGN 12.2, 12.3): the price shown is the price sent,
the right company, odd ConnectWise data, the wipe guard. Over the sandbox on loopback; the
POST bodies are read from what the sandbox server received on the wire."""

from __future__ import annotations

import json
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import hypothesis.strategies as st
import world_edits
from clirun import run
from conftest import examples, set_setting
from hypothesis import HealthCheck, given, settings
from plan_builders import addition, config, customer, state, usage

from reconciler.config.resources import example_dir
from reconciler.core.model import SkuMap
from reconciler.core.state import Agreement, Company
from reconciler.plan.planner import plan
from reconciler.sandbox import Sandbox, default_fixture

AS_OF = ["--as-of", "2026-11-24"]
ZT3 = "- {id: zt-0003, name: Big Quote, company: BIGQUOTE, agreement: Big Quote - Identity}\n"


def posts(sb: Sandbox) -> list[dict]:
    """The bodies of the POSTs the sandbox received, numbers parsed exactly."""
    return [
        json.loads(body, parse_float=Decimal)
        for method, _, body in sb.write_requests
        if method == "POST"
    ]


def write_mappings(root: Path, skus: str, customers: str = ZT3) -> Path:
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    shutil.copy(example_dir() / "settings.yaml", root / "mappings" / "settings.yaml")
    (root / "mappings" / "skus.yaml").write_text(skus, encoding="utf-8")
    (root / "mappings" / "customers.yaml").write_text(customers, encoding="utf-8")
    return root


def plan_and_apply(root: Path, sb: Sandbox) -> dict:
    out = root / "plan.json"
    planned = run(root, "plan", *AS_OF, "--out", str(out), env=sb.env())
    assert planned.exit_code == 0, planned.output
    applied = run(root, "apply", str(out), "--yes", "--no-email", env=sb.env())
    assert applied.exit_code == 0, applied.output
    return json.loads(out.read_text(encoding="utf-8"))


def adds(plan_json: dict) -> list[dict]:
    return [ch for c in plan_json["customers"] for ch in c["changes"] if ch["action"] == "add"]


# --- one price per product, shown = sent -----------------------------------------------------


def test_skus_sharing_a_product_bill_the_price_the_plan_shows(sandbox, tmp_path):
    # Found: the planner priced with the first SKU in file order that has a price; apply
    # looked up change.sku (another SKU, without one) and sent no unitPrice: the plan showed
    # 6.50 and ConnectWise billed the catalog's 5.00.
    skus = (
        "- {sku: OKTA-LCM-B, product: ZT-OKTA-LCM, unit_price: 6.50}\n"
        "- {sku: OKTA-LCM-A, product: ZT-OKTA-LCM}\n"
    )
    root = write_mappings(tmp_path, skus)
    world_edits.set_users(sandbox, "zt-0003", "OKTA-LCM-A", 4)
    world_edits.set_users(sandbox, "zt-0003", "OKTA-LCM-B", 3)
    saved = plan_and_apply(root, sandbox)
    (change,) = adds(saved)
    assert change["after"] == 7 and change["unit_price"] == "6.50"
    (body,) = posts(sandbox)
    assert body["unitPrice"] == Decimal("6.50")
    (stored,) = sandbox.additions(1003)
    assert Decimal(str(stored["unitPrice"])) == Decimal("6.50") and stored["quantity"] == 7


def test_a_price_with_three_decimals_is_shown_stored_and_sent_exactly(sandbox, tmp_path):
    # Found: unit_price 4.125 showed "@ 4.12" and the plan file stored "4.12".
    root = write_mappings(tmp_path, "- {sku: OKTA-LCM, product: ZT-OKTA-LCM, unit_price: 4.125}\n")
    world_edits.set_users(sandbox, "zt-0003", "OKTA-LCM", 3)
    shown = run(root, "plan", *AS_OF, env=sandbox.env())
    assert "[+12.375 USD/month @ 4.125 USD]" in shown.output
    saved = plan_and_apply(root, sandbox)
    (change,) = adds(saved)
    assert (change["unit_price"], change["revenue_delta"]) == ("4.125", "12.375")
    (raw,) = [b for m, _, b in sandbox.write_requests if m == "POST"]
    assert b'"unitPrice":4.125,' in raw


def test_the_catalog_price_and_cost_are_sent_when_the_mapping_sets_none(sandbox, tmp_path):
    root = write_mappings(tmp_path, "- {sku: OKTA-LCM, product: ZT-OKTA-LCM}\n")
    world_edits.set_users(sandbox, "zt-0003", "OKTA-LCM", 2)
    saved = plan_and_apply(root, sandbox)
    (change,) = adds(saved)
    (body,) = posts(sandbox)
    assert Decimal(change["unit_price"]) == body["unitPrice"] == Decimal("5.00")
    assert change["unit_cost"] is not None and Decimal(change["unit_cost"]) == body["unitCost"]


PRICES = st.decimals(min_value=0, max_value=1_000_000, places=4, allow_nan=False)


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    price=st.none() | PRICES,
    cost=st.none() | PRICES,
    setters=st.lists(st.booleans(), min_size=2, max_size=4),
    users=st.lists(st.integers(min_value=0, max_value=60), min_size=4, max_size=4),
    reverse=st.booleans(),
)
def test_property_plan_price_equals_post_price(price, cost, setters, users, reverse):
    """For any config where SKUs share a product (each SKU setting the agreed price and
    cost, or not) and any usage: the unit price (and cost) in the plan is the one in the
    POST body the sandbox received."""
    names = [f"OKTA-LCM-{chr(65 + i)}" for i in range(len(setters))]
    lines = []
    for name, sets in zip(names, setters, strict=True):
        terms = ""
        if sets and price is not None:
            terms += f", unit_price: {price}"
        if sets and cost is not None:
            terms += f", unit_cost: {cost}"
        lines.append(f"- {{sku: {name}, product: ZT-OKTA-LCM{terms}}}\n")
    if reverse:
        lines.reverse()
    with tempfile.TemporaryDirectory() as tmp, Sandbox(default_fixture()) as sb:
        root = write_mappings(Path(tmp), "".join(lines))
        for name, n in zip(names, users, strict=False):
            world_edits.set_users(sb, "zt-0003", name, n)
        saved = plan_and_apply(root, sb)
        sent = posts(sb)
        planned = adds(saved)
        assert len(sent) == len(planned) == (1 if sum(users[: len(names)]) else 0)
        for change, body in zip(planned, sent, strict=True):
            assert Decimal(change["unit_price"]) == body["unitPrice"]
            if price is not None and any(setters):
                assert body["unitPrice"] == price
            else:
                assert body["unitPrice"] == Decimal("5.00")  # the catalog's
            if cost is not None and any(setters):
                assert body["unitCost"] == cost == Decimal(change["unit_cost"])
            assert body["quantity"] == change["after"] == sum(users[: len(names)])


# --- the right company, odd data, shared agreements, the wipe guard ---------------------------


def test_a_company_spelled_in_another_case_is_the_same_company():
    # Found: shared customers under `ACME` and `acme`: one resolved "not found", the other
    # was planned alone -> `update 40 -> 5` and a removal. (validate now rejects the two
    # spellings; the planner still matches case-insensitively, as ConnectWise does.)
    cfg = config(
        customer("zt-1", company="ACME", shared_agreement=True),
        customer("zt-2", company="acme", shared_agreement=True),
    )
    actual = state(addition(1, "ZT-OKTA-SSO", 40), addition(2, "ZT-OKTA-MFA", 7))
    users = {"zt-1": {"OKTA-SSO": 5, "OKTA-MFA": 3}, "zt-2": {"OKTA-SSO": 35, "OKTA-MFA": 4}}
    p = plan(cfg, usage(users), actual)
    assert not p.has_errors and p.changes == ()


def test_a_shared_agreement_is_one_unit():
    # DESIGN 12.3: any error among its customers -> none of its changes, each reports it.
    cfg = config(
        customer("zt-1", shared_agreement=True),
        customer("zt-2", agreement="No Such Agreement", shared_agreement=True),
        customer("zt-3", company="OTHER", agreement=2002),
    )
    actual = state(
        addition(1, "ZT-OKTA-SSO", 40),
        agreements=(Agreement(1001, "Acme MS", 250, "Active"), Agreement(2002, "O", 260, "Active")),
        companies=(Company(250, "ACME", "Acme"), Company(260, "OTHER", "Other")),
    )
    users = {"zt-1": {"OKTA-SSO": 5}, "zt-2": {"OKTA-SSO": 35}, "zt-3": {"OKTA-SSO": 2}}
    p = plan(cfg, usage(users), actual)
    by_id = {cp.customer_id: cp for cp in p.customers}
    assert by_id["zt-1"].changes == () and by_id["zt-2"].changes == ()
    assert by_id["zt-2"].errors == ("no agreement named 'No Such Agreement' for company 'ACME'",)
    assert by_id["zt-1"].errors == (
        "shares its agreement with zt-2, which has an error (no agreement named 'No Such "
        "Agreement' for company 'ACME'): nothing on the shared agreement is changed",
    )
    assert [c.after for c in by_id["zt-3"].changes] == [2]  # others proceed


def test_an_agreement_error_is_every_sharers_error():
    cfg = config(customer("zt-1", shared_agreement=True), customer("zt-2", shared_agreement=True))
    actual = state(addition(1, "ZT-OKTA-SSO", 10), addition(2, "ZT-OKTA-SSO", 5))  # ambiguous
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 5}, "zt-2": {"OKTA-SSO": 5}}), actual)
    assert p.changes == ()
    for cp in p.customers:
        assert any("2 active additions of ZT-OKTA-SSO" in e for e in cp.errors), cp


def test_a_negative_managed_quantity_is_an_error_not_absence():
    # Found: an active managed addition with quantity -5 was treated as absent: a 42 was
    # added beside it (net 37 billed).
    for bad in (addition(1, "ZT-OKTA-SSO", -5),):
        bad = bad.__class__(**{**bad.__dict__, "problem": "quantity -5"})
        p = plan(config(customer()), usage({"zt-1": {"OKTA-SSO": 42}}), state(bad))
        assert p.changes == ()
        assert p.customers[0].errors == (
            "addition #1 of ZT-OKTA-SSO on agreement 1001 has quantity -5; expected a whole "
            "number of licences, 0 or more: fix it in ConnectWise, the reconciler never guesses",
        )


def test_odd_connectwise_data_end_to_end(sandbox, config_dir):
    sso = next(a for a in sandbox.additions(1004) if a["product"]["identifier"] == "ZT-OKTA-SSO")
    world_edits.update_addition(sandbox, sso["id"], quantity=-5)
    helpdesk = next(
        a for a in sandbox.additions(1001) if a["product"]["identifier"] == "MSP-HELPDESK"
    )
    world_edits.update_addition(
        sandbox, helpdesk["id"], quantity=None, product={"id": 999, "identifier": None}
    )
    before = sandbox.additions(1004)
    result = run(config_dir, "apply", "--yes", "--no-email", *AS_OF)
    assert result.exit_code == 1
    assert f"error: zt-0004: addition #{sso['id']} of ZT-OKTA-SSO on agreement 1004 has " in (
        result.output
    )
    assert sandbox.additions(1004) == before  # not a 27 beside the -5
    assert sandbox.stats.writes > 0  # the other customers were applied


def _zero_users_everywhere(sb: Sandbox) -> None:
    for cid, sku in {(a.customer_id, a.sku) for a in sb.assignments()}:
        world_edits.set_users(sb, cid, sku, 0)


def test_wipe_guard_refuses_zero_usage_for_everyone(sandbox, config_dir):
    # Found: ZeroTek answered 200 with zero users for everyone (directory intact); the plan
    # cancelled all 7 managed additions, exit 0, because 7 < min_existing.
    _zero_users_everywhere(sandbox)
    refused = run(config_dir, "apply", "--yes", "--no-email", *AS_OF)
    assert refused.exit_code == 3, refused.output
    assert "ZeroTek reported zero users for every SKU of every planned customer" in (refused.output)
    assert sandbox.stats.writes == 0
    forced = run(config_dir, "apply", "--yes", "--force", "--no-email", *AS_OF)
    assert forced.exit_code == 0, forced.output
    assert sandbox.stats.writes > 0


def test_currency_is_named_on_the_plan(sandbox, config_dir):
    set_setting(config_dir, "timezone", "UTC\n  currency: EUR")
    out = run(config_dir, "plan", "--format", "json", *AS_OF)
    assert json.loads(out.stdout)["currency"] == "EUR"
    text = run(config_dir, "plan", *AS_OF).output
    assert "EUR/month" in text and "USD" not in text


def test_sku_map_terms_resolve_once_per_product():
    skus = (
        SkuMap("B", "P", unit_price=Decimal("6.50")),
        SkuMap("A", "p", unit_cost=Decimal("2")),
        SkuMap("C", "P", description="Okta"),
    )
    terms = config(skus=skus).terms("P")
    assert (terms.unit_price, terms.unit_cost, terms.description) == (
        Decimal("6.50"),
        Decimal("2"),
        "Okta",
    )


def test_one_formatter_exact_with_at_least_two_decimals():
    from reconciler.core.money import display, json_number, plain

    assert [plain(Decimal(v)) for v in ("4", "6.5", "4.125", "30.0150", "-266", "0", "-0.0")] == [
        "4.00", "6.50", "4.125", "30.015", "-266.00", "0.00", "0.00"
    ]  # fmt: skip
    assert display(Decimal("16640"), signed=True, currency="USD") == "+16,640.00 USD"
    assert display(Decimal("-1234.5678")) == "-1,234.5678"
    assert json_number(Decimal("4.125")) == 4.125
