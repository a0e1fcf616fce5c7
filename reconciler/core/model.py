"""The configuration model: the desired-state inputs read from mappings/*.yaml (settings,
SKU and customer mappings) and state/managed.json (the ledger), and the products they
manage (`ManagedProducts`). The other nouns are beside it: ConnectWise and ZeroTek state in
`state`, plans in `plan`, apply results in `results`, the billing period in `periods`.

All frozen: the planner is a pure function of these, so nothing downstream may mutate them.
Money is `Decimal` (never float) because it ends up on invoices.
"""

from __future__ import annotations

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
