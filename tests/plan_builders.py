"""Small builders of model objects for planner/safety/render tests (no I/O)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from reconciler.core.model import Config, CustomerMap, PeriodKind, Settings, SkuMap
from reconciler.core.periods import Period
from reconciler.core.state import ActualState, Addition, Agreement, CatalogItem, Company, Usage

AS_OF = dt.date(2026, 11, 24)
PERIOD = Period(PeriodKind.LAST_BILLING_PERIOD, dt.date(2026, 10, 16), dt.date(2026, 11, 15), AS_OF)
SKUS = (
    SkuMap("OKTA-SSO", "ZT-OKTA-SSO"),
    SkuMap("OKTA-MFA", "ZT-OKTA-MFA"),
    SkuMap("OKTA-WF", "ZT-OKTA-WF", unit_price=Decimal("6.50")),
)
CATALOG = {
    "ZT-OKTA-SSO": CatalogItem(901, "ZT-OKTA-SSO", "SSO", price=Decimal("4.00")),
    "ZT-OKTA-MFA": CatalogItem(902, "ZT-OKTA-MFA", "MFA", price=Decimal("3.00")),
    "ZT-OKTA-WF": CatalogItem(903, "ZT-OKTA-WF", "WF", price=Decimal("6.00")),
    "MSP-HELPDESK": CatalogItem(999, "MSP-HELPDESK", "helpdesk", price=Decimal("25")),
}


def config(*customers: CustomerMap, settings: Settings | None = None, skus=SKUS) -> Config:
    return Config(Path("."), settings or Settings(), tuple(skus), tuple(customers), "digest")


def customer(
    cid: str = "zt-1", company: str = "ACME", agreement: int | str = 1001, **kw
) -> CustomerMap:
    return CustomerMap(cid, f"Customer {cid}", company, agreement, **kw)


def addition(
    aid: int, product: str, qty: int, agreement: int = 1001, cancelled: dt.date | None = None
) -> Addition:
    pid = CATALOG[product].id if product in CATALOG else 990
    return Addition(
        aid, agreement, pid, product, qty, unit_price=Decimal("4.00"), cancelled_date=cancelled
    )


def state(
    *additions: Addition,
    agreements: tuple[Agreement, ...] = (Agreement(1001, "Acme MS", 250, "Active"),),
    companies: tuple[Company, ...] = (Company(250, "ACME", "Acme"),),
    catalog: dict[str, CatalogItem] | None = None,
) -> ActualState:
    by_agreement: dict[int, tuple[Addition, ...]] = {}
    for a in additions:
        by_agreement[a.agreement_id] = (*by_agreement.get(a.agreement_id, ()), a)
    return ActualState(
        companies={c.identifier: c for c in companies},
        agreements={a.id: a for a in agreements},
        catalog=CATALOG if catalog is None else catalog,
        additions=by_agreement,
    )


def usage(users: dict[str, dict[str, int]], known: dict[str, str] | None = None) -> Usage:
    return Usage(PERIOD, users, known)
