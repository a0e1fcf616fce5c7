"""The nouns of the reconciler: configuration, state on both sides, and plans.

All frozen: the planner is a pure function of these, so nothing downstream may mutate them.
Money is `Decimal` (never float) because it ends up on invoices.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from pathlib import Path

# Defined in vocabulary (light enough for `reconcile --help` to import); nouns of this model.
from reconciler.core.vocabulary import Location as Location  # re-exported
from reconciler.core.vocabulary import PeriodKind as PeriodKind  # re-exported

# --- configuration (desired-state inputs, from mappings/*.yaml) -----------------------------


@dataclass(frozen=True)
class SkuMap:
    sku: str
    product: str  # ConnectWise catalog identifier
    unit_price: Decimal | None = None
    unit_cost: Decimal | None = None
    description: str | None = None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ProductTerms:
    """The one decision per catalog product that new additions are billed with, resolved
    once from skus.yaml (SKUs sharing a product must agree; None: not set by any)."""

    unit_price: Decimal | None = None
    unit_cost: Decimal | None = None
    description: str | None = None


@dataclass(frozen=True)
class CustomerMap:
    id: str  # ZeroTek customer id
    name: str
    company: str  # ConnectWise company identifier
    agreement: int | str  # agreement id, or exact agreement name within the company
    exclude_skus: tuple[str, ...] = ()
    shared_agreement: bool = False
    location: Location | None = field(default=None, compare=False)
    # The customer's own price per SKU (DESIGN 13.4), overriding skus.yaml's unit_price;
    # sorted (SKU, price) pairs so the map stays frozen and hashable.
    prices: tuple[tuple[str, Decimal], ...] = ()


class Removal(StrEnum):
    CANCEL = "cancel"
    ZERO = "zero"
    DELETE = "delete"


@dataclass(frozen=True)
class Safety:
    max_removal_percent: float = 30
    max_quantity_change_percent: float = 50
    min_existing: int = 10
    # No change may leave more licences than this on one line (DESIGN 13.2): a glitch that
    # reports a million users must not bill them, also on a line that does not exist yet.
    max_quantity: int = 10_000
    max_price_change_percent: float = 50  # any one repriced line (DESIGN 13.4)


@dataclass(frozen=True)
class Notifications:
    administrators: tuple[str, ...] = ()
    billing: tuple[str, ...] = ()
    agreement_end_warning_days: int = 30

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.administrators + self.billing))


@dataclass(frozen=True)
class Settings:
    enabled: bool = True
    cw_api_url: str = ""
    max_concurrency: int = 8
    zerotek_api_url: str = ""
    # Requests a minute each API may be sent at most (DESIGN 13.9); None: learned from 429s.
    cw_max_requests_per_minute: float | None = None
    zerotek_max_requests_per_minute: float | None = None
    usage_source: str = "zerotek"  # zerotek | csv
    usage_path: str = "usage/assignments.csv"
    sync_day: int = 15
    timezone: str = "UTC"
    currency: str = "USD"  # ISO 4217, named on every money figure
    add_missing: bool = True
    removal: Removal = Removal.CANCEL
    keep_orphans: bool = False  # billing.orphans: keep (warn) instead of remove (13.1)
    reprice: bool = False  # DESIGN 13.4: bring managed lines to their mapped price
    safety: Safety = Safety()
    notifications: Notifications = Notifications()


@dataclass(frozen=True)
class LedgerLine:
    """One addition the reconciler manages, as state/managed.json lists it (DESIGN 13.1)."""

    agreement_id: int
    addition_id: int
    product: str
    customer_id: str
    sku: str
    run: str


@dataclass(frozen=True)
class Config:
    config_dir: Path
    settings: Settings
    skus: tuple[SkuMap, ...]
    customers: tuple[CustomerMap, ...]
    digest: str  # sha256 over the mapping files' bytes: a saved plan is stale when it moves
    # state/managed.json; None when the file does not exist yet (no apply wrote it).
    ledger: tuple[LedgerLine, ...] | None = None

    # Indexes built on first use (cached_property writes the instance dict directly, so it
    # works on a frozen dataclass): lookups per customer must stay O(1) at thousands.
    @cached_property
    def _skus_by_name(self) -> dict[str, SkuMap]:
        # SKUs compare case-insensitively (validate rejects two spellings of one SKU)
        return {s.sku.casefold(): s for s in self.skus}

    @cached_property
    def _terms(self) -> dict[str, ProductTerms]:
        found: dict[str, dict[str, object]] = {}
        for s in self.skus:
            terms = found.setdefault(s.product.casefold(), {})
            for key in ("unit_price", "unit_cost", "description"):
                value = getattr(s, key)
                if value is not None:
                    terms.setdefault(key, value)  # validate makes every setter agree
        return {p: ProductTerms(**t) for p, t in found.items()}  # type: ignore[arg-type]

    @cached_property
    def _customers_by_id(self) -> dict[str, CustomerMap]:
        return {c.id: c for c in self.customers}

    @cached_property
    def managed_products(self) -> ManagedProducts:
        return ManagedProducts(s.product for s in self.skus)

    @cached_property
    def owned_products(self) -> ManagedProducts:
        """The managed products and those of the ledger's lines (orphans are read, planned
        and verified as ours); the mappings' spelling wins."""
        ledger = [line.product for line in self.ledger or ()]
        return ManagedProducts([*ledger, *(s.product for s in self.skus)])

    def sku(self, sku: str) -> SkuMap | None:
        return self._skus_by_name.get(sku.casefold())

    def terms(self, product: str) -> ProductTerms:
        """Price, cost and description for new additions of `product`, from skus.yaml."""
        return self._terms.get(product.casefold(), ProductTerms())

    def customer(self, customer_id: str) -> CustomerMap | None:
        return self._customers_by_id.get(customer_id)


