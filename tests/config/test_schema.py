"""Schema errors become `file:line:col: what is wrong, what was expected` at the right node."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from reconciler.config import problem_output, schema, schema_formats
from reconciler.config.resources import load_schema
from reconciler.config.yamlsource import parse
from reconciler.core.errors import Problem
from reconciler.core.model import Location, Notifications, Safety, Settings

SCHEMAS = ["settings", "skus", "customers"]


def check(text: str, name: str, file: str = "f.yaml") -> list[str]:
    return [str(p) for p in schema.validate(parse(text, file, "x"), name)]


# --- the schemas themselves ------------------------------------------------------------------


def _objects(node: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append((path, node))
        for key, value in node.items():
            found += _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _objects(value, f"{path}/{i}")
    return found


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    document = load_schema(name)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    schema.validator(name)  # check_schema raises on an invalid schema


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_object_is_closed_and_every_property_described(name: str) -> None:
    objects = _objects(load_schema(name))
    assert objects
    for path, obj in objects:
        if "properties" not in obj:  # a map (customers' prices): keys checked, values described
            assert obj.get("propertyNames"), path
            assert obj["additionalProperties"].get("description"), path
            continue
        assert obj.get("additionalProperties") is False, path
        for key, prop in obj["properties"].items():
            assert prop.get("description"), f"{path}/properties/{key}"


def test_settings_defaults_match_the_model_defaults() -> None:
    props = load_schema("settings")["properties"]

    def default(section: str, key: str) -> Any:
        return props[section]["properties"][key]["default"]

    d = Settings()
    assert props["enabled"]["default"] is d.enabled
    assert default("connectwise", "max_concurrency") == d.max_concurrency
    assert default("usage", "source") == d.usage_source
    assert default("usage", "path") == d.usage_path
    assert default("billing", "sync_day") == d.sync_day == 15
    assert default("billing", "timezone") == d.timezone == "UTC"
    assert default("billing", "add_missing") is d.add_missing is True
    assert default("billing", "removal") == d.removal.value == "cancel"
    assert default("billing", "reprice") is d.reprice is False
    for field in dataclasses.fields(Safety):
        assert default("safety", field.name) == getattr(Safety(), field.name)
    assert (
        default("notifications", "agreement_end_warning_days")
        == Notifications().agreement_end_warning_days
        == 30
    )


# --- messages and locations -------------------------------------------------------------------


def test_unknown_key_suggests_the_closest_known_key() -> None:
    assert check("billing:\n  sync_dya: 15\n", "settings") == [
        "f.yaml:2:3: billing: unknown key 'sync_dya', did you mean 'sync_day'?"
    ]


def test_unknown_key_without_a_close_match_lists_the_keys() -> None:
    (problem,) = check("- sku: A\n  product: P\n  colour: red\n", "skus")
    assert problem == (
        "f.yaml:3:3: unknown key 'colour', expected one of: "
        "sku, product, unit_price, unit_cost, description"
    )


def test_missing_required_key_points_at_the_mapping_that_lacks_it() -> None:
    assert check("- sku: A\n  product: P\n-   sku: B\n", "skus") == [
        "f.yaml:3:5: missing required key 'product'"
    ]


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        (
            '- sku: A\n  product: P\n  unit_price: "ten"\n',
            "skus",
            "f.yaml:3:15: unit_price: expected a number, got string 'ten'",
        ),
        (
            'billing:\n  sync_day: "15"\n',
            "settings",
            "f.yaml:2:13: billing.sync_day: expected an integer, got string '15'; "
            "write the number without quotes",
        ),
        (
            "billing:\n  add_missing: yes\n",
            "settings",
            "f.yaml:2:16: billing.add_missing: expected true or false, got string 'yes'; "
            "write true or false",
        ),
        (
            "billing:\n  sync_day: 31\n",
            "settings",
            "f.yaml:2:13: billing.sync_day: expected an integer from 1 to 28, got 31",
        ),
        (
            "safety:\n  max_removal_percent: 100.5\n",
            "settings",
            "f.yaml:2:24: safety.max_removal_percent: expected a number from 0 to 100, got 100.5",
        ),
        (
            "- sku: A\n  product: P\n  unit_cost: -1\n",
            "skus",
            "f.yaml:3:14: unit_cost: expected a number from 0 to 1000000, got -1",
        ),
        (
            "billing:\n  removal: cancelled\n",
            "settings",
            "f.yaml:2:12: billing.removal: expected one of: cancel, zero, delete; "
            "got string 'cancelled'; did you mean 'cancel'?",
        ),
        (
            "billing:\n  timezone: Europe/Londn\n",
            "settings",
            "f.yaml:2:13: billing.timezone: expected an IANA time zone name such as UTC or "
            "Europe/London, got string 'Europe/Londn'; did you mean 'Europe/London'?",
        ),
        (
            "notifications:\n  billing: [billing@msp.example, 'ops at msp.example']\n",
            "settings",
            "f.yaml:2:34: notifications.billing[1]: expected an e-mail address such as "
            "ops@msp.example, got string 'ops at msp.example'",
        ),
        (
            "zerotek:\n  api_url: ftp://zt.example/\n",
            "settings",
            "f.yaml:2:12: zerotek.api_url: expected a URL starting with https://, "
            "got string 'ftp://zt.example/'",
        ),
        (
            "connectwise:\n  api_url: https://\n",
            "settings",
            "f.yaml:2:12: connectwise.api_url: expected an absolute URL such as "
            "https://host/path, got string 'https://'",
        ),
        (
            "- sku: OKTA SSO\n  product: P\n",
            "skus",
            "f.yaml:1:8: sku: expected letters, digits, '.', '_' or '-' (no spaces), "
            "got string 'OKTA SSO'",
        ),
        (
            # catalog identifiers may have 75 characters (found: capped at 60)
            "- sku: A\n  product: " + "X" * 76 + "\n",
            "skus",
            # long values are shortened in messages
            "f.yaml:2:12: product: expected at most 75 characters, got 76: '" + "X" * 57 + "...'",
        ),
        (
            "- {id: zt-1, name: A, company: C, agreement: 0}\n",
            "customers",
            "f.yaml:1:46: agreement: expected an integer >= 1, got 0",
        ),
        (
            "- {id: zt-1, name: A, company: C, agreement: ''}\n",
            "customers",
            "f.yaml:1:46: agreement: expected a non-empty string",
        ),
        (
            "- {id: zt-1, name: A, company: C, agreement: false}\n",
            "customers",
            "f.yaml:1:46: agreement: expected an integer or a string, got false",
        ),
        (
            "- {id: zt-1, name: A, company: C, agreement: 1, exclude_skus: [X, Y, X]}\n",
            "customers",
            "f.yaml:1:70: exclude_skus: duplicate entry 'X' (first at f.yaml:1:64)",
        ),
        (
            "sku: A\nproduct: P\n",
            "skus",
            "f.yaml:1:1: expected a list, got a mapping",
        ),
        (
            "- id: zt-1\n  name: A\n  company: C\n  agreement: 1\n  shared_agreement: 'yes'\n",
            "customers",
            "f.yaml:5:21: shared_agreement: expected true or false, got string 'yes'; "
            "write true or false",
        ),
    ],
)
def test_message_and_location(text: str, name: str, expected: str) -> None:
    assert check(text, name) == [expected]


def test_all_errors_are_reported_sorted_by_line() -> None:
    problems = check(
        "billing:\n  sync_day: 0\n  timezone: Mars/Base\nsafety:\n  min_existing: -1\nfoo: 1\n",
        "settings",
    )
    assert [p.split(": ", 1)[0] for p in problems] == [
        "f.yaml:2:13",
        "f.yaml:3:13",
        "f.yaml:5:17",
        "f.yaml:6:1",
    ]


def test_the_example_settings_value_set_is_valid() -> None:
    text = (
        "enabled: true\nconnectwise: {api_url: 'https://cw.example/x', max_concurrency: 8}\n"
        "usage: {source: csv, path: usage/a.csv}\n"
        "billing: {sync_day: 28, timezone: America/Chicago, add_missing: false, removal: delete}\n"
        "safety: {max_removal_percent: 0, max_quantity_change_percent: 100, min_existing: 0}\n"
        "notifications: {administrators: [a.b+c@x-y.example.co.uk], billing: []}\n"
    )
    assert check(text, "settings") == []


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("ops@msp.example", True),
        ("first.last+tag@sub.msp-example.co.uk", True),
        ("o'brien@msp.example", True),
        ("ops@msp", False),
        ("ops.msp.example", False),
        ("ops@@msp.example", False),
        ("ops @msp.example", False),
        (".ops@msp.example", False),
        ("ops@-msp.example", False),
        ("ops@msp.example.", False),
    ],
)
def test_email_format(address: str, ok: bool) -> None:
    assert schema_formats.is_email(address) is ok


@pytest.mark.parametrize(
    ("name", "ok"),
    [("UTC", True), ("Europe/London", True), ("America/Argentina/Buenos_Aires", True),
     ("Europe/Londn", False), ("GMT+1", False), ("", False)],
)  # fmt: skip
def test_timezone_format(name: str, ok: bool) -> None:
    assert schema_formats.is_timezone(name) is ok


# --- reporting -----------------------------------------------------------------------------


def test_github_annotation_escapes_workflow_command_syntax() -> None:
    problem = Problem(Location("mappings/a,b.yaml", 3, 5), "50% bad: x\nnext")
    assert problem_output.github_annotation(problem) == (
        "::error file=mappings/a%2Cb.yaml,line=3,col=5::50%25 bad: x%0Anext"
    )
    assert problem_output.github_annotation(Problem(Location("mappings"), "gone")) == (
        "::error file=mappings::gone"
    )


def test_problems_json_shape() -> None:
    problems = [
        Problem(Location("b.yaml", 1, 1), "second"),
        Problem(Location("a.yaml", 9, 2), "first"),
    ]
    assert problem_output.problems_json(problems) == {
        "valid": False,
        "errors": [
            {"file": "a.yaml", "line": 9, "col": 2, "message": "first"},
            {"file": "b.yaml", "line": 1, "col": 1, "message": "second"},
        ],
    }
    assert problem_output.problems_json([]) == {"valid": True, "errors": []}


# --- the fast path for long lists agrees with jsonschema ------------------------------------

from conftest import examples  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=10**6),
    st.sampled_from([1.0, 0.5, 1e308, -2.0, 3.25, 0.0]),
    st.sampled_from(["", " ", "zt-1", "a b", "ACME", "OKTA-SSO", "x" * 80, "1", "é"]),
)
_values = st.one_of(
    st.sampled_from([1.0, 1e308, 7.0]),  # integral floats: where the two engines differ
    _scalars,
    st.lists(_scalars, max_size=3),
    st.dictionaries(st.just("k"), _scalars),
)


_VALID = {
    "skus": {"sku": "OKTA-SSO", "product": "ZT-SSO", "unit_price": 3},
    "customers": {"id": "zt-1", "name": "Acme", "company": "ACME", "agreement": 7},
}


def _items(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """A valid item with one or two keys changed, added or dropped: near the boundary."""
    keys = st.sampled_from([*load_schema(name)["items"]["properties"], "colour"])

    def edit(changes: dict[str, Any], drop: set[str]) -> dict[str, Any]:
        item = {**_VALID[name], **changes}
        return {k: v for k, v in item.items() if k not in drop}

    return st.builds(edit, st.dictionaries(keys, _values, max_size=2), st.sets(keys, max_size=1))


@pytest.mark.parametrize("name", ["skus", "customers"])
def test_fast_item_check_agrees_with_jsonschema(name: str) -> None:
    checks = schema._item_checks(name)
    assert checks is not None
    _, fast = checks

    @settings(max_examples=examples(600), deadline=None)
    @given(_items(name))
    def agree(item: dict[str, Any]) -> None:
        valid = schema.validator(name).is_valid([item])
        # Never passes what jsonschema refuses; refuses only what it refuses, except items
        # holding a float, which it hands to jsonschema to decide (1.0 is not an integer).
        assert valid if fast(item) else (not valid or schema._has_float(item)), item

    agree()
