import json
from dataclasses import replace
from decimal import Decimal

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from plan_builders import CATALOG, addition, config, customer, state, usage

from reconciler.config.resources import load_schema
from reconciler.core.errors import ReconcileError
from reconciler.plan import planfile
from reconciler.plan.planner import plan


def _sample():
    cfg = config(customer("zt-1"), customer("zt-2", company="GHOST"))
    actual = state(addition(1, "ZT-OKTA-SSO", 40), addition(2, "MSP-HELPDESK", 3))
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 42, "OKTA-WF": 2, "OKTA-PAM": 1}}), actual)
    return p, actual


def test_json_round_trip_and_schema(tmp_path) -> None:
    p, actual = _sample()
    snap = planfile.snapshot(p, actual, {"ZT-OKTA-SSO", "ZT-OKTA-MFA", "ZT-OKTA-WF"})
    text = planfile.dumps(p, snap)
    data = json.loads(text)
    jsonschema.Draft202012Validator(load_schema("plan.schema.json")).validate(data)
    assert data["summary"] == {
        "customers": 2,
        "customers_with_changes": 1,
        "customers_with_errors": 1,
        "add": 1,
        "update": 1,
        "remove": 0,
        "revenue_delta": "21.00",
    }
    f = tmp_path / "plan.json"
    f.write_text(text)
    loaded, loaded_state = planfile.load(f)
    assert loaded == p and loaded_state == snap
    assert planfile.dumps(loaded, loaded_state) == text  # byte-identical re-serialisation


def test_snapshot_ignores_what_is_not_ours_and_fingerprint_tracks_the_rest() -> None:
    p, actual = _sample()
    products = {"ZT-OKTA-SSO", "ZT-OKTA-MFA", "ZT-OKTA-WF"}
    snap = planfile.snapshot(p, actual, products)
    assert snap["agreements"] == {
        "1001": {
            "status": "Active",
            "cancelled": False,
            "end_date": None,
            "bill_start_date": None,
            # every field planning reads (snapshot.py): the state `apply PLANFILE` plans from
            "additions": {
                "1": {
                    "product": "ZT-OKTA-SSO",
                    "product_id": CATALOG["ZT-OKTA-SSO"].id,
                    "quantity": 40,
                    "unit_price": "4.00",
                    "bill_customer": None,
                    "effective_date": None,
                    "cancelled_date": None,
                }
            },
        }
    }
    other = state(addition(1, "ZT-OKTA-SSO", 40), addition(2, "MSP-HELPDESK", 99))
    assert planfile.fingerprint(planfile.snapshot(p, other, products)) == planfile.fingerprint(snap)
    moved = state(addition(1, "ZT-OKTA-SSO", 41))
    moved_snap = planfile.snapshot(p, moved, products)
    assert planfile.fingerprint(moved_snap) != planfile.fingerprint(snap)
    assert planfile.describe_drift(snap, moved_snap) == [
        "agreement 1001 addition #1 (ZT-OKTA-SSO): quantity 40 → 41 since the plan was made"
    ]
    # a price moved since the plan makes it stale too (DESIGN 13.4)
    repriced = state(replace(addition(1, "ZT-OKTA-SSO", 40), unit_price=Decimal("4.25")))
    assert planfile.describe_drift(snap, planfile.snapshot(p, repriced, products)) == [
        "agreement 1001 addition #1 (ZT-OKTA-SSO): unit price 4.00 → 4.25 since the plan was made"
    ]
    extra = state(addition(1, "ZT-OKTA-SSO", 40), addition(7, "ZT-OKTA-MFA", 2))
    assert planfile.describe_drift(snap, planfile.snapshot(p, extra, products)) == [
        "agreement 1001 addition #7 (ZT-OKTA-MFA): added since the plan was made (quantity 2)"
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "plan.json:1:2: not a plan file (invalid JSON)"),
        ('{"format": "x"}', "plan.json: not a valid plan file at"),
        (b"\xff\xfe", "plan.json: not a plan file (invalid JSON)"),
    ],
)
def test_bad_plan_files_are_one_clear_line(tmp_path, content, message) -> None:
    f = tmp_path / "plan.json"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ReconcileError) as err:
        planfile.load(f)
    assert str(err.value).replace(str(tmp_path) + "/", "").startswith(message)
    assert "\n" not in str(err.value)


def test_plan_without_state_is_refused(tmp_path) -> None:
    p, _ = _sample()
    f = tmp_path / "plan.json"
    f.write_text(planfile.dumps(p))
    with pytest.raises(ReconcileError, match="has no state snapshot"):
        planfile.load(f)


def _saved(tmp_path, edit):
    p, actual = _sample()
    data = json.loads(planfile.dumps(p, planfile.snapshot(p, actual, {"ZT-OKTA-SSO"})))
    edit(data)
    f = tmp_path / "plan.json"
    f.write_text(json.dumps(data))
    return f


