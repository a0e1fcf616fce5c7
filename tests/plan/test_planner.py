import dataclasses
import datetime as dt
from decimal import Decimal

from plan_builders import (
    AS_OF,
    addition,
    config,
    customer,
    state,
    usage,
)

from reconciler.core.model import Removal, Settings
from reconciler.core.plan import Action
from reconciler.core.state import Agreement, Company
from reconciler.plan.planner import plan


def actions(p):
    return [(c.action.value, c.product, c.before, c.after) for c in p.changes]


def test_add_update_remove_and_noop() -> None:
    cfg = config(customer())
    actual = state(
        addition(1, "ZT-OKTA-SSO", 40),
        addition(2, "ZT-OKTA-MFA", 7),
        addition(3, "ZT-OKTA-WF", 3),
    )
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 42, "OKTA-WF": 3}}), actual)
    assert actions(p) == [
        ("remove", "ZT-OKTA-MFA", 7, 0),
        ("update", "ZT-OKTA-SSO", 40, 42),
    ]
    p2 = plan(cfg, usage({"zt-1": {"OKTA-SSO": 42, "OKTA-MFA": 7, "OKTA-WF": 5}}), state())
    assert actions(p2) == [
        ("add", "ZT-OKTA-MFA", 0, 7),
        ("add", "ZT-OKTA-SSO", 0, 42),
        ("add", "ZT-OKTA-WF", 0, 5),
    ]
    add = p2.changes[0]
    assert add.product_id == 902 and add.effective_date == AS_OF and add.addition_id is None


def test_unmanaged_additions_are_never_touched() -> None:
    actual = state(
        addition(1, "MSP-HELPDESK", 42),  # product not mapped
        addition(2, "ZT-OKTA-SSO", 5, agreement=2002),  # another agreement
    )
    p = plan(config(customer()), usage({"zt-1": {}}), actual)
    assert p.changes == ()


def test_cancelled_additions_are_not_active_and_a_returning_sku_is_added_anew() -> None:
    actual = state(
        addition(1, "ZT-OKTA-SSO", 10, cancelled=dt.date(2026, 3, 31)),
        addition(2, "ZT-OKTA-MFA", 4, cancelled=AS_OF),  # cancelled today: gone
        addition(3, "ZT-OKTA-WF", 2, cancelled=AS_OF + dt.timedelta(days=1)),  # still active
    )
    p = plan(config(customer()), usage({"zt-1": {"OKTA-SSO": 10, "OKTA-WF": 2}}), actual)
    assert actions(p) == [("add", "ZT-OKTA-SSO", 0, 10)]


def test_quantity_zero_counts_as_removed() -> None:
    actual = state(addition(1, "ZT-OKTA-SSO", 0))
    assert plan(config(customer()), usage({"zt-1": {}}), actual).changes == ()
    p = plan(config(customer()), usage({"zt-1": {"OKTA-SSO": 3}}), actual)
    assert actions(p) == [("add", "ZT-OKTA-SSO", 0, 3)]  # like a SKU back after a cancel
    # a zeroed addition beside a live one is history, not an ambiguous duplicate
    both = state(addition(1, "ZT-OKTA-SSO", 0), addition(2, "ZT-OKTA-SSO", 3))
    p = plan(config(customer()), usage({"zt-1": {"OKTA-SSO": 5}}), both)
    assert actions(p) == [("update", "ZT-OKTA-SSO", 3, 5)] and not p.has_errors


def test_add_missing_false_warns_instead() -> None:
    cfg = config(customer(), settings=Settings(add_missing=False))
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 3}}), state())
    assert p.changes == ()
    assert "add_missing is false" in p.customers[0].warnings[0]


def test_effective_date_raised_to_bill_start() -> None:
    bill_start = dt.date(2026, 12, 1)
    actual = state(
        agreements=(Agreement(1001, "Acme MS", 250, "Active", bill_start_date=bill_start),)
    )
    p = plan(config(customer()), usage({"zt-1": {"OKTA-SSO": 3}}), actual)
    assert p.changes[0].effective_date == bill_start