# --- period --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    start: dt.date
    end: dt.date  # inclusive
    as_of: dt.date

    def __str__(self) -> str:
        return f"{self.kind.value} {self.start.isoformat()}..{self.end.isoformat()}"


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


class ManagedProducts:
    """The catalog identifiers the mappings manage (skus.yaml `product`), matched as
    ConnectWise matches identifiers: case-insensitively (DESIGN 12.2). Iterates the
    mappings' spellings, sorted."""

    __slots__ = ("_spelling",)

    def __init__(self, identifiers: Iterable[str]) -> None:
        self._spelling = {i.casefold(): i for i in identifiers}

    def spelling(self, identifier: object) -> str | None:
        """The mappings' spelling of `identifier`; None when it is not a managed product
        (someone else's addition, or no identifier at all)."""
        return self._spelling.get(identifier.casefold()) if isinstance(identifier, str) else None

    def __contains__(self, identifier: object) -> bool:
        return self.spelling(identifier) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._spelling.values()))

    def __len__(self) -> int:
        return len(self._spelling)


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


# --- plan ----------------------------------------------------------------------------------


class Action(StrEnum):
    ADD = "add"
    UPDATE = "update"
    REMOVE = "remove"


@dataclass(frozen=True)
class Change:
    action: Action
    customer_id: str
    sku: str
    product: str  # catalog identifier
    product_id: int
    agreement_id: int
    addition_id: int | None  # None for add
    before: int  # quantity before (0 for add)
    after: int  # quantity after (0 for remove)
    unit_price: Decimal  # what the line bills at after the change
    effective_date: dt.date | None = None  # add: the date sent as effectiveDate
    unit_cost: Decimal | None = None
    description: str | None = None
    # The line is not `Billable` in ConnectWise (DESIGN 13.3): its quantity is still
    # managed, its money counts 0 everywhere ("no charge").
    no_charge: bool = False
    # An orphan (DESIGN 13.1): a line the ledger says we wrote that no current mapping
    # manages; `sku` and `customer_id` are then the ledger's ("was SKU S of customer C").
    orphan: bool = False
    # An update that also sets the line's unitPrice to `unit_price` (DESIGN 13.4);
    # `price_before` is what it billed at (None: ConnectWise holds no price on it).
    repriced: bool = False
    price_before: Decimal | None = None
    # Set only on a change shown in the plan of a customer on another agreement (an orphan
    # left on the agreement its customer moved away from, 13.1): the name of `agreement_id`,
    # as read, so it is shown under that agreement. Not in plan files (the id is).
    agreement_name: str | None = field(default=None, compare=False)

    @property
    def revenue_delta(self) -> Decimal:
        if self.no_charge:
            return Decimal(0)
        if self.repriced:
            return self.after * self.unit_price - self.before * (self.price_before or Decimal(0))
        return (self.after - self.before) * self.unit_price


