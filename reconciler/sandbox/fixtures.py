"""Sandbox fixtures: the seeded example world (`default_fixture`) and a scalable generator.

`default_fixture()` is exactly the example data of `mappings/` (see the repository's example
mappings): 25 ConnectWise companies (names with quotes, apostrophes, ampersands, commas,
backslashes), agreements including an expired, a cancelled and one ending within 30 days of
2026-11-24, a catalog with an inactive product, existing additions showing every kind of
change, and ZeroTek assignment history 2026-05-01..2026-11-24 with joiners and leavers.

Distinct users per customer and SKU (the ZeroTek usage API answers these):

=========  =========  =====================  =====================
customer   SKU        2026-10-16..2026-11-15  2026-11-16..2026-11-24
=========  =========  =====================  =====================
zt-0001    OKTA-SSO   42                     43
zt-0001    OKTA-MFA   42                     41
zt-0002    OKTA-SSO   12                     12
zt-0002    OKTA-UD    0 (all left earlier)   0
zt-0003    OKTA-SSO   18                     19
zt-0003    OKTA-MFA   18                     17
zt-0003    OKTA-LCM   6                      7
zt-0004    OKTA-SSO   27                     26
zt-0005    OKTA-SSO   60                     60
zt-0005    OKTA-UD    60                     60
zt-0005    OKTA-MFA   15                     16
zt-0006    OKTA-SSO   9                      10
zt-0006    OKTA-WF    2                      2
zt-0006    OKTA-PAM   3 (unmapped SKU)       3
zt-0007    OKTA-WF    4                      4
zt-0007    OKTA-SSO   4                      3
zt-0099    OKTA-SSO   5 (unmapped customer)  6
=========  =========  =====================  =====================

Every series puts its first leaver on 2026-10-16 and first joiner on 2026-11-15 (both
boundaries of the last period, inclusive), its first late leaver on 2026-11-16, its first
new joiners on 2026-11-16 and 2026-11-24, and its first old leaver on 2026-10-15 (outside).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from reconciler.sandbox.records import (
    Assignment,
    Fixture,
    Record,
    addition_record,
    agreement_record,
    catalog_item_record,
    company_record,
    rand_day,
)

_D = dt.date
LAST_START, LAST_END = _D(2026, 10, 16), _D(2026, 11, 15)
CURRENT_START, CURRENT_END = _D(2026, 11, 16), _D(2026, 11, 24)


@dataclass(frozen=True)
class _Series:
    """How one customer's users of one SKU came and went (see the module docstring)."""

    core: int = 0  # assigned before the period, still assigned
    late_leavers: int = 0  # left 2026-11-16..23: count in both periods
    leavers: int = 0  # left inside the last period: count there only
    joiners: int = 0  # joined inside the last period, still assigned
    rejoin: int = 0  # left and came back inside the last period: one distinct user
    after: int = 0  # joined 2026-11-16..24: count in the current period only
    old_leavers: int = 0  # left before the last period: count nowhere


def _series_records(
    rng: random.Random, customer: str, sku: str, domain: str, s: _Series
) -> list[Assignment]:
    out: list[Assignment] = []
    n = 0

    def user() -> str:
        nonlocal n
        n += 1
        return f"user{n:03d}@{domain}"

    def add(u: str, on: dt.date, off: dt.date | None = None) -> None:
        out.append(Assignment(customer, sku, u, on, off))

    early = (_D(2026, 5, 1), _D(2026, 9, 30))
    for _ in range(s.core):
        add(user(), rand_day(rng, *early))
    for i in range(s.late_leavers):
        off = _D(2026, 11, 16) if i == 0 else rand_day(rng, _D(2026, 11, 17), _D(2026, 11, 23))
        add(user(), rand_day(rng, *early), off)
    for i in range(s.leavers):
        off = LAST_START if i == 0 else rand_day(rng, _D(2026, 10, 17), _D(2026, 11, 14))
        add(user(), rand_day(rng, *early), off)
    for i in range(s.joiners):
        add(user(), LAST_END if i == 0 else rand_day(rng, _D(2026, 10, 17), _D(2026, 11, 14)))
    for _ in range(s.rejoin):
        u = user()
        add(u, _D(2026, 6, 1), _D(2026, 10, 20))
        add(u, _D(2026, 10, 28))
    for i in range(s.after):
        fixed = {0: CURRENT_START, 1: CURRENT_END}
        add(user(), fixed.get(i) or rand_day(rng, CURRENT_START, CURRENT_END))
    for i in range(s.old_leavers):
        on = rand_day(rng, _D(2026, 5, 1), _D(2026, 7, 31))
        off = _D(2026, 10, 15) if i == 0 else rand_day(rng, _D(2026, 8, 1), _D(2026, 10, 14))
        add(user(), on, off)
    return out