def test_agreement_by_name_only_within_the_company() -> None:
    agreements = (
        Agreement(1001, "Identity", 250, "Active"),
        Agreement(1002, "Identity", 251, "Active"),  # same name, other company
    )
    companies = (Company(250, "ACME", "Acme"), Company(251, "OTHER", "Other"))
    actual = state(agreements=agreements, companies=companies)
    p = plan(config(customer(agreement="Identity")), usage({"zt-1": {"OKTA-SSO": 1}}), actual)
    assert p.customers[0].agreement_id == 1001 and not p.has_errors

    ambiguous = state(
        agreements=(*agreements, Agreement(1003, "Identity", 250, "Active")), companies=companies
    )
    p = plan(config(customer(agreement="Identity")), usage({"zt-1": {}}), ambiguous)
    assert p.customers[0].errors == (
        "agreement name 'Identity' is ambiguous for company 'ACME' (ids 1001, 1003); map it by id",
    )
    p = plan(config(customer(agreement="Nope")), usage({"zt-1": {}}), actual)
    assert p.customers[0].errors == ("no agreement named 'Nope' for company 'ACME'",)


def test_per_customer_errors_isolate_only_that_customer() -> None:
    agreements = (
        Agreement(1001, "A", 250, "Active"),
        Agreement(1002, "B", 250, "Cancelled", cancelled=True),
        Agreement(1003, "C", 250, "Active", end_date=dt.date(2026, 11, 1)),
        Agreement(1004, "D", 251, "Active"),
        Agreement(1005, "E", 250, "Inactive"),
    )
    companies = (Company(250, "ACME", "Acme"), Company(251, "OTHER", "Other"))
    cfg = config(
        customer("zt-1", agreement=1001),
        customer("zt-2", agreement=1002),
        customer("zt-3", agreement=1003),
        customer("zt-4", agreement=1004),
        customer("zt-5", agreement=1005),
        customer("zt-6", agreement=1999),
        customer("zt-7", company="GHOST"),
    )
    everyone = {f"zt-{i}": {"OKTA-SSO": 2} for i in range(1, 8)}
    p = plan(cfg, usage(everyone), state(agreements=agreements, companies=companies))
    errors = {cp.customer_id: cp.errors for cp in p.customers}
    assert errors == {
        "zt-1": (),
        "zt-2": ("agreement 1002 ('B') is cancelled",),
        "zt-3": ("agreement 1003 ('C') ended on 2026-11-01",),
        "zt-4": ("agreement 1004 ('D') belongs to another company (id 251), not 'ACME'",),
        "zt-5": ("agreement 1005 ('E') is inactive",),
        "zt-6": (
            "agreement 1999 not found (the company's agreements: 1001 'A', 1002 'B', "
            "1003 'C', 1005 'E')",
        ),
        "zt-7": ("ConnectWise company 'GHOST' not found",),
    }
    assert actions(p) == [("add", "ZT-OKTA-SSO", 0, 2)] and p.has_errors


def test_two_active_additions_of_one_product_is_an_error_never_a_guess() -> None:
    actual = state(
        addition(1, "ZT-OKTA-SSO", 4), addition(2, "ZT-OKTA-SSO", 4), addition(3, "ZT-OKTA-MFA", 1)
    )
    p = plan(config(customer()), usage({"zt-1": {"OKTA-SSO": 9}}), actual)
    assert p.changes == ()  # the MFA removal is held back too: the customer is untouched
    assert p.customers[0].errors == (
        "2 active additions of ZT-OKTA-SSO on agreement 1001 (#1, #2); "
        "resolve by hand, the reconciler never guesses",
    )


