"""`report`: figures against hand-computed ones, over the sandbox's example data.

Last billing period 2026-10-16..2026-11-15 (see reconciler/sandbox/fixtures.py for the
users, the fixture's additions for what is billed; catalog prices SSO 4.00/2.50 cost,
MFA 3.00/1.80, LCM 5.00/3.20, UD 2.00/1.10, WF 6.00/4.00 with the mapping's 6.50).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
from decimal import Decimal

import jsonschema
import pytest
import world_edits
from clirun import run
from conftest import set_setting

from reconciler.config.resources import example_dir, load_schema
from reconciler.core.model import PeriodKind
from reconciler.core.periods import Period
from reconciler.insight.report import Kind, Report, Row
from reconciler.insight.report_render import csv_text, markdown
from reconciler.sandbox import Sandbox
from reconciler.sandbox.discovery import discovery_fixture

AS_OF = ["--as-of", "2026-11-24"]

# (kind, customer, sku, zerotek users, billed, unit price, monthly amount, monthly margin)
EXPECTED_ROWS = [
    ("under-billed", "zt-0001", "OKTA-SSO", 42, 40, "4.00", "8.00", "3.00"),  # 2 x (4-2.5)
    ("under-billed", "zt-0003", "OKTA-LCM", 6, 0, "5.00", "30.00", "10.80"),  # 6 x 1.8
    ("under-billed", "zt-0003", "OKTA-MFA", 18, 0, "3.00", "54.00", "21.60"),  # 18 x 1.2
    ("under-billed", "zt-0003", "OKTA-SSO", 18, 0, "4.00", "72.00", "27.00"),
    ("under-billed", "zt-0004", "OKTA-SSO", 27, 25, "4.00", "8.00", "3.00"),
    ("under-billed", "zt-0005", "OKTA-MFA", 15, 0, "3.00", "45.00", "18.00"),
    ("under-billed", "zt-0006", "OKTA-SSO", 9, 0, "4.00", "36.00", "13.50"),
    ("under-billed", "zt-0006", "OKTA-WF", 2, 0, "6.50", "13.00", "5.00"),  # 2 x (6.5-4)
    ("under-billed", "zt-0007", "OKTA-SSO", 4, 0, "4.00", "16.00", "6.00"),
    ("under-billed", "zt-0007", "OKTA-WF", 4, 3, "6.50", "6.50", "2.50"),
    ("over-billed", "zt-0002", "OKTA-UD", 0, 7, "2.00", "14.00", "6.30"),  # 7 x 0.9
    ("unmapped-customer", "zt-0099", "OKTA-SSO", 5, 0, "4.00", "20.00", "7.50"),
    ("unmapped-sku", "zt-0006", "OKTA-PAM", 3, 0, None, None, None),  # no catalog product
]


def test_json_figures_equal_the_hand_computed_ones(sandbox, config_dir):
    result = run(config_dir, "report", "--format", "json", *AS_OF)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    jsonschema.validate(data, load_schema("report"))
    rows = [
        (
            r["kind"],
            r["customer_id"],
            r["sku"],
            r["zerotek_users"],
            r["billed_quantity"],
            r["unit_price"],
            r["monthly_amount"],
            r["monthly_margin"],
        )
        for r in data["rows"]
    ]
    assert rows == EXPECTED_ROWS
    t = data["totals"]
    # 2+6+18+18+2+15+9+2+4+1 = 77 licences; 8+30+54+72+8+45+36+13+16+6.5 = 288.50
    assert t["under-billed"] == {
        "quantity": 77,
        "amount": "288.50",
        "margin": "110.40",
        "unpriced_rows": 0,
    }
    assert t["over-billed"] == {
        "quantity": 7,
        "amount": "14.00",
        "margin": "6.30",
        "unpriced_rows": 0,
    }
    assert t["unmapped-customer"]["amount"] == "20.00"
    assert t["unmapped-sku"] == {
        "quantity": 3,
        "amount": "0.00",
        "margin": "0.00",
        "unpriced_rows": 1,
    }
    assert t["unbilled"] == "308.50"  # 288.50 + 20.00
    assert t["net"] == "294.50"  # 308.50 - 14.00
    assert data["billed_quantity"] == 189  # 40+42+12+7+25+60+3 managed seats billed
    assert data["zerotek_users"] == 259  # 189 + 77 - 7
    assert data["currency"] == "USD"
    assert data["period"] == {
        "kind": "last-billing-period",
        "start": "2026-10-16",
        "end": "2026-11-15",
        "as_of": "2026-11-24",
    }
    assert sandbox.stats.writes == 0


def test_csv_has_one_row_per_discrepancy_and_opens_as_a_table(sandbox, config_dir):
    result = run(config_dir, "report", "--format", "csv", *AS_OF)
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    assert len(table) == len(EXPECTED_ROWS)
    assert table[2]["customer_name"] == 'Big "Quote" Ltd'  # quotes survive the round trip
    assert {r["currency"] for r in table} == {"USD"}
    assert sum(Decimal(r["monthly_amount"] or 0) for r in table if r["kind"] != "over-billed") == (
        Decimal("308.50")
    )


def test_text_and_markdown_name_the_currency_and_chart_the_largest(sandbox, config_dir):
    text = run(config_dir, "report", *AS_OF).stdout
    assert "Not billed: 308.50 USD/month" in text
    assert "Net if everything were fixed: 294.50 USD/month" in text
    md = run(config_dir, "report", "--format", "markdown", *AS_OF).stdout
    assert "```mermaid\nxychart-beta" in md
    chart = md.split("```mermaid", 1)[1].split("```", 1)[0]
    assert '"zt-0003 ZT-OKTA-SSO under"' in chart  # 72.00: the largest bar comes first
    assert "bar [72.00, 54.00, 45.00, 36.00, 30.00, 20.00, 16.00, 14.00, 13.00, 8.00]" in chart
    assert "| zt-0007 Initech \\& Co | OKTA-WF | ZT-OKTA-WF | 4 | 3 | 1 | 6.50 USD |" in md


def test_update_only_settings_still_report_what_is_not_billed(sandbox, config_dir):
    set_setting(config_dir, "add_missing", "false")
    data = json.loads(run(config_dir, "report", "--format", "json", *AS_OF).stdout)
    assert data["totals"]["under-billed"]["amount"] == "288.50"


def test_unmapped_skus_are_valued_at_the_catalog_price_of_a_certain_product(monkeypatch, tmp_path):
    fixture, _ = discovery_fixture()  # adds ZT-OKTA-PAM (9.00, cost 6.00) to the catalog
    root = tmp_path / "config"
    shutil.copytree(example_dir(), root / "mappings")
    with Sandbox(fixture) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        data = json.loads(run(root, "report", "--format", "json", *AS_OF).stdout)
    skus = {(r["customer_id"], r["sku"]): r for r in data["rows"] if r["kind"] == "unmapped-sku"}
    pam = skus[("zt-0006", "OKTA-PAM")]
    assert (pam["product"], pam["monthly_amount"], pam["monthly_margin"]) == (
        "ZT-OKTA-PAM",
        "27.00",  # 3 x 9.00
        "9.00",  # 3 x (9.00 - 6.00)
    )
    assert skus[("zt-0001", "OKTA-PAM")]["monthly_amount"] == "18.00"
    iga = skus[("zt-0001", "OKTA-IGA")]  # no catalog item: shown, never invented
    assert iga["product"] is None and iga["monthly_amount"] is None


def test_an_unmapped_customer_is_valued_at_the_catalog_price_not_a_mapped_one(sandbox, config_dir):
    # Found: zt-0099 (no mapping, no agreement) valued at skus.yaml's unit_price 6.50 for
    # OKTA-WF, a price only a mapped customer's line has. DESIGN 12.8: the catalog's, 6.00.
    world_edits.set_users(sandbox, "zt-0099", "OKTA-WF", 2)
    data = json.loads(run(config_dir, "report", "--format", "json", *AS_OF).stdout)
    (row,) = [
        r
        for r in data["rows"]
        if (r["kind"], r["customer_id"], r["sku"]) == ("unmapped-customer", "zt-0099", "OKTA-WF")
    ]
    assert (row["product"], row["unit_price"], row["monthly_amount"]) == (
        "ZT-OKTA-WF",
        "6.00",
        "12.00",
    )
    # the mapped customers' rows keep the mapped price
    (initech,) = [r for r in data["rows"] if (r["customer_id"], r["sku"]) == ("zt-0007", "OKTA-WF")]
    assert initech["unit_price"] == "6.50"


def _row(name: str, amount: str) -> Row:
    return Row(Kind.UNDER, "zt-1", name, "C", 1, "S", "P", 2, 1, Decimal(amount), None)


@pytest.mark.parametrize("evil", ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)"])
def test_csv_cells_never_become_spreadsheet_formulas(evil):
    period = Period(
        PeriodKind.CURRENT, dt.date(2026, 11, 16), dt.date(2026, 11, 24), dt.date(2026, 11, 24)
    )
    report = Report(period, "EUR", (_row(evil, "1.2345"),), 1, 2, ())
    row = next(csv.DictReader(io.StringIO(csv_text(report))))
    assert row["customer_name"] == "'" + evil
    assert row["unit_price"] == "1.2345"  # exact, never rounded
    assert row["currency"] == "EUR"


def test_markdown_renders_hostile_names_literally():
    period = Period(
        PeriodKind.CURRENT, dt.date(2026, 11, 16), dt.date(2026, 11, 24), dt.date(2026, 11, 24)
    )
    evil = "x | <img src=x> [link](http://e) \n```\n"
    md = markdown(Report(period, "USD", (_row(evil, "3"),), 1, 2, ()))
    table_line = next(line for line in md.splitlines() if line.startswith("| zt-1"))
    assert table_line.count(" | ") == 8  # nine cells: the name's pipe is escaped
    assert "<img" not in md.replace("\\<img", "") and "\\<img" in table_line
    assert "\\[link\\]\\(http" in table_line  # brackets escaped: no link
    assert "\\`\\`\\`" in table_line  # no fence break
    chart = md.split("```mermaid", 1)[1].split("```", 1)[0]
    assert "img" not in chart  # labels come from identifiers, never names
