"""Prices as desired state (DESIGN 13.4), part by part: the planner's decision, the safety
threshold, the saved-plan round trip, `report` and the sync e-mail. No HTTP here; the
sandbox tests are in test_prices.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import jsonschema
from plan_builders import SKUS, addition, config, customer, state, usage
from runlog_samples import SETTINGS, run_smtp

from reconciler.config.loader import load_config, validate_config
from reconciler.config.resources import load_schema
from reconciler.core.model import Safety, Settings
from reconciler.core.plan import Action, Change
from reconciler.core.results import ApplyResult, ChangeResult, CustomerResult
from reconciler.insight.report import Kind, build_report
from reconciler.notify.email import notify_after_sync
from reconciler.notify.smtp import smtp_from_env
from reconciler.plan import planfile
from reconciler.plan.planner import plan
from reconciler.plan.safety import unsafe_reasons
from reconciler.records.record import RunRecord

D = Decimal
REPRICE = Settings(reprice=True)
STARTED = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
RAISED = tuple(  # OKTA-SSO raised from the catalog's 4.00 to 4.25
    dataclasses.replace(s, unit_price=D("4.25")) if s.sku == "OKTA-SSO" else s for s in SKUS
)


def test_the_mapped_price_is_the_override_else_the_unit_price_else_none() -> None:
    acme = customer("zt-1", prices=(("OKTA-SSO", D("3.80")),))
    actual = state(addition(1, "ZT-OKTA-SSO", 40), addition(2, "ZT-OKTA-MFA", 5))
    p = plan(
        config(acme, settings=REPRICE, skus=RAISED),
        usage({"zt-1": {"OKTA-SSO": 40, "OKTA-MFA": 5}}),
        actual,
    )
    (change,) = p.changes  # MFA has no mapped price: its 4.00 line is never repriced
    assert (change.addition_id, change.before, change.after) == (1, 40, 40)
    assert (change.repriced, change.price_before, change.unit_price) == (True, D("4.00"), D("3.80"))
    assert change.action is Action.UPDATE and change.revenue_delta == D("-8.00")

    plain = plan(
        config(customer("zt-1"), settings=REPRICE, skus=RAISED),
        usage({"zt-1": {"OKTA-SSO": 40, "OKTA-MFA": 5}}),
        actual,
    )
    assert [c.unit_price for c in plain.changes] == [D("4.25")]


def test_a_line_without_a_price_is_repriced_from_none() -> None:
    line = dataclasses.replace(addition(1, "ZT-OKTA-SSO", 10), unit_price=None)
    p = plan(
        config(customer(), settings=REPRICE, skus=RAISED),
        usage({"zt-1": {"OKTA-SSO": 12}}),
        state(line),
    )
    (change,) = p.changes
    assert (change.price_before, change.unit_price, change.revenue_delta) == (
        None,
        D("4.25"),
        D("51.00"),
    )
    assert "from no price" not in " ".join(p.unsafe_reasons)
    assert any("#1 none → 4.25" in r for r in p.unsafe_reasons)  # a move no % can measure


def test_removed_lines_are_not_repriced_and_do_not_drift() -> None:
    p = plan(config(customer(), skus=RAISED), usage({}), state(addition(1, "ZT-OKTA-SSO", 10)))
    assert [(c.action, c.repriced) for c in p.changes] == [(Action.REMOVE, False)]
    assert not [w for w in p.warnings if "another price" in w]


def test_reprice_false_sums_the_drift_per_sku_over_customers() -> None:
    cfg = config(
        customer("zt-1"),
        customer("zt-2", company="BETA", agreement=1002, prices=(("OKTA-SSO", D("3.80")),)),
        skus=RAISED,
    )
    actual = state(
        addition(1, "ZT-OKTA-SSO", 40),
        addition(2, "ZT-OKTA-SSO", 10, agreement=1002),
        agreements=(
            dataclasses.replace(state().agreements[1001]),
            dataclasses.replace(state().agreements[1001], id=1002, company_id=251),
        ),
        companies=(
            *state().companies.values(),
            dataclasses.replace(state().companies["ACME"], id=251, identifier="BETA"),
        ),
    )
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 42}, "zt-2": {"OKTA-SSO": 10}}), actual)
    assert not any(c.repriced for c in p.changes)
    assert p.warnings == (
        "OKTA-SSO: 2 lines of ZT-OKTA-SSO bill another price than mapped (3.80 / 4.25 USD); "
        "repricing would change revenue by +8.50 USD/month. Left as they are: set "
        "billing.reprice: true to update them",
    )  # 42 x 0.25 - 10 x 0.20


def test_customers_sharing_a_line_must_agree_on_its_price() -> None:
    a = customer("zt-1", shared_agreement=True, prices=(("OKTA-SSO", D("3.80")),))
    b = customer("zt-2", shared_agreement=True)
    p = plan(
        config(a, b, settings=REPRICE, skus=RAISED),
        usage({"zt-1": {"OKTA-SSO": 3}}),
        state(addition(1, "ZT-OKTA-SSO", 3)),
    )
    assert p.changes == ()
    (error,) = {e for cp in p.customers for e in cp.errors}
    assert "customers sharing agreement 1001 map different prices for ZT-OKTA-SSO" in error
    assert "zt-1: 3.80; zt-2: 4.25" in error


def test_the_price_threshold_counts_each_repriced_line() -> None:
    actual = state(addition(1, "ZT-OKTA-SSO", 40))
    u = usage({"zt-1": {"OKTA-SSO": 40}})
    ok = plan(config(customer(), settings=REPRICE, skus=RAISED), u, actual)
    assert ok.changes and not ok.unsafe  # +6.25% of 4.00, below 50%, below min_existing too
    typo = tuple(
        dataclasses.replace(s, unit_price=D("42.50")) if s.sku == "OKTA-SSO" else s for s in SKUS
    )
    bad = plan(config(customer(), settings=REPRICE, skus=typo), u, actual)
    assert bad.unsafe_reasons == (
        "1 repriced line move beyond max_price_change_percent 50% (e.g. ZT-OKTA-SSO #1 "
        "4.00 → 42.50, 962%): check the prices",
    )
    assert unsafe_reasons(bad, Safety(max_price_change_percent=1000)) == ()


def test_a_repriced_plan_survives_its_file_and_its_schema(tmp_path: Path) -> None:
    actual = state(addition(1, "ZT-OKTA-SSO", 40))
    p = plan(
        config(customer(), settings=REPRICE, skus=RAISED), usage({"zt-1": {"OKTA-SSO": 42}}), actual
    )
    snap = planfile.snapshot(p, actual, {"ZT-OKTA-SSO"})
    text = planfile.dumps(p, snap)
    data = json.loads(text)
    jsonschema.validate(data, load_schema("plan.schema.json"))
    (change,) = data["customers"][0]["changes"]
    assert change["price_change"] == {"before": "4.00", "after": "4.25"}
    assert change["revenue_delta"] == "18.50"  # 42 x 4.25 - 40 x 4.00
    path = tmp_path / "plan.json"
    path.write_text(text)
    loaded, _ = planfile.load(path)
    assert loaded == p and planfile.dumps(loaded, snap) == text


def test_report_values_a_mispriced_line_apart_from_its_quantity() -> None:
    cfg = config(customer(), skus=RAISED)  # reprice false: the report still shows it
    actual = state(addition(1, "ZT-OKTA-SSO", 40))
    report = build_report(cfg, usage({"zt-1": {"OKTA-SSO": 42}}), actual, ())
    rows = {r.kind: r for r in report.rows}
    assert rows[Kind.UNDER].amount == D("8.00")  # 2 more licences at the 4.00 billed
    assert (rows[Kind.MISPRICED].quantity, rows[Kind.MISPRICED].amount) == (42, D("10.50"))
    assert report.net == D("18.50")  # what repricing and fixing the quantity change


def test_the_sync_email_names_the_price_change() -> None:
    change = Change(
        Action.UPDATE, "zt-1", "OKTA-SSO", "ZT-OKTA-SSO", 901, 1001, 9005, 12, 12,
        D("4.25"), repriced=True, price_before=D("4.00"),
    )  # fmt: skip
    cp = plan(config(customer()), usage({}), state()).customers[0]
    cp = dataclasses.replace(cp, changes=(change,), agreement_id=1001, agreement_name="Acme MS")
    p = dataclasses.replace(plan(config(customer()), usage({}), state()), customers=(cp,))
    result = ApplyResult(
        p, (CustomerResult(cp, (ChangeResult(change, True, addition_id=9005),), verified=True),),
        started=STARTED, finished=STARTED, writes=1,
    )  # fmt: skip
    record = RunRecord.of_result(result, "RUN-P")
    assert record.customers[0].changes[0].price_change == {"before": "4.00", "after": "4.25"}
    with run_smtp() as server:
        env = server.env()
        notify_after_sync(SETTINGS, record, p, smtp=smtp_from_env(env))
        sync = server.sink.received[0]
    assert "Prices changed: 1 of the updated additions" in sync.text
    assert "4.00 USD → 4.25 USD" in sync.text and "+3.00 USD" in sync.text
    assert "4.00 USD → 4.25 USD" in sync.html


# --- customers.yaml `prices:` and settings ---------------------------------------------------

SKUS_YAML = (
    "- sku: OKTA-SSO\n  product: ZT-OKTA-SSO\n  unit_price: 4.25\n"
    "- sku: OKTA-SSO-LEGACY\n  product: ZT-OKTA-SSO\n  unit_price: 4.25\n"
    "- sku: OKTA-MFA\n  product: ZT-OKTA-MFA\n"
)


def _mappings(root: Path, prices: str, settings: str = "") -> Path:
    files = {
        "settings.yaml": "connectwise:\n  api_url: https://cw.example/apis/3.0\n" + settings,
        "skus.yaml": SKUS_YAML,
        "customers.yaml": (
            "- id: zt-1\n  name: Acme\n  company: ACME\n  agreement: 7\n"
            "  exclude_skus: [OKTA-MFA]\n" + prices
        ),
    }
    for name, text in files.items():
        (root / "mappings").mkdir(parents=True, exist_ok=True)
        (root / "mappings" / name).write_text(text)
    return root


def test_prices_load_exactly_with_reprice_and_the_price_threshold(tmp_path: Path) -> None:
    root = _mappings(
        tmp_path,
        "  prices:\n    OKTA-SSO: 3.8\n    okta-sso-legacy: 3.80\n",
        "billing:\n  reprice: true\nsafety:\n  max_price_change_percent: 12.5\n",
    )
    cfg = load_config(root)
    assert cfg.customers[0].prices == (("OKTA-SSO", D("3.8")), ("okta-sso-legacy", D("3.80")))
    assert cfg.settings.reprice is True and cfg.settings.safety.max_price_change_percent == 12.5
    assert load_config(_mappings(tmp_path / "default", "")).settings.reprice is False


def test_every_price_problem_is_reported_at_its_key(tmp_path: Path) -> None:
    root = _mappings(
        tmp_path,
        "  prices:\n"
        "    OKTA-SSO: 3.80\n"  # line 7
        "    OKTA-SSO-LEGACY: 3.90\n"  # 8: one product, two prices
        "    OKTA-MFA: 2\n"  # 9: excluded
        "    OKTA-PAM: 2\n"  # 10: not in skus.yaml
        "    Okta-Sso: 3.80\n"  # 11: OKTA-SSO again
        "    OKTA-SSO-X: 1.23456\n"  # 12: unknown and 5 places
        "    OKTA-Y: -1\n"  # 13: out of range (schema)
        "    OKTA-Z: '4.00'\n",  # 14: a string (schema)
    )
    assert [str(p) for p in validate_config(root)] == [
        "mappings/customers.yaml:8:5: prices: OKTA-SSO-LEGACY is 3.90 but OKTA-SSO is 3.80; both "
        "bill product 'ZT-OKTA-SSO' as one addition, which has one price",
        "mappings/customers.yaml:9:5: prices: SKU 'OKTA-MFA' is in this customer's exclude_skus, "
        "so it is never billed to it; remove the price or the exclusion",
        "mappings/customers.yaml:10:5: prices: unknown SKU 'OKTA-PAM', expected a SKU listed in "
        "mappings/skus.yaml",
        "mappings/customers.yaml:11:5: prices: SKU 'Okta-Sso' is also listed as 'OKTA-SSO'; "
        "list it once",
        "mappings/customers.yaml:12:5: prices: unknown SKU 'OKTA-SSO-X', expected a SKU listed "
        "in mappings/skus.yaml",
        "mappings/customers.yaml:12:17: prices.OKTA-SSO-X: expected at most 4 decimal places, "
        "got 1.23456",
        "mappings/customers.yaml:13:5: prices: unknown SKU 'OKTA-Y', expected a SKU listed in "
        "mappings/skus.yaml",
        "mappings/customers.yaml:13:13: prices.OKTA-Y: expected a number from 0 to 1000000, got -1",
        "mappings/customers.yaml:14:5: prices: unknown SKU 'OKTA-Z', expected a SKU listed in "
        "mappings/skus.yaml",
        "mappings/customers.yaml:14:13: prices.OKTA-Z: expected a number, got string '4.00'; "
        "write the number without quotes",
    ]


def test_a_line_that_is_not_billable_is_never_repriced_nor_warned_about() -> None:
    free = dataclasses.replace(addition(1, "ZT-OKTA-SSO", 10), bill_customer="DoNotBill")
    u = usage({"zt-1": {"OKTA-SSO": 10}})
    for settings in (REPRICE, Settings()):
        p = plan(config(customer(), settings=settings, skus=RAISED), u, state(free))
        assert p.changes == () and not [w for w in p.warnings if "another price" in w]