# (ZeroTek id, name, status, CW company id, identifier, domain, {sku: series})
_CUSTOMERS: list[tuple[str, str, str, int | None, str | None, str, dict[str, _Series]]] = [
    (
        "zt-0001",
        "Acme Corp",
        "active",
        250,
        "ACME",
        "acme.example",
        {
            "OKTA-SSO": _Series(
                core=37, late_leavers=1, leavers=2, joiners=1, rejoin=1, after=3, old_leavers=3
            ),
            "OKTA-MFA": _Series(core=40, leavers=1, joiners=1, old_leavers=1),
        },
    ),
    (
        "zt-0002",
        "O'Brien & Sons",
        "active",
        251,
        "OBRIEN",
        "obrien.example",
        {
            "OKTA-SSO": _Series(core=11, leavers=1, after=1),
            "OKTA-UD": _Series(old_leavers=7),
        },
    ),
    (
        "zt-0003",
        'Big "Quote" Ltd',
        "active",
        252,
        "BIGQUOTE",
        "bigquote.example",
        {
            "OKTA-SSO": _Series(core=16, joiners=2, after=1),
            "OKTA-MFA": _Series(core=17, leavers=1),
            "OKTA-LCM": _Series(core=6, after=1),
        },
    ),
    (
        "zt-0004",
        "Contoso Health",
        "active",
        253,
        "CONTOSO",
        "contoso.example",
        {
            "OKTA-SSO": _Series(core=24, leavers=1, joiners=2, old_leavers=2),
        },
    ),
    (
        "zt-0005",
        "Northwind Traders",
        "active",
        254,
        "NORTHWIND",
        "northwind.example",
        {
            "OKTA-SSO": _Series(core=58, leavers=2, after=2),
            "OKTA-UD": _Series(core=60),
            "OKTA-MFA": _Series(core=14, joiners=1, after=1),
        },
    ),
    (
        "zt-0006",
        "Globex",
        "active",
        255,
        "GLOBEX",
        "globex.example",
        {
            "OKTA-SSO": _Series(core=9, after=1),
            "OKTA-WF": _Series(core=2),
            "OKTA-PAM": _Series(core=2, joiners=1),
        },
    ),
    (
        "zt-0007",
        "Initech & Co",
        "active",
        256,
        "INITECH",
        "initech.example",
        {
            "OKTA-WF": _Series(core=3, joiners=1),
            "OKTA-SSO": _Series(core=3, leavers=1),
        },
    ),
    ("zt-0098", "Dormant LLC", "inactive", None, None, "dormant.example", {}),
    (
        "zt-0099",
        "Unmapped Startup",
        "active",
        None,
        None,
        "startup.example",
        {
            "OKTA-SSO": _Series(core=5, after=1),
        },
    ),
]

# Unmapped ConnectWise companies: hostile names for the conditions quoting (ids 257..).
_OTHER_COMPANIES = [
    ("SMITHSONS", 'Smith & "Sons" (UK), Ltd'),
    ("OREILLY", "O'Reilly & Partners"),
    ("OLDCO", "Old Co (Closed)"),
    ("EXPIREDCO", "Expired Co, LLC"),
    ("BACKSLASH", 'Back\\Slash "Studios"'),
    ("UPTIME", "100% Uptime Ltd"),
    ("UNDERSCORE", "Under_Score & Co"),
    ("QUOTED", '"Quoted" Inc'),
    ("ROCKNROLL", "Rock 'n' Roll IT"),
    ("ALPHABETA", "Alpha, Beta, and Gamma"),
    ("DELTA", "Delta (Holdings) plc"),
    ("CAFE", "Café Zürich GmbH"),
    ("JOHNSONS", "Johnson & Johnson & Co"),
    ("PLUSMINUS", "Plus+Minus Accounting"),
    ("NUMBERONE", "Number #1 Dental; Ortho"),
    ("AEQUALSB", "A=B Consulting"),
    ("ACMECORP", "Acme Corp"),  # same name as ACME, another company: match on identifier
    ("SANDORR", 'Sand and Orr "Law" or Not'),
]


def default_fixture() -> Fixture:
    """The example data, byte-for-byte the same on every call."""
    fx = Fixture()
    companies = _companies()
    fx.companies = sorted(companies.values(), key=lambda c: c["id"])
    agreements = _agreements(companies)
    fx.agreements = sorted(agreements, key=lambda a: a["id"])
    fx.catalog = _catalog()
    fx.additions = _additions(
        {a["id"]: a for a in agreements}, {i["identifier"]: i for i in fx.catalog}
    )
    for zt_id, name, status, _, _, domain, skus in _CUSTOMERS:
        fx.zerotek_customers.append({"id": zt_id, "name": name, "status": status})
        for sku, series in skus.items():
            rng = random.Random(f"{zt_id}/{sku}")
            fx.assignments.extend(_series_records(rng, zt_id, sku, domain, series))
    return fx