@dataclass(frozen=True)
class CustomerPlan:
    customer_id: str
    name: str
    company: str
    agreement_id: int | None = None
    agreement_name: str | None = None
    agreement_end_date: dt.date | None = None
    changes: tuple[Change, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    managed: int = 0  # active managed additions with quantity > 0 (safety denominators)
    managed_quantity: int = 0  # their total quantity

    @property
    def revenue_delta(self) -> Decimal:
        return sum((c.revenue_delta for c in self.changes), Decimal(0))


@dataclass(frozen=True)
class Plan:
    period: Period
    customers: tuple[CustomerPlan, ...]
    warnings: tuple[str, ...] = ()  # plan-wide: unmapped ZeroTek customers, unmapped SKUs
    unsafe_reasons: tuple[str, ...] = ()
    unmapped_skus: tuple[tuple[str, str, int], ...] = ()  # (customer id, sku, users)
    config_digest: str = ""
    state_fingerprint: str = ""
    removal: Removal = Removal.CANCEL
    currency: str = "USD"
    # Users ZeroTek reported for the planned customers (every SKU); None when not known
    # (a plan read back from a file). 0 with managed additions trips the wipe guard.
    reported_users: int | None = field(default=None, compare=False)
    # The customer ids planned when not all of them (`--customer`, expanded to every share
    # of a shared agreement); None = every mapped customer. A saved plan is re-derived for
    # exactly this selection.
    selection: tuple[str, ...] | None = None

    @property
    def unsafe(self) -> bool:
        return bool(self.unsafe_reasons)

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for cp in self.customers for c in cp.changes)

    @property
    def has_errors(self) -> bool:
        return any(cp.errors for cp in self.customers)

    @property
    def revenue_delta(self) -> Decimal:
        return sum((c.revenue_delta for c in self.changes), Decimal(0))

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    def removal_of(self, change: Change) -> Removal:
        """How this plan removes `change`'s addition: what `plan` shows and exactly what
        `apply` sends (render and apply both ask here). The policy (`billing.removal`),
        except that an addition starting after the as-of day (dated at a later
        billStartDate) cannot be cancelled before it starts (ConnectWise answers 400), so
        `cancel` sets its quantity to 0 instead (which also counts as removed, DESIGN 11)."""
        starts = change.effective_date
        if self.removal is Removal.CANCEL and starts is not None and starts > self.period.as_of:
            return Removal.ZERO
        return self.removal


# --- apply results -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeResult:
    change: Change
    ok: bool
    error: str | None = None
    addition_id: int | None = None  # the addition written (new id for an add)
    note: str | None = None  # e.g. "found already committed after a lost response"
    # Sent, but whether it was committed could not be settled even by re-reading (ok is
    # then False: never counted as written).
    unknown: bool = False


@dataclass(frozen=True)
class CustomerResult:
    plan: CustomerPlan
    results: tuple[ChangeResult, ...] = ()
    errors: tuple[str, ...] = ()  # planning errors + apply/verify failures
    verified: bool = False  # found as planned: by the writes' answers, or a re-read after them
    stale: bool = False  # skipped before its first write: its agreement moved (13.7)

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.ok for r in self.results)


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    customers: tuple[CustomerResult, ...]
    started: dt.datetime
    finished: dt.datetime
    writes: int = 0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.customers)
