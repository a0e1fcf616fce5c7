"""What the two systems hold, as read at one moment: ZeroTek's usage for a period
(`Usage`, the desired-state source) and ConnectWise's companies, agreements, catalog and
agreement additions (`ActualState`; `Directory` for `discover`), with THE decision whether an
addition is a live one we manage (`is_live_managed`).

All frozen, `Decimal` money, like the rest of the model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from reconciler.core.model import ManagedProducts
from reconciler.core.periods import Period

# --- usage (desired state source) ----------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Distinct users per customer and SKU within a period (only rows with users > 0)."""

    period: Period
    users: dict[str, dict[str, int]]  # customer id -> sku -> users
    # ZeroTek's customer directory (id -> name); None when the source has none (CSV,
    # single-customer sync), which turns off the "mapped customer unknown" warning.
    known_customers: dict[str, str] | None = None
    # Customers whose usage cannot be trusted (one SKU in two spellings, DESIGN 13.3):
    # customer id -> why; an error for that customer, its licences never summed.
    problems: dict[str, str] = field(default_factory=dict)


# --- ConnectWise actual state --------------------------------------------------------------


@dataclass(frozen=True)
class Company:
    id: int
    identifier: str
    name: str


@dataclass(frozen=True)
class Agreement:
    id: int
    name: str
    company_id: int
    status: str | None = None  # Active | Cancelled | Expired | Inactive
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    no_ending_date: bool = False
    cancelled: bool = False
    bill_start_date: dt.date | None = None


@dataclass(frozen=True)
class CatalogItem:
    id: int
    identifier: str
    description: str = ""
    inactive: bool = False
    price: Decimal | None = None
    cost: Decimal | None = None


@dataclass(frozen=True)
class Addition:
    id: int
    agreement_id: int
    product_id: int
    product_identifier: str
    quantity: int
    unit_price: Decimal | None = None
    unit_cost: Decimal | None = None
    bill_customer: str | None = None
    effective_date: dt.date | None = None
    cancelled_date: dt.date | None = None
    description: str | None = None
    last_updated: str | None = None
    # Why a managed addition's data cannot be trusted (e.g. "quantity -5"): an error for
    # its customer, never silently read as absent (DESIGN 12.3). None for sound data.
    problem: str | None = None

    def active_on(self, day: dt.date) -> bool:
        return self.cancelled_date is None or self.cancelled_date > day

    @property
    def no_charge(self) -> bool:
        """Billed at 0 whatever its unitPrice (`billCustomer` DoNotBill / NoCharge); an
        unread value counts as billed, the conservative reading for revenue figures."""
        return self.bill_customer is not None and self.bill_customer != "Billable"


def is_live_managed(addition: Addition, products: ManagedProducts, as_of: dt.date) -> bool:
    """THE decision whether an agreement addition is a live one we manage; the planner, the
    state snapshot of a saved plan, apply's re-reads and the billed figures all ask here.

    - ours: its catalog identifier is a managed product, in any spelling of case; an
      addition of any other product is someone else's and is never touched;
    - active on the as-of day: no cancelledDate, or one after it (DESIGN 11). Its own
      effectiveDate does not matter: an addition dated at a future billStartDate is billed
      from then and is ours to update or remove now;
    - not removed: quantity 0 counts as removed (DESIGN 11), unless the quantity could not
      be read as whole licences (`problem`: negative or fractional), which ConnectWise
      bills all the same, so it is never "absent" (12.3).
    """
    return (
        addition.product_identifier in products
        and addition.active_on(as_of)
        and (addition.quantity != 0 or addition.problem is not None)
    )


@dataclass(frozen=True)
class ActualState:
    """What ConnectWise holds for the mapped customers, as read at one moment."""

    companies: dict[str, Company]  # by identifier
    agreements: dict[int, Agreement]  # by id: every agreement of the mapped companies
    catalog: dict[str, CatalogItem]  # by identifier
    additions: dict[int, tuple[Addition, ...]]  # agreement id -> all its additions
    # Company identifiers (casefolded) ConnectWise refused to be asked about (a 400 to a
    # query naming that identifier alone): why, which becomes those customers' error.
    refused: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Directory:
    """All of ConnectWise's companies, agreements and catalog items (what `discover` reads:
    candidates the mappings do not name yet)."""

    companies: tuple[Company, ...]
    agreements: tuple[Agreement, ...]
    agreement_types: dict[int, str]  # agreement id -> type name, where ConnectWise has one
    catalog: tuple[CatalogItem, ...]