def _companies() -> dict[str, Record]:
    companies: dict[str, Record] = {}
    for _, name, _, cid, ident, _, _ in _CUSTOMERS:
        if cid is not None and ident is not None:
            companies[ident] = company_record(cid, ident, name)
    for offset, (ident, name) in enumerate(_OTHER_COMPANIES):
        companies[ident] = company_record(257 + offset, ident, name)
    return companies


def _agreements(c: dict[str, Record]) -> list[Record]:
    return [
        agreement_record(1001, "Acme Managed Services", c["ACME"], "Active", _D(2025, 1, 1)),
        agreement_record(1002, "O'Brien Identity", c["OBRIEN"], "Active", _D(2025, 3, 1)),
        agreement_record(
            1003, "Big Quote - Identity", c["BIGQUOTE"], "Active", _D(2025, 6, 1), _D(2027, 5, 31)
        ),
        agreement_record(
            1004, "Contoso Identity", c["CONTOSO"], "Active", _D(2024, 12, 11), _D(2026, 12, 10)
        ),
        agreement_record(1005, "Northwind MSA", c["NORTHWIND"], "Active", _D(2024, 1, 1)),
        agreement_record(
            1006, "Globex Okta", c["GLOBEX"], "Active", _D(2025, 2, 1), bill_start=_D(2026, 12, 1)
        ),
        agreement_record(1007, "Initech Identity", c["INITECH"], "Active", _D(2025, 9, 1)),
        agreement_record(
            1011,
            "Acme Managed Services 2023",
            c["ACME"],
            "Expired",
            _D(2023, 1, 1),
            _D(2023, 12, 31),
        ),
        agreement_record(1020, "Old Co Services", c["OLDCO"], "Cancelled", _D(2022, 1, 1)),
        agreement_record(
            1021, "Expired Co Services", c["EXPIREDCO"], "Expired", _D(2023, 7, 1), _D(2025, 6, 30)
        ),
        agreement_record(1022, 'Smith & "Sons" Support', c["SMITHSONS"], "Active", _D(2024, 4, 1)),
        agreement_record(1023, "O'Reilly Managed", c["OREILLY"], "Active", _D(2025, 5, 1)),
        agreement_record(1024, "Acme Managed Services", c["ACMECORP"], "Active", _D(2025, 8, 1)),
        agreement_record(1025, 'Back\\Slash "Desk"', c["BACKSLASH"], "Active", _D(2025, 10, 1)),
        agreement_record(1026, "Uptime Legacy", c["UPTIME"], "Inactive", _D(2024, 2, 1)),
    ]


def _catalog() -> list[Record]:
    return [
        catalog_item_record(501, "ZT-OKTA-SSO", "Okta Single Sign-On", 4.00, 2.50),
        catalog_item_record(502, "ZT-OKTA-MFA", "Okta Adaptive MFA", 3.00, 1.80),
        catalog_item_record(503, "ZT-OKTA-LCM", "Okta Lifecycle Management", 5.00, 3.20),
        catalog_item_record(504, "ZT-OKTA-UD", "Okta Universal Directory", 2.00, 1.10),
        catalog_item_record(505, "ZT-OKTA-WF", "Okta Workflows", 6.00, 4.00),
        catalog_item_record(506, "ZT-OKTA-LEGACY", "Okta Legacy Bundle", 1.00, 0.50, inactive=True),
        catalog_item_record(507, "MSP-HELPDESK", "Managed helpdesk per user", 25.00, 12.00),
        catalog_item_record(508, "MSP-BACKUP", "Cloud backup per device", 8.00, 3.00),
    ]


def _additions(ag: dict[int, Record], item: dict[str, Record]) -> list[Record]:
    return [
        addition_record(9001, ag[1001], item["ZT-OKTA-SSO"], 40),
        addition_record(9002, ag[1001], item["ZT-OKTA-MFA"], 42),
        addition_record(9003, ag[1001], item["MSP-HELPDESK"], 42),
        addition_record(9004, ag[1001], item["ZT-OKTA-LCM"], 5, cancelled=_D(2026, 3, 31)),
        addition_record(9005, ag[1002], item["ZT-OKTA-SSO"], 12),
        addition_record(9006, ag[1002], item["ZT-OKTA-UD"], 7),
        addition_record(9007, ag[1004], item["ZT-OKTA-SSO"], 25),
        addition_record(9008, ag[1005], item["ZT-OKTA-SSO"], 60),
        addition_record(9009, ag[1005], item["ZT-OKTA-UD"], 60),
        addition_record(9010, ag[1007], item["ZT-OKTA-WF"], 3, unit_price=6.50),
        addition_record(9011, ag[1022], item["MSP-HELPDESK"], 10),
        addition_record(9012, ag[1023], item["MSP-BACKUP"], 30),
    ]
