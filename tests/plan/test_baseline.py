"""plan --baseline (12.7): every change labelled change / drift / dropped, and the pull
request's own delta. The pure comparison here; the end-to-end run is in test_workflows."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from decimal import Decimal

import clirun
import jsonschema
from plan_builders import PERIOD

from reconciler.config.resources import load_schema
from reconciler.core.plan import Action, Change, CustomerPlan, Plan
from reconciler.plan import baseline_render
from reconciler.plan.baseline import compare


def _change(cid: str, action: Action, sku: str, before: int, after: int, price: str = "4.00",
            addition: int | None = 7) -> Change:  # fmt: skip
    return Change(action, cid, sku, f"ZT-{sku}", 900, 1000, None if action is Action.ADD else
                  addition, before, after, Decimal(price))  # fmt: skip


def _plan(*customers: tuple[str, tuple[Change, ...]]) -> Plan:
    return Plan(PERIOD, tuple(CustomerPlan(cid, f"name {cid}", "CO", 1000, "A", None, ch)
                              for cid, ch in customers))  # fmt: skip


DRIFT = _change("c1", Action.UPDATE, "OKTA-SSO", 40, 42)
NEW = _change("c2", Action.ADD, "OKTA-SSO", 0, 6)
GONE = _change("c3", Action.REMOVE, "OKTA-UD", 7, 0, "2.50")
HEAD_QTY = _change("c4", Action.UPDATE, "OKTA-MFA", 10, 12)
BASE_QTY = _change("c4", Action.UPDATE, "OKTA-MFA", 10, 11)


def test_each_change_is_labelled_and_the_pull_request_delta_is_its_own() -> None:
    base = _plan(("c1", (DRIFT,)), ("c3", (GONE,)), ("c4", (BASE_QTY,)), ("c5", (DRIFT,)))
    head = _plan(("c1", (DRIFT,)), ("c2", (NEW,)), ("c3", ()), ("c4", (HEAD_QTY,)))
    cmp = compare(head, base)
    causes = {(cc.customer.customer_id, x.change, x.cause) for cc in cmp.customers
              for x in cc.labelled}  # fmt: skip
    assert causes == {
        ("c1", DRIFT, "drift"),
        ("c2", NEW, "change"),
        ("c3", GONE, "dropped"),  # the pull request excludes the SKU: no removal any more
        ("c4", HEAD_QTY, "change"),  # a different quantity is this pull request's doing
        ("c4", BASE_QTY, "dropped"),
        ("c5", DRIFT, "dropped"),  # the pull request removed c5's mapping
    }
    # +6x4 (new) +7x2.50 (no longer removed) +2x4 (c4 head) -1x4 (c4 base) +2x4 (c5 gone)
    assert cmp.pull_request_delta == Decimal("24") + Decimal("17.5") + 8 - 4 - 8
    assert cmp.pull_request_delta == head.revenue_delta - base.revenue_delta
    assert cmp.delta("drift") == Decimal("8")


def test_identical_plans_are_all_drift_and_the_pull_request_changes_nothing() -> None:
    plan = _plan(("c1", (DRIFT, NEW)))
    cmp = compare(plan, plan)
    assert cmp.of("change", "dropped") == () and cmp.pull_request_delta == 0
    md = baseline_render.markdown_compared(cmp)
    mine, drift = md.split("#### This pull request")[1].split("#### Drift")
    assert "changes nothing in ConnectWise" in mine
    assert "**c1**" in drift


def test_a_change_only_in_price_is_the_pull_requests() -> None:
    repriced = replace(DRIFT, unit_price=Decimal("4.5"))
    cmp = compare(_plan(("c1", (repriced,))), _plan(("c1", (DRIFT,))))
    assert [x.cause for x in cmp.customers[0].labelled] == ["change", "dropped"]


def test_markdown_leads_with_the_pull_request_then_drift() -> None:
    base = _plan(("c1", (DRIFT,)), ("c3", (GONE,)))
    head = _plan(("c1", (DRIFT,)), ("c2", (NEW,)), ("c3", ()))
    md = baseline_render.markdown_compared(compare(head, base), note=None)
    assert md.index("#### This pull request") < md.index("#### Drift")
    mine, drift = md.split("#### This pull request")[1].split("#### Drift")
    assert "**+41.50 USD**" in mine  # 6 x 4.00 + 7 x 2.50 no longer removed
    assert "**c2**" in mine and "**c3**" in mine and "**c1**" not in mine
    assert "no longer remove" in mine
    assert "**c1**" in drift and "**c2**" not in drift and "+8.00" in drift


def test_json_carries_the_cause_of_every_change_and_matches_the_schema() -> None:
    base = _plan(("c1", (DRIFT,)), ("c3", (GONE,)), ("c5", (DRIFT,)))
    head = _plan(("c1", (DRIFT,)), ("c2", (NEW,)), ("c3", ()))
    data = json.loads(baseline_render.json_compared(compare(head, base), "a note"))
    jsonschema.validate(data, load_schema("plan.schema.json"))
    causes = {c["id"]: [ch["cause"] for ch in c["changes"]] for c in data["customers"]}
    assert causes == {"c1": ["drift"], "c2": ["change"], "c3": ["dropped"], "c5": ["dropped"]}
    assert data["baseline"] == {
        "pull_request_revenue_delta": "33.50", "drift_revenue_delta": "8.00",
        "change": 1, "drift": 1, "dropped": 2, "note": "a note",
    }  # fmt: skip
    assert data["summary"]["revenue_delta"] == "32.00"  # the head plan's own totals


def test_both_plans_come_from_one_read_of_both_apis(sandbox, config_dir, tmp_path) -> None:
    """--baseline costs no extra request: the same reads as a plain plan, shared."""
    base = tmp_path / "base"
    shutil.copytree(config_dir / "mappings", base / "mappings")
    args = ["--config-dir", str(config_dir), "plan", "--as-of", "2026-11-24", "--format", "json"]
    plain = clirun.invoke(*args)
    assert plain.exit_code == 0, plain.output
    alone = dict(sandbox.stats.requests)
    sandbox.stats.requests.clear()
    both = clirun.invoke(*args, "--baseline", str(base))
    assert both.exit_code == 0, both.output
    assert dict(sandbox.stats.requests) == alone  # request for request, kind by kind
    data = json.loads(both.stdout)
    assert data["baseline"]["change"] == data["baseline"]["dropped"] == 0
    assert data["baseline"]["drift"] == sum(len(c["changes"]) for c in data["customers"]) > 0
