"""The one decision whether an agreement addition is a live one we manage
(model.is_live_managed), its edge cases, and that every place asking it agrees: the state
reader (ours or someone else's), the planner, a saved plan's snapshot, apply's re-read and
the billed figures."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from plan_builders import AS_OF, PERIOD, addition, config, customer, state, usage

from reconciler.connectwise.payload import addition as _addition
from reconciler.connectwise.verification import live_quantities
from reconciler.core.billed import billed_before
from reconciler.core.model import ManagedProducts
from reconciler.core.state import Addition, is_live_managed
from reconciler.plan import planfile
from reconciler.plan.planner import plan

PRODUCTS = ManagedProducts(["ZT-OKTA-SSO", "ZT-OKTA-MFA"])
DAY = dt.timedelta(days=1)


def sso(**changes: object) -> Addition:
    return dataclasses.replace(addition(7, "ZT-OKTA-SSO", 5), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "item", "live"),
    [
        ("ours, active, quantity 5", sso(), True),
        ("cancelled before the as-of day", sso(cancelled_date=AS_OF - DAY), False),
        ("cancelled on the as-of day (our own cancel)", sso(cancelled_date=AS_OF), False),
        ("cancellation dated after the as-of day", sso(cancelled_date=AS_OF + DAY), True),
        ("quantity 0 counts as removed", sso(quantity=0), False),
        ("quantity 0 of a cancelled one", sso(quantity=0, cancelled_date=AS_OF - DAY), False),
        (
            "fractional quantity: billed, so not absent",
            sso(quantity=0, problem="quantity 2.5"),
            True,
        ),
        ("negative quantity: billed, not absent", sso(quantity=-5, problem="quantity -5"), True),
        ("starts at a future billStartDate", sso(effective_date=AS_OF + 7 * DAY), True),
        ("started long ago", sso(effective_date=dt.date(2020, 1, 1)), True),
        ("identifier in another case", sso(product_identifier="zt-okta-sso"), True),
        ("someone else's product", sso(product_identifier="MSP-HELPDESK"), False),
        (
            "someone else's, also quantity 0",
            sso(product_identifier="MSP-HELPDESK", quantity=0),
            False,
        ),
        ("no identifier at all", sso(product_identifier=""), False),
    ],
)
def test_the_decision(case: str, item: Addition, live: bool) -> None:
    assert is_live_managed(item, PRODUCTS, AS_OF) is live, case


def test_managed_products_match_case_insensitively_and_keep_the_mappings_spelling() -> None:
    assert PRODUCTS.spelling("zt-OKTA-sso") == "ZT-OKTA-SSO"
    assert PRODUCTS.spelling("MSP-HELPDESK") is None
    assert PRODUCTS.spelling(None) is None and PRODUCTS.spelling(42) is None
    assert "Zt-Okta-Mfa" in PRODUCTS and "ZT-OKTA" not in PRODUCTS
    assert list(PRODUCTS) == ["ZT-OKTA-MFA", "ZT-OKTA-SSO"] and len(PRODUCTS) == 2
    cfg = config(customer())
    assert list(cfg.managed_products) == ["ZT-OKTA-MFA", "ZT-OKTA-SSO", "ZT-OKTA-WF"]


def _row(identifier: object, quantity: object = 5) -> dict[str, object]:
    return {"id": 7, "product": {"id": 901, "identifier": identifier}, "quantity": quantity}


def test_the_reader_takes_ours_in_the_mappings_spelling_and_reads_others_leniently() -> None:
    ours = _addition(_row("zt-okta-sso"), 1001, "/x", PRODUCTS)
    assert (ours.product_identifier, ours.quantity, ours.problem) == ("ZT-OKTA-SSO", 5, None)
    odd = _addition(_row("ZT-OKTA-SSO", 2.5), 1001, "/x", PRODUCTS)
    assert odd.problem == "quantity 2.5" and is_live_managed(odd, PRODUCTS, AS_OF)
    theirs = _addition(_row("MSP-HELPDESK", 2.5), 1001, "/x", PRODUCTS)
    assert theirs.problem is None and not is_live_managed(theirs, PRODUCTS, AS_OF)
    nameless = _addition(_row(None, None), 1001, "/x", PRODUCTS)
    assert nameless.product_identifier == "" and not is_live_managed(nameless, PRODUCTS, AS_OF)


# Every kind of addition on one agreement: which of them each caller counts must agree.
WORLD = (
    addition(1, "ZT-OKTA-SSO", 5),  # live: planned against
    addition(2, "ZT-OKTA-MFA", 0),  # quantity 0: removed
    addition(3, "ZT-OKTA-MFA", 4, cancelled=AS_OF - DAY),  # cancelled
    dataclasses.replace(addition(4, "ZT-OKTA-WF", 3), effective_date=AS_OF + 7 * DAY),  # future
    addition(5, "MSP-HELPDESK", 9),  # someone else's
)
LIVE = {1, 4}


def test_planner_snapshot_apply_and_billed_count_the_same_additions() -> None:
    cfg = config(customer())
    actual = state(*WORLD)
    users = {"zt-1": {"OKTA-SSO": 5, "OKTA-MFA": 2, "OKTA-WF": 3}}
    planned = plan(cfg, usage(users), actual)
    (cp,) = planned.customers
    assert (cp.managed, cp.managed_quantity) == (len(LIVE), 5 + 3)
    # MFA has no live addition (one zeroed, one cancelled): a new one is added, not updated
    assert [(c.action.value, c.product, c.addition_id) for c in cp.changes] == [
        ("add", "ZT-OKTA-MFA", None)
    ]

    snap = planfile.additions_snapshot(WORLD, cfg.managed_products, AS_OF)
    assert {int(i) for i in snap} == LIVE

    quantities = {
        product: live_quantities(WORLD, product, cfg.managed_products, AS_OF)
        for product in cfg.managed_products
    }
    assert quantities == {"ZT-OKTA-MFA": [], "ZT-OKTA-SSO": [5], "ZT-OKTA-WF": [3]}

    billed = billed_before(cfg, planned, actual)
    assert (billed.seats, billed.revenue) == (5 + 3, Decimal("32.00"))
    assert PERIOD.as_of == AS_OF


def test_an_addition_spelled_in_another_case_is_the_same_product_everywhere() -> None:
    """Live by the decision, so the planner must update it, never add a second one."""
    cfg = config(customer())
    odd = dataclasses.replace(addition(1, "ZT-OKTA-SSO", 4), product_identifier="zt-okta-sso")
    planned = plan(cfg, usage({"zt-1": {"OKTA-SSO": 6}}), state(odd))
    assert [(c.action.value, c.product, c.addition_id) for c in planned.changes] == [
        ("update", "ZT-OKTA-SSO", 1)
    ]
    assert live_quantities((odd,), "ZT-OKTA-SSO", cfg.managed_products, AS_OF) == [4]
    assert set(planfile.additions_snapshot((odd,), cfg.managed_products, AS_OF)) == {"1"}
