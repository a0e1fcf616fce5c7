"""`discover`: name matching (pure) and the command end to end over the sandbox."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import jsonschema
import pytest
import yaml
from clirun import run

from reconciler.config.loader import load_config
from reconciler.config.resources import example_dir, load_schema
from reconciler.core.state import Agreement
from reconciler.insight.matching import choose_agreement, score_names, tokens
from reconciler.sandbox import Sandbox
from reconciler.sandbox.discovery import discovery_fixture

AS_OF = ["--as-of", "2026-11-24"]
TODAY = dt.date(2026, 11, 24)


# --- matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Globex Corporation", "Globex Corp"),
        ("Wonka Industries GmbH", "wonka industries"),
        ("Café Zürich GmbH", "Cafe Zurich"),
        ("Smith & Sons (UK), Ltd", "Smith and Sons UK"),
        ("Intl Widgets", "International Widgets, Inc."),
        ("Łódź Print Sp", "Lodz Print"),
        ("Bright Smile, P.C.", "Bright Smile"),
    ],
)
def test_variants_of_one_name_score_at_least_0_95(a, b):
    assert score_names(a, b).score >= 0.95


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Acme", "Acme Health Partners"),
        ("Northwind Traders", "Southwind Traders"),
        ("Globex", "Globix"),  # one letter apart: maybe a typo, maybe another company
        ("Contoso Health", "Contoso Pharma"),
        ("IBM", "International Business Machines"),  # an acronym is a hint, not proof
        ("Sunrise Bakery", "Sunset Bakery"),
    ],
)
def test_different_or_uncertain_names_stay_below_0_9(a, b):
    assert score_names(a, b).score < 0.9


def test_legal_form_words_are_dropped_only_at_the_end():
    assert tokens("Co-operative Bank Ltd") == ("co", "operative", "bank")
    assert tokens("Johnson & Johnson & Co") == ("johnson", "johnson")
    assert tokens("Inc") == ("inc",)  # a name that is only a suffix keeps it


def _agreement(aid: int, name: str, status: str = "Active", **kw) -> Agreement:
    return Agreement(aid, name, 1, status=status, no_ending_date="end_date" not in kw, **kw)


def test_agreement_choice_never_picks_a_dead_one_and_flags_ties():
    dead = [
        _agreement(1, "Old", "Cancelled", cancelled=True),
        _agreement(2, "2023", "Expired"),
        _agreement(3, "Ended", end_date=dt.date(2026, 1, 1)),
        _agreement(4, "Paused", "Inactive"),
    ]
    assert choose_agreement(dead, TODAY).agreement is None
    one = choose_agreement([*dead, _agreement(5, "Live")], TODAY)
    assert one.agreement is not None and one.agreement.id == 5 and one.factor == 1.0
    two = [_agreement(5, "Helpdesk"), _agreement(6, "Okta Licensing")]
    picked = choose_agreement(two, TODAY)
    assert picked.agreement is not None and picked.agreement.id == 6
    typed = choose_agreement(
        [_agreement(5, "Helpdesk"), _agreement(6, "Projects")], TODAY, types={5: "Licensing"}
    )
    assert typed.agreement is not None and typed.agreement.id == 5
    tie = choose_agreement([_agreement(5, "Helpdesk"), _agreement(6, "Projects")], TODAY)
    assert tie.agreement is None and "pick one" in tie.reason
    taken = choose_agreement([_agreement(5, "Live")], TODAY, taken={5: "zt-0001"})
    assert taken.agreement is None and "zt-0001" in taken.reason


# --- end to end over the sandbox ----------------------------------------------------------------


@pytest.fixture
def world(monkeypatch, tmp_path):
    fixture, expected = discovery_fixture()
    root = tmp_path / "config"
    shutil.copytree(example_dir(), root / "mappings")
    with Sandbox(fixture) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb, root, expected


def test_json_proposals_meet_the_targets_and_nothing_is_written(world):
    sb, root, expected = world
    before = {p: p.read_bytes() for p in (root / "mappings").iterdir()}
    result = run(root, "discover", "--format", "json", *AS_OF)
    assert result.exit_code == 0, result.output
    jsonschema.validate(json.loads(result.stdout), load_schema("discover"))
    rows = {c["id"]: c for c in json.loads(result.stdout)["customers"]}
    matches = [cid for cid, e in expected.items() if e.kind == "match"]
    right = [
        cid
        for cid in matches
        if rows[cid]["agreement"]
        and rows[cid]["company"]["identifier"] == expected[cid].company
        and rows[cid]["agreement"]["id"] == expected[cid].agreement
    ]
    assert len(right) / len(matches) >= 0.9
    for cid, e in expected.items():
        if e.kind != "match":
            assert rows[cid]["confidence"] < 0.9, rows[cid]
    assert rows["zt-0156"]["candidates"] == ["APEXLLC", "APEXINC"]  # tie: flagged
    assert "zt-0999" not in rows  # inactive in ZeroTek
    assert not set(rows) & {c.id for c in load_config(root).customers}  # mapped: untouched
    skus = {s["sku"]: s for s in json.loads(result.stdout)["skus"]}
    assert skus["OKTA-PAM"]["product"]["identifier"] == "ZT-OKTA-PAM"
    assert skus["OKTA-PAM"]["confidence"] >= 0.9
    assert skus["OKTA-IGA"]["confidence"] < 0.9
    assert sb.stats.writes == 0
    assert not any(k.startswith(("POST", "PATCH", "DELETE")) for k in sb.stats.requests)
    assert before == {p: p.read_bytes() for p in (root / "mappings").iterdir()}


def test_yaml_output_pastes_into_the_mapping_files(world):
    _, root, _ = world
    result = run(root, "discover", *AS_OF)
    assert result.exit_code == 0, result.output
    customers, skus = yaml.safe_load_all(result.stdout)  # the header is only comments
    assert {"id", "name", "company", "agreement"} <= set(customers[0])
    assert any(c["company"] == "CYBERDYNE" for c in customers)
    assert skus == [{"sku": "OKTA-PAM", "product": "ZT-OKTA-PAM"}]
    assert "# confidence 0.98: name match 0.98: 'Hooli Inc.' ~ 'Hooli'" in result.stdout
    assert "# not proposed: zt-0156 'Apex Consulting'" in result.stdout


def test_write_appends_validates_and_plan_includes_the_new_customers(world):
    sb, root, expected = world
    files = [root / "mappings" / n for n in ("customers.yaml", "skus.yaml", "settings.yaml")]
    before = {p: p.read_bytes() for p in files}
    result = run(root, "discover", "--write", *AS_OF)
    assert result.exit_code == 0, result.output
    assert "appended" in result.stderr and "mappings valid" in result.stderr
    for p in files:
        assert p.read_bytes().startswith(before[p])  # existing bytes untouched
    assert files[2].read_bytes() == before[files[2]]
    config = load_config(root)  # validates
    added = {c.id: c for c in config.customers}
    for cid, e in expected.items():
        if e.kind != "match":
            assert cid not in added
    confident = [cid for cid, e in expected.items() if e.kind == "match" and cid in added]
    assert len(confident) >= 0.9 * sum(e.kind == "match" for e in expected.values())
    for cid in confident:
        assert added[cid].company == expected[cid].company
        assert added[cid].agreement == expected[cid].agreement
    assert config.sku("OKTA-PAM") is not None

    plan = run(root, "plan", "--format", "json", *AS_OF)
    assert plan.exit_code == 0, plan.output
    planned = {c["id"] for c in json.loads(plan.stdout)["customers"]}
    assert set(confident) <= planned
    assert sb.stats.writes == 0

    again = run(root, "discover", "--write", *AS_OF)  # mapped now: nothing more to add
    assert again.exit_code == 0
    assert "no file changed" in again.stderr


def test_write_that_would_not_validate_restores_every_file(world):
    _, root, _ = world
    path = root / "mappings" / "customers.yaml"
    # Flow style without a final newline: appended block items cannot join that list.
    flow = b"[{id: zt-0001, name: Acme Corp, company: ACME, agreement: 1001}]"
    path.write_bytes(flow)
    skus = (root / "mappings" / "skus.yaml").read_bytes()
    result = run(root, "discover", "--write", *AS_OF)
    assert result.exit_code == 1
    assert "customers.yaml:" in result.stderr
    assert path.read_bytes() == flow
    assert (root / "mappings" / "skus.yaml").read_bytes() == skus


def test_hostile_names_cannot_escape_the_yaml(monkeypatch, tmp_path):
    fixture, _ = discovery_fixture()
    evil = 'Evil\n- id: injected\n  company: X # "quoted" \u2028 trail'
    fixture.zerotek_customers.append({"id": "zt-0666", "name": evil, "status": "active"})
    fixture.companies.append({"id": 990, "identifier": "EVIL", "name": evil, "deletedFlag": False})
    fixture.agreements.append(
        {**fixture.agreements[0], "id": 9900, "name": "Agr\nkey: 1", "company": {"id": 990}}
    )
    root = tmp_path / "config"
    shutil.copytree(example_dir(), root / "mappings")
    with Sandbox(fixture) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        result = run(root, "discover", "--write", *AS_OF)
    assert result.exit_code == 0, result.output
    customers = next(yaml.safe_load_all(result.stdout))
    row = next(c for c in customers if c["id"] == "zt-0666")
    assert row["name"] == evil and row["company"] == "EVIL" and row["agreement"] == 9900
    assert all(c["id"] != "injected" for c in customers)
    written = {c.id: c for c in load_config(root).customers}
    assert written["zt-0666"].name == evil


def test_write_with_split_customer_files_adds_its_own_file(world):
    _, root, _ = world
    mappings = root / "mappings"
    (mappings / "customers").mkdir()
    (mappings / "customers.yaml").rename(mappings / "customers" / "team-a.yaml")
    team_a = (mappings / "customers" / "team-a.yaml").read_bytes()
    result = run(root, "discover", "--write", *AS_OF)
    assert result.exit_code == 0, result.output
    assert "mappings/customers/discovered.yaml" in result.stderr
    assert (mappings / "customers" / "team-a.yaml").read_bytes() == team_a
    ids = {c.id for c in load_config(root).customers}
    assert "zt-0101" in ids and "zt-0001" in ids
