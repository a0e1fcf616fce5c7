"""Saved plans are verified, not trusted (DESIGN 12.4): `apply PLANFILE` re-derives the plan
(ZeroTek usage for the file's period, ConnectWise now, the current mappings) and refuses,
with zero writes, anything that differs. CLI over the sandbox on loopback."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import world_edits
from clirun import run
from conftest import examples
from hypothesis import HealthCheck, given, settings

from reconciler.config.resources import example_dir
from reconciler.plan import planfile
from reconciler.plan.verify import differences
from reconciler.sandbox import Sandbox, default_fixture

AS_OF = ["--as-of", "2026-11-24"]


def save(config_dir: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = config_dir / "plan.json"
    result = run(config_dir, "plan", *AS_OF, "--out", str(out), *args, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8"))


def apply_saved(config_dir: Path, data: dict[str, Any], *args: str, env=None):
    out = config_dir / "plan.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    return run(config_dir, "apply", str(out), "--yes", "--no-email", *args, env=env)


def change(data: dict[str, Any], action: str, product: str) -> dict[str, Any]:
    return next(
        ch
        for c in data["customers"]
        for ch in c["changes"]
        if ch["action"] == action and ch["product"] == product
    )


# --- the findings ----------------------------------------------------------------------------


def test_an_edited_quantity_is_refused(sandbox, config_dir):
    # Found: editing `after` 42 -> 4200 in plan.json was applied (+16,640.00/month).
    data = save(config_dir)
    target = next(
        ch
        for c in data["customers"]
        for ch in c["changes"]
        if ch["action"] == "update" and ch["after"] == 42
    )
    target["after"] = 4200
    result = apply_saved(config_dir, data)
    assert result.exit_code == 1
    assert "the saved plan differs from the plan re-derived now" in result.output
    assert ", update ZT-OKTA-SSO: after 4200 in the file, 42 now\n" in result.output
    assert sandbox.stats.writes == 0


def test_a_removal_redirected_to_an_unmanaged_addition_is_refused(sandbox, config_dir):
    # Found: changing a removal's addition id to an unmanaged addition cancelled it.
    data = save(config_dir)
    removal = change(data, "remove", "ZT-OKTA-UD")
    helpdesk = next(
        a for a in sandbox.additions(1001) if a["product"]["identifier"] == "MSP-HELPDESK"
    )
    removal["addition_id"] = helpdesk["id"]
    result = apply_saved(config_dir, data)
    assert result.exit_code == 1 and sandbox.stats.writes == 0
    assert f", remove ZT-OKTA-UD: addition_id {helpdesk['id']} in the file" in result.output
    assert sandbox.addition(helpdesk["id"]) == helpdesk


def _zero_users_everywhere(sb: Sandbox) -> None:
    for cid, sku in {(a.customer_id, a.sku) for a in sb.assignments()}:
        world_edits.set_users(sb, cid, sku, 0)


def test_flipping_safe_in_an_unsafe_plan_is_refused(sandbox, config_dir):
    # Found: flipping "safe": true in an unsafe plan applied it without --force.
    _zero_users_everywhere(sandbox)
    data = save(config_dir)
    assert data["safe"] is False and data["unsafe_reasons"]
    flipped = {**data, "safe": True, "unsafe_reasons": []}
    result = apply_saved(config_dir, flipped)
    assert result.exit_code == 1 and sandbox.stats.writes == 0
    assert "  safe: true in the file, false now\n" in result.output  # JSON's words, no reprs
    # the verdict is recomputed: the untouched unsafe plan exits 3, --force applies it
    assert apply_saved(config_dir, data).exit_code == 3 and sandbox.stats.writes == 0
    forced = apply_saved(config_dir, data, "--force")
    assert forced.exit_code == 0, forced.output
    assert sandbox.stats.writes > 0


def test_usage_changed_since_the_plan_is_refused(sandbox, config_dir):
    data = save(config_dir)
    world_edits.set_users(
        sandbox, "zt-0007", "OKTA-SSO", 9
    )  # a late correction in ZeroTek's history
    result = apply_saved(config_dir, data)
    assert result.exit_code == 1 and sandbox.stats.writes == 0
    assert "re-derived" in result.output


def test_an_edited_agreement_with_changes_is_skipped_as_stale_the_others_applied(
    sandbox, config_dir
):
    # 13.7: each agreement with planned changes is read once, just before its first write.
    data = save(config_dir)
    sso = next(a for a in sandbox.additions(1004) if a["product"]["identifier"] == "ZT-OKTA-SSO")
    world_edits.update_addition(sandbox, sso["id"], quantity=26)  # a person, after the plan
    edited = sandbox.additions(1004)
    result = apply_saved(config_dir, data)
    assert result.exit_code == 1, result.output
    assert (
        "zt-0004: stale: agreement 1004 addition #9007 (ZT-OKTA-SSO): quantity 25 → 26 since "
        "the plan was made; skipped, nothing written" in result.output
    )
    assert sandbox.additions(1004) == edited
    others = [c for c in data["customers"] if c["agreement"]["id"] != 1004]
    assert sandbox.stats.writes == sum(len(c["changes"]) for c in others) > 0


def _runs(config_dir: Path) -> dict[str, bytes]:
    runs = config_dir / "runs"
    return {str(p.relative_to(runs)): p.read_bytes() for p in runs.rglob("*") if p.is_file()}


@pytest.mark.parametrize("ci", [False, True])
def test_a_plan_whose_only_changed_customer_is_stale_is_a_refusal(sandbox, config_dir, ci):
    """Found: every change skipped as stale before its first write was recorded in runs/
    as a `failed` sync at a terminal. That attempt failed before its first write, like a
    stale file refused as a whole (issue 28): at a terminal shown, not recorded; in CI
    recorded as `failed` (DESIGN's outcomes have no "stale"); exit 1 either way."""
    env = {"CI": "true"} if ci else None
    assert run(config_dir, "apply", "--yes", "--no-email", *AS_OF).exit_code == 0
    world_edits.set_users(sandbox, "zt-0004", "OKTA-SSO", 30)  # the one change: 27 -> 30
    data = save(config_dir)
    assert [c["id"] for c in data["customers"] if c["changes"]] == ["zt-0004"]
    world_edits.update_addition(sandbox, 9007, quantity=26)  # a person, after the plan
    runs, ledger = _runs(config_dir), (config_dir / "state" / "managed.json").read_bytes()
    writes = sandbox.stats.writes
    result = apply_saved(config_dir, data, env=env)
    assert result.exit_code == 1, result.output
    assert (
        "error: zt-0004: stale: agreement 1004 addition #9007 (ZT-OKTA-SSO): quantity 27 → 26 "
        "since the plan was made; skipped, nothing written" in result.output
    )
    assert sandbox.stats.writes == writes
    added = {k: v for k, v in _runs(config_dir).items() if runs.get(k) != v}
    if not ci:
        assert "(not recorded in runs/: nothing was written" in result.output
        assert added == {} and _runs(config_dir) == runs
        assert (config_dir / "state" / "managed.json").read_bytes() == ledger
        return
    (record,) = [json.loads(v) for k, v in added.items() if k.endswith(".json") and "/" in k
                 and not k.startswith("index/")]  # fmt: skip
    assert record["outcome"] == "failed" and record["totals"]["errors"] == 1


def test_a_forged_snapshot_is_never_written_on_it_is_skipped_as_stale(sandbox, config_dir):
    """Hostile: the snapshot (additions planned from, 13.7) edited consistently, change and
    money and fingerprint too, so the re-derivation agrees. Acme's agreement is read before
    its first write and no longer matches: skipped as stale, the others applied."""
    data = save(config_dir)
    data["state"]["agreements"]["1001"]["additions"]["9001"]["quantity"] = 30
    (acme,) = [c for c in data["customers"] if c["id"] == "zt-0001"]
    (sso,) = acme["changes"]
    assert (sso["addition_id"], sso["before"], sso["after"]) == (9001, 40, 42)
    sso["before"], sso["revenue_delta"] = 30, "48.00"
    acme["revenue_delta"], acme["managed_quantity"] = "48.00", acme["managed_quantity"] - 10
    data["summary"]["revenue_delta"] = str(Decimal(data["summary"]["revenue_delta"]) + 40)
    data["state_fingerprint"] = planfile.fingerprint(data["state"])
    result = apply_saved(config_dir, data)
    assert result.exit_code == 1, result.output
    assert (
        "zt-0001: stale: agreement 1001 addition #9001 (ZT-OKTA-SSO): quantity 30 → 40 since "
        "the plan was made; skipped, nothing written" in result.output
    )
    assert sandbox.addition(9001)["quantity"] == 40
    others = sum(len(c["changes"]) for c in data["customers"] if c["id"] != "zt-0001")
    assert sandbox.stats.writes == others


def test_a_snapshot_without_a_field_planning_needs_is_refused_in_one_line(sandbox, config_dir):
    data = save(config_dir)  # as a plan file of the previous version: no product_id
    del data["state"]["agreements"]["1001"]["additions"]["9001"]["product_id"]
    result = apply_saved(config_dir, data)
    assert result.exit_code == 1 and sandbox.stats.writes == 0
    assert (
        "error: the saved plan's state snapshot is malformed or of another version at "
        "state/agreements/1001/additions/9001: expected product_id; run `reconcile plan` again"
    ) in result.output


def test_an_untouched_plan_applies_and_a_selection_is_re_derived_as_such(sandbox, config_dir):
    data = save(config_dir, "--customer", "zt-0007")
    assert data["selection"] == ["zt-0007"]
    result = apply_saved(config_dir, data)
    assert result.exit_code == 0, result.output
    assert sandbox.stats.writes == sum(len(c["changes"]) for c in data["customers"])
    full = save(config_dir)
    assert full["selection"] is None
    assert apply_saved(config_dir, full).exit_code == 0


def test_revenue_rounded_to_cents_is_accepted_unit_prices_never(sandbox, config_dir):
    skus = config_dir / "mappings" / "skus.yaml"
    text = skus.read_text()
    line = "  product: ZT-OKTA-LCM"
    assert line in text
    skus.write_text(text.replace(line, line + "\n  unit_price: 5.0025", 1))
    data = save(config_dir)
    lcm = change(data, "add", "ZT-OKTA-LCM")
    assert (lcm["after"], lcm["unit_price"], lcm["revenue_delta"]) == (6, "5.0025", "30.015")
    price_edit = json.loads(json.dumps(data))
    change(price_edit, "add", "ZT-OKTA-LCM")["unit_price"] = "5.00"
    refused = apply_saved(config_dir, price_edit)
    assert refused.exit_code == 1 and sandbox.stats.writes == 0
    assert 'add ZT-OKTA-LCM: unit_price "5.00" in the file, "5.0025" now' in refused.output
    rounded = json.loads(json.dumps(data))
    change(rounded, "add", "ZT-OKTA-LCM")["revenue_delta"] = "30.02"  # another tool's cents
    accepted = apply_saved(config_dir, rounded)
    assert accepted.exit_code == 0, accepted.output


def test_differences_is_exact_about_types_and_lengths():
    assert differences({"a": [1, 2]}, {"a": [1, 2]}) == []
    assert differences({"a": True}, {"a": 1}) == ["a: true in the file, 1 now"]
    assert differences({"a": 42.0}, {"a": 42}) == ["a: 42.0 in the file, 42 now"]
    # the same deeper down, where identical subtrees are told apart byte by byte (marshal)
    deep = differences({"a": {"b": [True]}}, {"a": {"b": [1]}})
    assert deep == ["a.b.0: true in the file, 1 now"]
    assert differences({"x": 1, "y": {"z": 2}}, {"y": {"z": 2}, "x": 1}) == []  # key order
    assert differences({"a": [1]}, {"a": [1, 2]}) == ["a: 1 in the file, 2 now"]
    assert differences({"x": 1}, {}) == ["x: in the file only, not in the plan made now"]
    assert differences({"revenue_delta": "12.38"}, {"revenue_delta": "12.375"}) == []
    assert differences({"revenue_delta": "12.39"}, {"revenue_delta": "12.375"}) != []
    assert differences({"unit_price": "4.13"}, {"unit_price": "4.125"}) != []


# --- property: tampering with any number or id is refused with zero writes -------------------


@pytest.fixture(scope="module")
def saved_world(tmp_path_factory) -> Iterator[tuple[Sandbox, Path, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("saved") / "config"
    shutil.copytree(example_dir(), root / "mappings")
    with Sandbox(default_fixture()) as sb:
        yield sb, root, save(root, env=sb.env())


_ID_KEYS = {"id", "sku", "product", "company", "customer_id", "config_digest",
            "state_fingerprint", "kind", "start", "end", "as_of", "effective_date",
            "cancelled_date", "bill_start_date", "end_date"}  # fmt: skip


def _targets(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every number, money string and identifier in the plan JSON (state included)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _targets(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _targets(item, (*path, i))
    elif (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str)
        and path
        and (
            path[-1] in _ID_KEYS
            or path[-1] in ("unit_price", "unit_cost", "revenue_delta")
            or (len(path) >= 2 and path[-2] in ("additions", "agreements"))
        )
    ):
        yield path, value


def _tamper(value: Any, delta: int) -> Any:
    if isinstance(value, int):
        return value + delta
    if isinstance(value, float):
        return value + delta
    try:
        number = Decimal(value)
    except ArithmeticError:
        number = None
    if number is not None and number.is_finite() and "-" not in value[1:]:
        return str(number + delta)  # money: whole units, never a cent rounding
    return value + "X" if delta > 0 else "X" + value


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(pick=st.integers(min_value=0), delta=st.sampled_from([-7, -1, 1, 2, 1000]))
def test_property_any_tampered_number_or_id_is_refused(saved_world, pick, delta):
    sb, root, data = saved_world
    targets = list(_targets(data))
    path, value = targets[pick % len(targets)]
    tampered = json.loads(json.dumps(data))
    node = tampered
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = _tamper(value, delta)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "plan.json"
        out.write_text(json.dumps(tampered), encoding="utf-8")
        writes = sb.stats.writes
        result = run(root, "apply", str(out), "--yes", "--no-email", env=sb.env())
    assert result.exit_code == 1, (path, value, result.output)
    assert sb.stats.writes == writes, (path, value)


def test_differences_in_a_large_state_are_found_slice_by_slice():
    """The state's agreements (thousands) are compared a slice at a time: a difference in
    any slice, the last one's last agreement included, is found and named; so is one key
    too many, and true against 1 deep in a slice."""

    def state(n=1234):
        return {
            "agreements": {str(i): {"status": "Active", "additions": [[i, 5]]} for i in range(n)}
        }

    same = state()
    assert differences({"state": state()}, {"state": same}) == []
    last = state()
    last["agreements"]["1233"]["additions"][0][1] = 6
    assert differences({"state": last}, {"state": same}) == [
        "agreement 1233 addition #0: 1 6 in the file, 5 now"
    ]
    typed = state()
    typed["agreements"]["700"]["additions"][0][1] = 5.0
    assert differences({"state": typed}, {"state": same}) == [
        "agreement 700 addition #0: 1 5.0 in the file, 5 now"
    ]
    extra = state(1235)
    assert differences({"state": extra}, {"state": same}) == [
        "agreement 1234: in the file only, not in the plan made now"
    ]
    reordered = {"agreements": dict(reversed(list(same["agreements"].items())))}
    assert differences({"state": reordered}, {"state": same}) == []  # key order
