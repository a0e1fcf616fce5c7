"""`apply --format json` and `check-unmapped --format json` (issue 17): stdout is the JSON
alone and follows its shipped schema; money figures are the ones sent to ConnectWise.

The CLI through CliRunner against the loopback sandbox (stdout and stderr apart)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from clirun import run
from conftest import set_setting

from reconciler.config.resources import load_schema
from reconciler.sandbox import Sandbox

AS_OF = ["--as-of", "2026-11-24"]


def doc_of(result: Any, schema: str) -> dict[str, Any]:
    """stdout is one JSON document, nothing else, valid against the schema."""
    data = json.loads(result.stdout)
    jsonschema.validate(data, load_schema(schema))
    return data


def price_lcm(config_dir: Path, price: str) -> None:
    skus = config_dir / "mappings" / "skus.yaml"
    text = skus.read_text()
    line = "  product: ZT-OKTA-LCM"
    assert line in text
    skus.write_text(text.replace(line, f"  unit_price: {price}\n{line}", 1))


def sent_writes(sb: Sandbox) -> tuple[dict[tuple[int, str], dict], dict[int, Any]]:
    """POST bodies by (agreement, product) and PATCHed quantities by addition id, as the
    sandbox received them, numbers parsed exactly."""
    identifier = {item["id"]: item["identifier"] for item in sb.catalog.values()}
    posts, patches = {}, {}
    for method, path, body in sb.write_requests:
        data = json.loads(body, parse_float=Decimal) if body else None
        parts = path.rstrip("/").split("/")
        if method == "POST":
            posts[(int(parts[-2]), identifier[data["product"]["id"]])] = data
        elif method == "PATCH":
            for op in data:
                if op["path"] == "quantity":
                    patches[int(parts[-1])] = op["value"]
    return posts, patches


def test_apply_json_is_the_outcome_with_the_figures_sent(
    sandbox: Sandbox, config_dir: Path
) -> None:
    price_lcm(config_dir, "5.0625")  # four decimals: shown, sent and summed exactly
    result = run(config_dir, "apply", "--yes", "--no-email", "--format", "json", *AS_OF)
    assert result.exit_code == 0, result.stderr
    data = doc_of(result, "apply")
    assert data["exit_code"] == 0 and data["outcome"] == "success" and data["error"] is None
    assert Path(data["record"]).is_file() and Path(data["record"]).stem == data["run_id"]
    assert "Plan: 7 to add" in result.stderr  # the plan is shown, on stderr
    assert data["currency"] == "USD"

    posts, patches = sent_writes(sandbox)
    written = [
        (c, ch) for c in data["customers"] for ch in c["changes"] if ch["result"] == "written"
    ]
    assert len(written) == data["totals"]["writes"] == sandbox.stats.writes == 11
    for c, ch in written:
        assert Decimal(ch["revenue_delta"]) == (ch["after"] - ch["before"]) * Decimal(
            ch["unit_price"]
        )
        if ch["action"] == "add":
            body = posts[(c["agreement_id"], ch["product"])]
            assert Decimal(ch["unit_price"]) == body["unitPrice"]
            assert ch["after"] == body["quantity"]
    lcm = next(ch for _, ch in written if ch["product"] == "ZT-OKTA-LCM")
    assert (lcm["unit_price"], Decimal(lcm["revenue_delta"])) == ("5.0625", Decimal("30.375"))
    assert sorted(patches.values()) == sorted(
        ch["after"] for _, ch in written if ch["action"] == "update"
    )
    total = sum((Decimal(ch["revenue_delta"]) for _, ch in written), Decimal(0))
    assert Decimal(data["totals"]["revenue_delta"]) == total
    # the same run as the record says, request statistics included
    record = json.loads(Path(data["record"]).read_text())
    assert data["requests"] == record["requests"] and data["totals"]["adds"] == 7

    again = run(config_dir, "apply", "--yes", "--no-email", "--format", "json", *AS_OF)
    assert again.exit_code == 0
    assert doc_of(again, "apply")["totals"]["writes"] == 0 and sandbox.stats.writes == 11


def test_apply_json_without_yes_and_no_terminal_refuses_before_any_request(
    sandbox: Sandbox, config_dir: Path
) -> None:
    result = run(config_dir, "apply", "--format", "json", *AS_OF)  # CliRunner: no tty
    assert result.exit_code == 1
    data = doc_of(result, "apply")
    assert data["outcome"] == "not-run" and data["run_id"] is None
    assert "--yes" in data["error"] and "nothing was read or applied" in data["error"]
    assert "error: apply without --yes needs a terminal" in result.stderr
    assert "Apply these changes" not in result.output  # never prompted
    assert sandbox.stats.total == 0 and not (config_dir / "runs").exists()


@pytest.mark.parametrize(
    ("option", "said"),
    [
        (["--as-of", "24/11/2026"], "--as-of: '24/11/2026' is not a date"),
        (["--as-of", "2026-11-24", "--max-duration", "soon"], "--max-duration"),
    ],
)
def test_apply_json_reports_a_malformed_option_too(
    sandbox: Sandbox, config_dir: Path, option: list[str], said: str
) -> None:
    """The command parses these before the apply starts: still the JSON, not stdout empty."""
    result = run(config_dir, "apply", "--yes", "--format", "json", *option)
    assert result.exit_code == 1
    data = doc_of(result, "apply")
    assert data["outcome"] == "not-run" and said in data["error"]
    assert sandbox.stats.total == 0


def test_apply_json_of_a_saved_plan_needs_no_yes(sandbox: Sandbox, config_dir: Path) -> None:
    plan_file = config_dir / "plan.json"
    assert run(config_dir, "plan", "--out", str(plan_file), *AS_OF).exit_code == 0
    result = run(config_dir, "apply", str(plan_file), "--no-email", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert doc_of(result, "apply")["totals"]["writes"] == sandbox.stats.writes == 11


def test_apply_json_reports_a_refused_unsafe_plan_and_its_record(
    sandbox: Sandbox, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")  # recorded in CI; a local attempt is not (issue 28)
    set_setting(config_dir, "min_existing", "1")
    set_setting(config_dir, "max_quantity_change_percent", "1")
    result = run(config_dir, "apply", "--yes", "--no-email", "--format", "json", *AS_OF)
    assert result.exit_code == 3
    data = doc_of(result, "apply")
    assert data["exit_code"] == 3 and data["outcome"] == "failed"
    assert "unsafe plan refused" in data["error"]
    assert data["totals"]["writes"] == 0 and sandbox.stats.writes == 0
    assert Path(data["record"]).is_file()  # the refused run is recorded, and named
    assert data["requests"]["connectwise"]["requests"] > 0


def test_apply_json_when_deactivated(sandbox: Sandbox, config_dir: Path) -> None:
    set_setting(config_dir, "enabled", "false")
    result = run(config_dir, "apply", "--yes", "--format", "json", *AS_OF)
    assert result.exit_code == 1
    data = doc_of(result, "apply")
    assert data["outcome"] == "not-run" and "deactivated" in data["error"]


def test_check_unmapped_json_values_usage_at_the_catalog_price(
    sandbox: Sandbox, config_dir: Path
) -> None:
    text = run(config_dir, "check-unmapped", "--no-email", *AS_OF)
    result = run(config_dir, "check-unmapped", "--no-email", "--format", "json", *AS_OF)
    assert result.exit_code == 0, result.stderr
    data = doc_of(result, "unmapped")
    assert data["period"]["kind"] == "current" and data["currency"] == "USD"
    assert data["email"]["detail"] == "not sent: --no-email"
    assert "e-mail unmapped-sku" in result.stderr
    skus = {(r["customer_id"], r["sku"], r["users"]) for r in data["unmapped_skus"]}
    assert skus
    assert all(r["product"] is None and r["per_month"] is None for r in data["unmapped_skus"])
    for cid, sku, users in skus:  # the same rows the text lists
        assert cid in text.stdout and sku in text.stdout and str(users) in text.stdout
    catalog = {i["identifier"]: Decimal(str(i["price"])) for i in sandbox.catalog.values()}
    assert data["unmapped_customers"]
    for row in data["unmapped_customers"]:
        assert Decimal(row["unit_price"]) == catalog[row["product"]]
        assert Decimal(row["per_month"]) == row["users"] * catalog[row["product"]]
        assert row["customer_id"] in text.stdout
