"""`discover`: propose mappings for unmapped ZeroTek customers and SKUs. Pure.

For each active ZeroTek customer without a mapping: the ConnectWise company whose name
matches best (see `matching`) and the agreement its additions should go to, with a
confidence 0..1 (name score x agreement choice) and the reason in words. For each SKU in
use without a mapping: a catalog product. Ties, dead agreements, already-mapped agreements
and weak matches yield no proposal, with the reason - never a guess.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from reconciler.core.model import Config
from reconciler.core.state import Agreement, CatalogItem, Company, Directory
from reconciler.insight.matching import (
    AgreementChoice,
    choose_agreement,
    fold,
    score_names,
    tokens,
)

DEFAULT_MIN_CONFIDENCE = 0.9
TIE_MARGIN = 0.02  # two companies this close on name score are a tie: flag, never guess
WEAK = 0.65  # below this, "no company looks like it"
SHORTLIST = 8  # candidates per customer re-scored in full after rapidfuzz's fast pass


@dataclass(frozen=True)
class CustomerProposal:
    customer_id: str
    name: str
    users: dict[str, int]  # sku -> users in the window
    confidence: float
    reason: str
    company: Company | None = None
    agreement: Agreement | None = None
    candidates: tuple[str, ...] = ()  # company identifiers, when tied

    @property
    def proposed(self) -> bool:
        return self.company is not None and self.agreement is not None


@dataclass(frozen=True)
class SkuProposal:
    sku: str
    users: int
    customers: int
    confidence: float
    reason: str
    product: CatalogItem | None = None

    @property
    def proposed(self) -> bool:
        return self.product is not None


@dataclass(frozen=True)
class Discovery:
    customers: tuple[CustomerProposal, ...]
    skus: tuple[SkuProposal, ...]
    window: tuple[dt.date, dt.date]
    skipped_inactive: int = 0
    notes: tuple[str, ...] = field(default=())


# --- customers -------------------------------------------------------------------------------


def _taken(config: Config, directory: Directory) -> dict[int, str]:
    """Agreement id -> the customer already billing into it (by id or by exact name)."""
    by_ident = {c.identifier.casefold(): c for c in directory.companies}
    taken: dict[int, str] = {}
    for customer in config.customers:
        if isinstance(customer.agreement, int):
            taken.setdefault(customer.agreement, customer.id)
            continue
        company = by_ident.get(customer.company.casefold())
        if company is None:
            continue
        for a in directory.agreements:
            if a.company_id == company.id and a.name == customer.agreement:
                taken.setdefault(a.id, customer.id)
    return taken


class _CompanyIndex:
    """Company names and identifiers, normalised once, for fast shortlisting.

    Two keys per text, both compared with rapidfuzz's plain `ratio` (its fastest scorer,
    over thousands of keys per customer): the words sorted (word order does not matter)
    and the words joined (spacing does not matter). Only the shortlist is scored in full."""

    def __init__(self, companies: tuple[Company, ...]) -> None:
        self.companies = companies
        self.sorted_keys: list[str] = []
        self.joined_keys: list[str] = []
        self.owner: list[int] = []
        self.exact: dict[str, list[int]] = defaultdict(list)  # either key -> positions
        for i, c in enumerate(companies):
            for text in (c.name, c.identifier):
                words = tokens(text)
                if words:
                    pos = len(self.owner)
                    self.sorted_keys.append(" ".join(sorted(words)))
                    self.joined_keys.append("".join(words))
                    self.owner.append(i)
                    self.exact["s:" + self.sorted_keys[-1]].append(pos)
                    self.exact["j:" + self.joined_keys[-1]].append(pos)

    def scores(self, name: str) -> dict[int, tuple[float, str, str]]:
        """company index -> (score, how, the text it matched), over a shortlist."""
        words = tokens(name)
        q_sorted, q_joined = " ".join(sorted(words)), "".join(words)
        # Same words (any order or spacing) score >= 0.96, anything else at most 0.93: the
        # exact keys alone decide the best match and any tie, without a fuzzy scan.
        exact = self.exact.get("s:" + q_sorted, []) + self.exact.get("j:" + q_joined, [])
        if exact:
            return self._score(name, exact)
        # Far below WEAK nothing is proposed anyway: the cutoff lets rapidfuzz skip early.
        cutoff = WEAK * 100 - 15
        hits = process.extract(
            q_sorted,
            self.sorted_keys,
            scorer=fuzz.ratio,
            limit=SHORTLIST * 2,
            score_cutoff=cutoff,
        ) + process.extract(
            "".join(words),
            self.joined_keys,
            scorer=fuzz.ratio,
            limit=SHORTLIST,
            score_cutoff=cutoff,
        )
        return self._score(name, [pos for _, _, pos in hits])

    def _score(self, name: str, positions: list[int]) -> dict[int, tuple[float, str, str]]:
        best: dict[int, tuple[float, str, str]] = {}
        for pos in positions:
            i = self.owner[pos]
            if i in best:
                continue
            company = self.companies[i]
            by_name = score_names(name, company.name)
            by_ident = score_names(name, company.identifier)
            # An identifier is an abbreviation someone typed, not the company's name:
            # agreeing with it counts, a little less than agreeing with the name.
            ident_score = round(by_ident.score * 0.95, 3)
            if ident_score > by_name.score:
                best[i] = (ident_score, f"{by_ident.how} (company identifier)", company.identifier)
            else:
                best[i] = (by_name.score, by_name.how, company.name)
        return best


def propose_customer(
    customer_id: str,
    name: str,
    users: dict[str, int],
    index: _CompanyIndex,
    agreements: Mapping[int, list[Agreement]],
    types: dict[int, str],
    taken: dict[int, str],
    today: dt.date,
) -> CustomerProposal:
    ranked = sorted(index.scores(name).items(), key=lambda kv: (-kv[1][0], kv[0]))

    def none(reason: str, candidates: tuple[str, ...] = ()) -> CustomerProposal:
        return CustomerProposal(customer_id, name, users, 0.0, reason, candidates=candidates)

    if not ranked or ranked[0][1][0] < WEAK:
        if ranked:
            top = index.companies[ranked[0][0]]
            return none(
                f"no ConnectWise company looks like it (closest: {top.name!r}, "
                f"{ranked[0][1][0]:.2f})"
            )
        return none("no ConnectWise company looks like it")
    first, (score, how, matched) = ranked[0]
    tied = [i for i, (s, _, _) in ranked if s >= score - TIE_MARGIN]
    if len(tied) > 1:
        names = ", ".join(
            f"{index.companies[i].identifier} {index.companies[i].name!r}" for i in tied
        )
        return none(
            f"tie: {len(tied)} companies match it equally well ({names}); map it by hand",
            tuple(index.companies[i].identifier for i in tied),
        )
    company = index.companies[first]
    choice: AgreementChoice = choose_agreement(
        agreements.get(company.id, []), today, types=types, taken=taken
    )
    reason = f"name match {score:.2f}: {name!r} ~ {matched!r} ({how})"
    if choice.agreement is None:
        return CustomerProposal(
            customer_id,
            name,
            users,
            0.0,
            f"{reason}; but {choice.reason}",
            company=company,
        )
    confidence = round(score * choice.factor, 3)
    return CustomerProposal(
        customer_id,
        name,
        users,
        confidence,
        f"{reason}; agreement {choice.agreement.id} {choice.agreement.name!r}: {choice.reason}",
        company=company,
        agreement=choice.agreement,
    )


# --- SKUs ------------------------------------------------------------------------------------


def _pattern(config: Config) -> tuple[str, str] | None:
    """(prefix, suffix) when every existing SKU mapping reads product = prefix+SKU+suffix."""
    shapes: set[tuple[str, str]] = set()
    for s in config.skus:
        sku, product = fold(s.sku), fold(s.product)
        at = product.find(sku)
        if at < 0:
            return None
        shapes.add((s.product[:at], s.product[at + len(sku) :]))
    if len(shapes) != 1:
        return None
    return next(iter(shapes))


def propose_sku(
    sku: str,
    users: int,
    customers: int,
    config: Config,
    catalog: tuple[CatalogItem, ...],
) -> SkuProposal:
    by_ident = {fold(c.identifier): c for c in catalog}
    mapped_products = {fold(s.product) for s in config.skus}

    def found(item: CatalogItem, confidence: float, why: str) -> SkuProposal:
        if item.inactive:
            return SkuProposal(sku, users, customers, 0.0, f"{why}, but it is inactive")
        if fold(item.identifier) in mapped_products:
            # Several SKUs may share a product, but a silent merge of licence counts is
            # worth a human look: proposed, below the write threshold.
            confidence = min(confidence, 0.85)
            why += " (already billing another SKU: the counts would be summed)"
        return SkuProposal(sku, users, customers, confidence, why, item)

    owned = [line for line in config.ledger or () if fold(line.sku) == fold(sku)]
    was = by_ident.get(fold(owned[-1].product)) if owned else None
    if was is not None:  # DESIGN 13.1: the ledger remembers what the SKU billed as
        return found(
            was,
            0.99,
            f"state/managed.json lists {len(owned)} line(s) of {was.identifier!r} written for "
            "this SKU before its mapping was removed",
        )
    exact = by_ident.get(fold(sku))
    if exact is not None:
        return found(exact, 0.98, f"catalog item {exact.identifier!r} has the SKU's name")
    shape = _pattern(config)
    if shape is not None:
        want = f"{shape[0]}{sku}{shape[1]}"
        item = by_ident.get(fold(want))
        n = len(config.skus)
        if item is not None:
            return found(
                item,
                0.97,
                f"catalog item {item.identifier!r} follows the pattern of the {n} existing "
                f"SKU mapping(s) ({shape[0]}<SKU>{shape[1]})",
            )
        return SkuProposal(
            sku,
            users,
            customers,
            0.0,
            f"the catalog has no {want!r}, which the {n} existing SKU mapping(s) would "
            "suggest; add it to the catalog or map the SKU by hand",
        )
    return _fuzzy_sku(sku, users, customers, catalog, mapped_products)


def _fuzzy_sku(
    sku: str,
    users: int,
    customers: int,
    catalog: tuple[CatalogItem, ...],
    mapped_products: set[str],
) -> SkuProposal:
    """Plausible at best: a ZeroTek SKU has no description to compare, so a similar
    identifier alone never reaches the write threshold."""
    wanted = " ".join(tokens(sku))
    best: tuple[float, CatalogItem] | None = None
    for item in catalog:
        if item.inactive or fold(item.identifier) in mapped_products:
            continue
        score = max(
            fuzz.token_set_ratio(wanted, " ".join(tokens(item.identifier))),
            fuzz.token_set_ratio(wanted, " ".join(tokens(item.description))),
        )
        if best is None or score > best[0]:
            best = (score, item)
    if best is None or best[0] < WEAK * 100:
        return SkuProposal(sku, users, customers, 0.0, "no active catalog item looks like it")
    score, item = best
    return SkuProposal(
        sku,
        users,
        customers,
        round(min(score / 100, 1.0) * 0.85, 3),
        f"catalog item {item.identifier!r} ({item.description!r}) has a similar "
        f"identifier or description ({score / 100:.2f})",
        item,
    )


# --- everything ------------------------------------------------------------------------------


def discover(
    config: Config,
    zerotek: Mapping[str, tuple[str, str | None]],
    usage: Mapping[str, Mapping[str, int]],
    directory: Directory,
    today: dt.date,
    window: tuple[dt.date, dt.date],
) -> Discovery:
    """`zerotek`: ZeroTek's directory, id -> (name, status); `usage`: users per customer and
    SKU in `window`; `today`: agreements that ended before it are never proposed."""
    mapped = {c.id for c in config.customers}
    index = _CompanyIndex(directory.companies)
    agreements: dict[int, list[Agreement]] = defaultdict(list)
    for a in directory.agreements:
        agreements[a.company_id].append(a)
    taken = _taken(config, directory)
    proposals = []
    skipped = 0
    for cid in sorted(zerotek):
        if cid in mapped:
            continue
        name, status = zerotek[cid]
        if status is not None and status.casefold() != "active":
            skipped += 1
            continue
        users = {s: n for s, n in sorted(usage.get(cid, {}).items()) if n > 0}
        if not cid.strip() or any(ch.isspace() for ch in cid):
            reason = "its ZeroTek id contains white space, which a mapping cannot hold"
            proposals.append(CustomerProposal(cid, name, users, 0.0, reason))
            continue
        proposals.append(
            _from_ledger(config, cid, name, users, directory, taken, today)
            or propose_customer(
                cid, name, users, index, agreements, directory.agreement_types, taken, today
            )
        )

    proposals = _one_customer_per_agreement(proposals)

    known = {fold(s.sku) for s in config.skus}
    sku_users: dict[str, int] = defaultdict(int)
    sku_customers: dict[str, int] = defaultdict(int)
    for skus in usage.values():
        for sku, n in skus.items():
            if n > 0 and fold(sku) not in known:
                sku_users[sku] += n
                sku_customers[sku] += 1
    sku_proposals = tuple(
        propose_sku(s, sku_users[s], sku_customers[s], config, directory.catalog)
        for s in sorted(sku_users)
    )
    return Discovery(tuple(proposals), sku_proposals, window, skipped)


def _from_ledger(
    config: Config,
    cid: str,
    name: str,
    users: dict[str, int],
    directory: Directory,
    taken: dict[int, str],
    today: dt.date,
) -> CustomerProposal | None:
    """A customer whose mapping was removed while state/managed.json still lists its lines
    (DESIGN 13.1): its old agreement, when that is still open and nobody else's."""
    ids = {line.agreement_id for line in config.ledger or () if line.customer_id == cid}
    if len(ids) != 1:
        return None
    (agreement_id,) = ids
    agreement = next((a for a in directory.agreements if a.id == agreement_id), None)
    company = next(
        (c for c in directory.companies if agreement and c.id == agreement.company_id), None
    )
    if agreement is None or company is None or agreement_id in taken:
        return None
    ended = agreement.end_date is not None and not agreement.no_ending_date
    if ended and agreement.end_date is not None and agreement.end_date < today:
        return None
    return CustomerProposal(
        cid,
        name,
        users,
        0.99,
        f"state/managed.json lists its lines on agreement {agreement_id} "
        f"{agreement.name!r} of {company.identifier}, written before its mapping was removed",
        company=company,
        agreement=agreement,
    )


def _one_customer_per_agreement(proposals: list[CustomerProposal]) -> list[CustomerProposal]:
    """Two new customers on one agreement would fail validation (they need
    `shared_agreement: true`, a human decision). A clearly stronger claim (by 0.1 or more)
    keeps the agreement; otherwise none of them is proposed. Either way they say why."""
    claims: dict[int, list[CustomerProposal]] = defaultdict(list)
    for p in proposals:
        if p.agreement is not None:
            claims[p.agreement.id].append(p)
    out = []
    for p in proposals:
        rivals = [r for r in claims.get(p.agreement.id, []) if r is not p] if p.agreement else []
        if rivals and not all(p.confidence >= r.confidence + 0.1 for r in rivals):
            others = ", ".join(r.customer_id for r in rivals)
            p = CustomerProposal(
                p.customer_id,
                p.name,
                p.users,
                0.0,
                f"{p.reason}; but the same agreement is a candidate for {others}: "
                "map them by hand (with shared_agreement: true if they really share it)",
                company=p.company,
            )
        out.append(p)
    return out
