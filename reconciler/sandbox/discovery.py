"""A sandbox world for `discover`: the example data plus unmapped customers to onboard.

ZeroTek and ConnectWise spell the same customer differently - legal suffixes,
punctuation, case, accents, abbreviations, spacing, typos - and some ZeroTek customers
have no ConnectWise company at all but a confusingly similar one exists (decoys). Each
ZeroTek customer carries the answer a careful human would give (`Expected`), so tests and
the benchmark can score `discover`'s precision and recall.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reconciler.sandbox.fixtures import default_fixture
from reconciler.sandbox.records import (
    Assignment,
    Fixture,
    agreement_record,
    catalog_item_record,
    company_record,
)

_D = dt.date
_LICENSING = {"id": 7, "name": "Licensing"}


@dataclass(frozen=True)
class Expected:
    kind: str  # match | decoy | tie | no-agreement
    company: str | None = None  # identifier, for match
    agreement: int | None = None  # id, for match


# (ZeroTek name, ConnectWise name, identifier, agreements); agreements: (name, status,
# licensing type?) - the starred one (name starting with "*") is the right answer.
_MATCHES: list[tuple[str, str, str, list[tuple[str, str, bool]]]] = [
    ("Hooli Inc.", "Hooli", "HOOLI", [("*Hooli Identity", "Active", False)]),
    ("Stark Industries", "Stark Industries, Inc.", "STARK", [("*Stark MSA", "Active", False)]),
    ("Wayne Enterprises LLC", "Wayne Enterprises", "WAYNE", [("*Wayne Okta", "Active", False)]),
    (
        "Cyberdyne Systems Corporation",
        "Cyberdyne Systems Corp.",
        "CYBERDYNE",
        [("*Cyberdyne Services", "Active", False)],
    ),
    (
        "Umbrella Corp",
        "Umbrella Corporation",
        "UMBRELLA",
        [("Umbrella 2023", "Expired", False), ("*Umbrella 2025", "Active", False)],
    ),
    ("Soylent Co.", "Soylent Company", "SOYLENT", [("*Soylent Managed", "Active", False)]),
    ("Wonka Industries GmbH", "Wonka Industries", "WONKA", [("*Wonka IT", "Active", False)]),
    ("Müller Logistik GmbH", "Muller Logistik", "MULLER", [("*Muller SaaS", "Active", False)]),
    (
        "Société Générale de Café",
        "Societe Generale de Cafe SA",
        "SGCAFE",
        [("*SGC Licences", "Active", False)],
    ),
    ("Łódź Print", "Lodz Print Sp", "LODZ", [("*Lodz Print IT", "Active", False)]),
    (
        "Smith & Wesson Accounting",
        "Smith and Wesson Accounting, LLC",
        "SWACCT",
        [("*S&W Support", "Active", False)],
    ),
    ("O'Malley Dental", "O Malley Dental", "OMALLEY", [("*O'Malley Managed", "Active", False)]),
    (
        "Intl Freight Partners",
        "International Freight Partners Inc",
        "IFP",
        [("*IFP Managed", "Active", False)],
    ),
    ("Acme Mfg", "ACME Manufacturing Co", "ACMEMFG", [("*Acme Mfg IT", "Active", False)]),
    (
        "Blue River Svcs",
        "Blue River Services Ltd",
        "BLUERIVER",
        [("*Blue River MSA", "Active", False)],
    ),
    (
        "Pacific Tech Solutions",
        "Pacific Technologies Solutions LLC",
        "PACTECH",
        [("*PacTech Identity", "Active", False)],
    ),
    (
        "Bright Smile Orthodontics, P.C.",
        "Bright Smile Orthodontics",
        "BRIGHTSMILE",
        [("*Bright Smile IT", "Active", False)],
    ),
    (
        "Evergreen Health Ctr",
        "Evergreen Health Center",
        "EVERGREEN",
        [("*Evergreen Managed", "Active", False)],
    ),
    ("The Lakeside Clinic", "Lakeside Clinic", "LAKESIDE", [("*Lakeside IT", "Active", False)]),
    ("Summit Legal Group", "SUMMIT LEGAL GROUP", "SUMMIT", [("*Summit IT", "Active", False)]),
    (
        "Redwood & Pine Architects",
        "Redwood and Pine Architects",
        "REDWOOD",
        [("*Redwood IT", "Active", False)],
    ),
    (
        "North Star Logistics",
        "Northstar Logistics",
        "NORTHSTAR",
        [("*Northstar IT", "Active", False)],
    ),
    (
        "Harbor View Dental Assoc",
        "Harborview Dental Associates",
        "HARBORVIEW",
        [("*Harborview IT", "Active", False)],
    ),
    (
        "Granite State Credit Union",
        "Granite State Credit Union",
        "GRANITE",
        [("*Granite IT", "Active", False)],
    ),
    ("Keller Realty - Austin", "Keller Realty Austin", "KELLER", [("*Keller IT", "Active", False)]),
    (
        "Vertex Dental",
        "Vertex Dental PLLC",
        "VERTEX",
        [("Vertex Managed Helpdesk", "Active", False), ("*Vertex Okta Licensing", "Active", False)],
    ),
    (
        "Oakridge Schools",
        "Oakridge Schools Inc",
        "OAKRIDGE",
        [
            ("Oakridge 2024", "Expired", False),
            ("*Oakridge Identity", "Active", False),
            ("Oakridge Old", "Cancelled", False),
        ],
    ),
    (
        "Cobalt Mining Ltd",
        "Cobalt Mining Limited",
        "COBALT",
        [("Cobalt Projects", "Active", False), ("*Cobalt Subscriptions", "Active", True)],
    ),
    (
        "Natl Parks Foundation",
        "National Parks Foundation",
        "NPF",
        [("*NPF Managed", "Active", False)],
    ),
    (
        "Johnson Bros Plumbing",
        "Johnson Brothers Plumbing Inc",
        "JBP",
        [("*JBP Managed", "Active", False)],
    ),
    ("St. Mary's Hospital", "Saint Marys Hospital", "STMARYS", [("*St Marys IT", "Active", False)]),
    ("Mt Hood Outfitters", "Mount Hood Outfitters", "MTHOOD", [("*Mt Hood IT", "Active", False)]),
    ("Zürich Versicherung AG", "Zurich Versicherung", "ZURICHV", [("*Zurich IT", "Active", False)]),
    (
        "Crème de la Crème Bakery",
        "Creme de la Creme Bakery Ltd",
        "CREME",
        [("*Creme IT", "Active", False)],
    ),
    ("Nordic Kraft AS", "Nordic Kraft", "NORDIC", [("*Nordic IT", "Active", False)]),
    ("Big Apple Bagels, Inc.", "Big Apple Bagels", "BAGELS", [("*Bagels IT", "Active", False)]),
    (
        "Dr. Patel Family Practice",
        "Dr Patel Family Practice PLLC",
        "PATEL",
        [("*Patel IT", "Active", False)],
    ),
    (
        "Lone Star Energy Co.",
        "Lone Star Energy Company",
        "LONESTAR",
        [("*Lone Star IT", "Active", False)],
    ),
    ("Alpine IT Services", "Alpine I.T. Services", "ALPINE", [("*Alpine Okta", "Active", False)]),
    ("Globx Trading", "Globex Trading", "GLOBEXTR", [("*Globex Trading IT", "Active", False)]),
    (
        "Fairview Animal Hosp",
        "Fairview Animal Hospital",
        "FAIRVIEW",
        [("*Fairview IT", "Active", False)],
    ),
    (
        "Quantum Analytics Grp",
        "Quantum Analytics Group",
        "QUANTUM",
        [("*Quantum IT", "Active", False)],
    ),
]

# ZeroTek customers with no ConnectWise company, each next to a confusable one.
_DECOYS: list[tuple[str, str | None, str | None]] = [
    ("Acme Health Partners", None, None),  # "Acme Corp" exists
    ("Southwind Traders", None, None),  # "Northwind Traders"
    ("Pinnacle Labs", "Pinnacle Law Group", "PINNACLE"),
    ("Globex Europe", None, None),  # "Globex"
    ("Contoso Pharma", None, None),  # "Contoso Health"
    ("Stark Realty", None, None),  # "Stark Industries, Inc."
    ("Blue Sky Dentistry", "Blue Sky Dental", "BLUESKY"),
    ("Wayne County Schools", None, None),  # "Wayne Enterprises"
    ("Riverside Vet Clinic", "Riverside Medical Clinic", "RIVERSIDE"),
    ("Orbit Software", None, None),
    ("Sunrise Bakery", "Sunset Bakery", "SUNSET"),
    ("Mountain View Dental", "Mountain View Medical", "MTVIEW"),
    ("Lakeside Clinic East", None, None),  # "Lakeside Clinic"
    ("Hoolie Toys", None, None),  # "Hooli"
]

# Not a unique answer: flagged, never guessed.
_AMBIGUOUS: list[tuple[str, str, list[tuple[str, str, str]]]] = [
    # two companies with the same normalised name
    ("Apex Consulting", "tie", [("APEXLLC", "Apex Consulting LLC", "Apex LLC IT"),
                                ("APEXINC", "Apex Consulting Inc", "Apex Inc IT")]),
    # one company, two active agreements, neither looking like licensing
    ("Maple Insurance", "tie",
     [("MAPLE", "Maple Insurance Agency", "Maple Helpdesk|Maple Projects")]),
    # the company's only agreement has expired
    ("Willow Creek Farms", "no-agreement", [("WILLOW", "Willow Creek Farms LLC", "!Willow 2023")]),
]  # fmt: skip

NEW_SKUS = ["OKTA-PAM", "OKTA-IGA"]  # PAM is in the catalog as ZT-OKTA-PAM; IGA is not


def discovery_fixture() -> tuple[Fixture, dict[str, Expected]]:
    fx = default_fixture()
    expected: dict[str, Expected] = {}
    next_company, next_agreement, n = 400, 2000, 100

    def company(ident: str, name: str) -> dict[str, object]:
        nonlocal next_company
        record = company_record(next_company, ident, name)
        next_company += 1
        fx.companies.append(record)
        return record

    def agreement(name: str, owner: dict[str, object], status: str, licensing: bool) -> int:
        nonlocal next_agreement
        end = _D(2025, 12, 31) if status == "Expired" else None
        record = agreement_record(next_agreement, name, owner, status, _D(2024, 1, 1), end)
        if licensing:
            record["type"] = _LICENSING
        fx.agreements.append(record)
        next_agreement += 1
        return int(record["id"])

    def zerotek(name: str, users: int) -> str:
        nonlocal n
        zt = f"zt-{n:04d}"
        n += 1
        fx.zerotek_customers.append({"id": zt, "name": name, "status": "active"})
        for u in range(users):
            fx.assignments.append(Assignment(zt, "OKTA-SSO", f"u{u}@{zt}.example", _D(2026, 6, 1)))
        return zt

    for zt_name, cw_name, ident, agreements in _MATCHES:
        owner = company(ident, cw_name)
        right = None
        for name, status, licensing in agreements:
            aid = agreement(name.lstrip("*"), owner, status, licensing)
            if name.startswith("*"):
                right = aid
        expected[zerotek(zt_name, 5 + len(expected) % 7)] = Expected("match", ident, right)
    for zt_name, decoy_name, decoy_ident in _DECOYS:
        if decoy_name and decoy_ident:
            agreement(f"{decoy_name} IT", company(decoy_ident, decoy_name), "Active", False)
        expected[zerotek(zt_name, 4)] = Expected("decoy")
    for zt_name, kind, owners in _AMBIGUOUS:
        for ident, cw_name, names in owners:
            owner = company(ident, cw_name)
            for name in names.split("|"):
                agreement(name.lstrip("!"), owner, "Expired" if name[0] == "!" else "Active", False)
        expected[zerotek(zt_name, 3)] = Expected(kind)
    fx.zerotek_customers.append({"id": "zt-0999", "name": "Hooli Inc.", "status": "inactive"})

    fx.catalog.append(catalog_item_record(520, "ZT-OKTA-PAM", "Okta Privileged Access", 9.00, 6.00))
    for i, sku in enumerate(NEW_SKUS):
        for u in range(2 + i):
            fx.assignments.append(Assignment("zt-0001", sku, f"p{u}@acme.example", _D(2026, 6, 1)))
    return fx, expected