def test_missing_or_inactive_catalog_product_errors_only_when_needed() -> None:
    from plan_builders import CATALOG

    catalog = dict(CATALOG)
    catalog["ZT-OKTA-MFA"] = dataclasses.replace(catalog["ZT-OKTA-MFA"], inactive=True)
    del catalog["ZT-OKTA-WF"]
    cfg = config(customer("zt-1"), customer("zt-2", agreement=1002))
    agreements = (Agreement(1001, "A", 250, "Active"), Agreement(1002, "B", 250, "Active"))
    actual = state(addition(5, "ZT-OKTA-WF", 3), agreements=agreements, catalog=catalog)
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 1}, "zt-2": {"OKTA-MFA": 2}}), actual)
    # zt-1 removes WF (no catalog needed) and adds SSO; zt-2 needs the inactive MFA
    assert actions(p) == [("add", "ZT-OKTA-SSO", 0, 1), ("remove", "ZT-OKTA-WF", 3, 0)]
    assert p.customers[1].errors == (
        "catalog product 'ZT-OKTA-MFA' (SKU OKTA-MFA) is inactive in ConnectWise",
    )


def test_excluded_sku_is_left_untouched_with_a_warning() -> None:
    cfg = config(customer(exclude_skus=("OKTA-MFA",)))
    actual = state(addition(1, "ZT-OKTA-MFA", 60))
    p = plan(cfg, usage({"zt-1": {"OKTA-MFA": 10}}), actual)
    assert p.changes == ()
    assert p.customers[0].warnings == (
        "ZT-OKTA-MFA is excluded for this customer: addition #1 (quantity 60) left untouched",
    )


def test_warnings_for_unmapped_skus_and_customers() -> None:
    cfg = config(customer("zt-1"), customer("zt-2", agreement=1001, shared_agreement=True))
    u = usage(
        {"zt-1": {"OKTA-SSO": 1, "OKTA-PAM": 3}, "zt-99": {"OKTA-SSO": 5}},
        known={"zt-1": "One", "zt-99": "Unmapped Startup"},
    )
    p = plan(cfg, u, state())
    assert p.unmapped_skus == (("zt-1", "OKTA-PAM", 3),)
    assert "uses ZeroTek SKU OKTA-PAM (3 users), which is not mapped" in p.customers[0].warnings
    assert (
        "ZeroTek does not know customer 'zt-2': left untouched (check the id)"
        in p.customers[1].warnings
    )
    assert p.warnings == (
        "ZeroTek customer 'zt-99' (Unmapped Startup) has usage but no mapping: OKTA-SSO 5",
    )
    # a single-customer plan does not report other customers (zt-2 comes along only
    # because it is billed on zt-1's agreement, and says so)
    assert plan(cfg, u, state(), ["zt-1"]).warnings == (
        "customers zt-1, zt-2 are billed on agreement 1001: planned together "
        "(its quantities are their sum)",
    )


def test_shared_agreement_sums_usage() -> None:
    cfg = config(customer("zt-1", shared_agreement=True), customer("zt-2", shared_agreement=True))
    p = plan(
        cfg,
        usage({"zt-1": {"OKTA-SSO": 3}, "zt-2": {"OKTA-SSO": 4}}),
        state(addition(1, "ZT-OKTA-SSO", 7)),
    )
    assert p.changes == ()
    p = plan(
        cfg,
        usage({"zt-1": {"OKTA-SSO": 3}, "zt-2": {"OKTA-SSO": 5}}),
        state(addition(1, "ZT-OKTA-SSO", 7)),
    )
    assert actions(p) == [("update", "ZT-OKTA-SSO", 7, 8)]
    assert "shares agreement 1001 with zt-1" in p.customers[1].warnings[0]


def test_prices_and_revenue() -> None:
    p = plan(
        config(customer()),
        usage({"zt-1": {"OKTA-SSO": 10, "OKTA-WF": 2}}),
        state(addition(1, "ZT-OKTA-SSO", 12)),
    )
    sso, wf = sorted(p.changes, key=lambda c: c.product)
    assert (sso.unit_price, sso.revenue_delta) == (Decimal("4.00"), Decimal("-8.00"))
    assert (wf.unit_price, wf.revenue_delta) == (Decimal("6.50"), Decimal("13.00"))  # override
    assert p.revenue_delta == Decimal("5.00")