def _set(path, value):
    def edit(data):
        *parents, last = path
        for key in parents:
            data = data[key]
        if value is KeyError:
            del data[last]
        else:
            data[last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set(("customers", 0, "changes", 0, "after"), "5"), "customers/0/changes/0/after: "
         "expected an integer, got '5'"),
        (_set(("customers", 0, "changes", 0, "after"), -1), "customers/0/changes/0/after: "
         "expected an integer >= 0, got -1"),
        (_set(("customers", 0, "changes", 0, "before"), True), "customers/0/changes/0/before: "
         "expected an integer, got true"),
        (_set(("customers", 0, "changes", 0, "unit_price"), 1.5), "customers/0/changes/0/"
         "unit_price: expected a decimal number in a string, got 1.5"),
        (_set(("customers", 0, "changes", 0, "unit_price"), "NaN"), "customers/0/changes/0/"
         "unit_price: expected a finite decimal number, got 'NaN'"),
        (_set(("customers", 0, "changes", 0, "action"), "steal"), "customers/0/changes/0/"
         "action: expected add, update or remove"),
        (_set(("customers", 0, "changes", 0, "effective_date"), "2026-13-01"),
         "customers/0/changes/0/effective_date: expected a date (YYYY-MM-DD), got '2026-13-01'"),
        (_set(("customers", 0, "changes", 0, "sku"), KeyError),
         "customers/0/changes/0: missing 'sku'"),
        (_set(("customers", 0, "changes", 0, "quantity"), 3), "customers/0/changes/0/quantity: "
         "unknown key"),
        (_set(("customers", 1, "agreement"), None), "customers/1/agreement: expected an object"),
        (_set(("customers", 1, "errors"), ["ok", 3]), "customers/1/errors/1: expected a string"),
        (_set(("customers", 0, "changes"), {}), "customers/0/changes: expected a list, got an "
         "object"),
        (_set(("customers", 1), []), "customers/1: expected an object, got a list"),
        (_set(("customers",), {}), "at customers: expected a list, got an object"),
        (_set(("period", "start"), "yesterday"), "at period/start: 'yesterday' does not match"),
    ],
)  # fmt: skip
def test_saved_plan_structure_is_checked_field_by_field(tmp_path, edit, message) -> None:
    """Every customer and change is read with its type checked: one line, naming the path."""
    with pytest.raises(ReconcileError) as err:
        planfile.load(_saved(tmp_path, edit))
    text = str(err.value).replace(str(tmp_path) + "/", "")
    assert text.startswith("plan.json: not a valid plan file at ")
    assert message in text
    assert "\n" not in text


@given(
    st.dictionaries(
        st.text(max_size=4),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=4),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=4), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=4,
    )
)
def test_fingerprint_is_the_hash_of_the_canonical_json(state: dict[str, object]) -> None:
    """Hashed in pieces, but the same digest as the whole canonical text: plans saved by
    earlier versions keep verifying."""
    import hashlib

    canonical = json.dumps(state, sort_keys=True, separators=(",", ":"))
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert planfile.fingerprint(state) == expected
    assert (
        planfile.fingerprint({"agreements": state, "catalog": {}})
        == hashlib.sha256(
            json.dumps(
                {"agreements": state, "catalog": {}}, sort_keys=True, separators=(",", ":")
            ).encode()
        ).hexdigest()
    )


def test_a_plan_re_derived_from_its_own_snapshot_is_the_same_plan() -> None:
    """DESIGN 13.7: `apply PLANFILE` plans the agreements it does not read from the
    snapshot's additions, so the snapshot must carry every field planning reads: prices
    (money, billed figures), billCustomer (no charge), product ids, effective dates (removal
    method), cancellations
    after the as-of day, and a quantity that is not whole licences on an excluded product
    (a warning, not an error, so that customer stays in the snapshot)."""
    import dataclasses
    import datetime as dt
    from decimal import Decimal

    from reconciler.core.state import Addition
    from reconciler.plan.snapshot import known_additions

    cfg = config(customer("zt-1", exclude_skus=("OKTA-MFA",)))
    odd = [
        addition(1, "ZT-OKTA-SSO", 40, cancelled=dt.date(2027, 1, 31)),  # live until then
        dataclasses.replace(
            addition(2, "ZT-OKTA-WF", 3),
            unit_price=Decimal("6.5025"),
            bill_customer="NoCharge",  # counted at 0 money (13.3)
            effective_date=dt.date(2026, 12, 1),  # starts after the as-of day: zeroed
        ),
        addition(3, "ZT-OKTA-SSO", 9, cancelled=dt.date(2026, 3, 1)),  # gone: not in it
        Addition(5, 1001, 902, "ZT-OKTA-MFA", 0, problem="quantity 0.5"),  # live all the same
        addition(6, "MSP-HELPDESK", 3),  # not ours: not in it
    ]
    actual = state(*odd)
    users = usage({"zt-1": {"OKTA-SSO": 42}})
    products = cfg.managed_products
    first = plan(cfg, users, actual)
    snap = planfile.snapshot(first, actual, products)
    assert set(snap["agreements"]["1001"]["additions"]) == {"1", "2", "5"}
    again = dataclasses.replace(actual, additions=known_additions(json.loads(json.dumps(snap))))
    second = plan(cfg, users, again)
    assert planfile.plan_to_dict(second) == planfile.plan_to_dict(first)
    assert planfile.snapshot(second, again, products) == snap
    assert [c.action.value for c in first.changes] == ["update", "remove"]
    assert first.removal_of(first.changes[1]).value == "zero" and first.customers[0].warnings
