"""Seats and monthly revenue ConnectWise bills for managed products (the INDEX chart)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from reconciler.core.billed import Billed, billed_before
from reconciler.core.model import Config, CustomerMap, PeriodKind, Settings, SkuMap
from reconciler.core.periods import Period
from reconciler.core.plan import Action, Change, CustomerPlan, Plan
from reconciler.core.state import ActualState, Addition

AS_OF = dt.date(2026, 11, 24)
PERIOD = Period(PeriodKind.LAST_BILLING_PERIOD, dt.date(2026, 10, 16), dt.date(2026, 11, 15), AS_OF)


def test_counts_active_managed_additions_once_per_agreement():
    config = Config(
        Path("."),
        Settings(),
        (SkuMap("OKTA-SSO", "ZT-OKTA-SSO"), SkuMap("OKTA-WF", "ZT-OKTA-WF")),
        (CustomerMap("a", "A", "A", 1), CustomerMap("b", "B", "A", 1, shared_agreement=True)),
        "",
    )
    additions = (
        Addition(1, 1, 501, "zt-okta-sso", 40, Decimal("4.00")),  # identifier case differs
        Addition(2, 1, 505, "ZT-OKTA-WF", 3, Decimal("6.125")),
        Addition(3, 1, 507, "MSP-HELPDESK", 42, Decimal("25")),  # not ours
        Addition(4, 1, 501, "ZT-OKTA-SSO", 5, Decimal("4"), cancelled_date=dt.date(2026, 3, 1)),
        Addition(5, 1, 501, "ZT-OKTA-SSO", 0, Decimal("4")),  # removed (quantity 0)
    )
    actual = ActualState({}, {}, {}, {1: additions})
    plan = Plan(PERIOD, (CustomerPlan("a", "A", "A", 1), CustomerPlan("b", "B", "A", 1)))
    before = billed_before(config, plan, actual)
    assert before == Billed(43, Decimal("178.375"))  # 40 x 4 + 3 x 6.125, agreement once
    change = Change(Action.UPDATE, "a", "OKTA-SSO", "ZT-OKTA-SSO", 501, 1, 1, 40, 42, Decimal(4))
    assert before.after(
        [change, replace(change, before=3, after=0, unit_price=Decimal("6.125"))]
    ) == (Billed(42, Decimal("168.00")))