def test_selection_and_determinism() -> None:
    cfg = config(
        customer("zt-2", agreement=1001), customer("zt-1", agreement=1001, shared_agreement=True)
    )
    u = usage({"zt-1": {"OKTA-SSO": 1, "OKTA-MFA": 2}, "zt-2": {"OKTA-WF": 1}})
    a = plan(cfg, u, state())
    b = plan(cfg, u, state())
    assert a == b and [c.customer_id for c in a.customers] == ["zt-1", "zt-2"]
    # one agreement is one unit, also for a selection (DESIGN 13.3): zt-1 comes along
    only = plan(cfg, u, state(), ["zt-2"])
    assert [c.customer_id for c in only.customers] == ["zt-1", "zt-2"]
    alone = config(customer("zt-2", agreement=1001), customer("zt-1", agreement=1002))
    assert [c.customer_id for c in plan(alone, u, state(), ["zt-2"]).customers] == ["zt-2"]


def test_removal_policy_is_carried_on_the_plan() -> None:
    cfg = config(customer(), settings=Settings(removal=Removal.ZERO))
    p = plan(cfg, usage({"zt-1": {}}), state(addition(1, "ZT-OKTA-SSO", 3)))
    assert p.removal is Removal.ZERO and p.changes[0].action is Action.REMOVE


def test_customer_unknown_to_zerotek_is_left_untouched_not_emptied() -> None:
    cfg = config(customer("zt-1"), customer("zt-2", agreement=1002))
    agreements = (Agreement(1001, "A", 250, "Active"), Agreement(1002, "B", 250, "Active"))
    actual = state(
        addition(1, "ZT-OKTA-SSO", 5),
        addition(2, "ZT-OKTA-SSO", 9, agreement=1002),
        agreements=agreements,
    )
    p = plan(cfg, usage({"zt-1": {}}, known={"zt-1": "One"}), actual)
    assert actions(p) == [("remove", "ZT-OKTA-SSO", 5, 0)]  # known, no usage: removed
    assert p.customers[1].changes == () and not p.customers[1].errors


def test_existing_additions_bill_at_their_own_price() -> None:
    own = dataclasses.replace(addition(1, "ZT-OKTA-SSO", 10), unit_price=Decimal("5.00"))
    p = plan(config(customer()), usage({"zt-1": {"OKTA-SSO": 12}}), state(own))
    assert (p.changes[0].unit_price, p.changes[0].revenue_delta) == (
        Decimal("5.00"),
        Decimal("10.00"),
    )


def test_one_agreement_mapped_twice_without_shared_flag_is_an_error() -> None:
    cfg = config(customer("zt-1", agreement="Acme MS"), customer("zt-2", agreement=1001))
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 3}, "zt-2": {"OKTA-SSO": 4}}), state())
    message = (
        "customers zt-1, zt-2 all map to agreement 1001; set shared_agreement: true on "
        "each of them if they really share it"
    )
    assert [cp.errors for cp in p.customers] == [(message,), (message,)]
    assert p.changes == ()


def test_unknown_member_of_a_shared_agreement_freezes_it() -> None:
    cfg = config(customer("zt-1", shared_agreement=True), customer("zt-9", shared_agreement=True))
    p = plan(
        cfg,
        usage({"zt-1": {"OKTA-SSO": 12}}, known={"zt-1": "One"}),
        state(addition(1, "ZT-OKTA-SSO", 19)),
    )
    assert p.changes == ()


def test_two_skus_on_one_product_sum_their_users() -> None:
    from reconciler.core.model import SkuMap

    skus = (SkuMap("OKTA-SSO", "ZT-OKTA-SSO"), SkuMap("OKTA-SSO-OLD", "ZT-OKTA-SSO"))
    cfg = config(customer(), skus=skus)
    p = plan(
        cfg,
        usage({"zt-1": {"OKTA-SSO": 3, "OKTA-SSO-OLD": 2}}),
        state(addition(1, "ZT-OKTA-SSO", 4)),
    )
    assert actions(p) == [("update", "ZT-OKTA-SSO", 4, 5)]
    excluded = config(customer(exclude_skus=("OKTA-SSO-OLD",)), skus=skus)
    p = plan(
        excluded,
        usage({"zt-1": {"OKTA-SSO": 3, "OKTA-SSO-OLD": 2}}),
        state(addition(1, "ZT-OKTA-SSO", 4)),
    )
    assert actions(p) == [("update", "ZT-OKTA-SSO", 4, 3)]
