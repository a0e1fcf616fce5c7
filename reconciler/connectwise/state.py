"""Read what ConnectWise holds for the mapped customers, with the fewest requests.

Companies, agreements and catalog come from chunked `in (...)` list queries, then one
request per resolved mapped agreement for its additions, all concurrent. The three steps
depend on each other (agreements are asked for by company id, additions by agreement id),
so they are pipelined: each chunk of companies is followed by the agreements of those
companies as soon as a full chunk of ids is known, and each agreement a customer resolves
to has its additions fetched as soon as its company's agreements are in. At 10,000
customers that starts the additions seconds earlier than three barriers would.

The early resolutions are only a prefetch: when everything is read, the agreements are
resolved again over the complete data, exactly as without the pipeline, and that decides
which additions the state holds (one resolved late is fetched then; one fetched for an
agreement that did not resolve in the end is dropped). Odd data (a company or agreement
the server returned in another chunk than asked) therefore costs a request, never a wrong
state.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.conditions import Value, chunk_values, in_list
from reconciler.connectwise.payload import (
    ADDITION_FIELDS,
    AGREEMENT_FIELDS,
    AGREEMENTS,
    CATALOG,
    CATALOG_FIELDS,
    COMPANIES,
    COMPANY_FIELDS,
    addition,
    agreement,
    catalog_item,
    company,
)
from reconciler.core.mapping import agreements_by_company, companies_by_key, resolve_agreement
from reconciler.core.model import Config, CustomerMap, ManagedProducts
from reconciler.core.state import ActualState, Addition, Agreement, CatalogItem, Company
from reconciler.net import slots
from reconciler.net.errors import ApiError
from reconciler.net.taskgroup import all_or_none, cancel_and_wait

_T = TypeVar("_T", Company, CatalogItem)
_NONE = ManagedProducts(())  # read_additions' default: every addition someone else's


def additions_path(agreement_id: int) -> str:
    return f"{AGREEMENTS}/{agreement_id}/additions"


async def read_state(
    client: ConnectWiseClient,
    config: Config,
    customers: Sequence[CustomerMap],
    known: Mapping[int, tuple[Addition, ...]] | None = None,
) -> ActualState:
    """`known`: agreements whose additions are already known (a saved plan's snapshot,
    DESIGN 13.7): taken from there, never read; every other resolved agreement is read."""
    products = config.managed_products
    # orphans' lines (DESIGN 13.1) are read as ours: whole quantities, the ledger's spelling
    reading = _Reading(client, customers, config.owned_products, known or {})
    catalog_rows = asyncio.ensure_future(
        client.get_chunked(CATALOG, "identifier", list(products), fields=CATALOG_FIELDS)
    )
    await _all_or_none([catalog_rows, reading.run()])
    catalog = {
        i.identifier: i
        for i in (_canonical(catalog_item(r), products.spelling) for r in catalog_rows.result())
    }
    return dataclasses.replace(reading.state(), catalog=catalog)


async def read_additions(
    client: ConnectWiseClient, agreement_id: int, *, managed: ManagedProducts = _NONE
) -> tuple[Addition, ...]:
    """All additions of one agreement. `managed`: the mapped catalog identifiers; their
    additions take the mapping's spelling and must hold whole quantities (other products
    may legitimately bill fractions, e.g. hours)."""
    path = additions_path(agreement_id)
    rows = await client.get_all(path, fields=ADDITION_FIELDS)
    return tuple(addition(r, agreement_id, path, managed) for r in rows)


async def read_owned(
    client: ConnectWiseClient,
    actual: ActualState,
    agreement_ids: Sequence[int],
    owned: ManagedProducts,
) -> ActualState:
    """`actual` plus the additions of ledger agreements no mapping made us read (orphans,
    DESIGN 13.1): one read each. An agreement ConnectWise no longer has holds nothing."""
    if not agreement_ids:
        return actual

    async def one(agreement_id: int) -> tuple[Addition, ...]:
        try:
            return await read_additions(client, agreement_id, managed=owned)
        except ApiError as exc:
            if exc.status == 404 and exc.code is not None:
                return ()
            raise

    found = await asyncio.gather(*(one(i) for i in agreement_ids))
    return dataclasses.replace(
        actual, additions={**actual.additions, **dict(zip(agreement_ids, found, strict=True))}
    )


class _Reading:
    """Companies, agreements and additions of `customers`, pipelined (module docstring)."""

    def __init__(
        self,
        client: ConnectWiseClient,
        customers: Sequence[CustomerMap],
        products: ManagedProducts,
        known: Mapping[int, tuple[Addition, ...]],
    ) -> None:
        self.client = client
        self.known = known
        self.customers = customers
        self.products = products
        identifiers = sorted({c.company.casefold(): c.company for c in customers}.values())
        # ConnectWise compares identifiers case-insensitively; the mappings may spell them
        # differently. Everything downstream compares exactly, so adopt the mapping's
        # spelling here, once: otherwise `acme` vs `ACME` reads as "company not found" and,
        # worse, an addition of `ZT-OKTA-SSO` mapped as `zt-okta-sso` would look unmanaged
        # and be duplicated.
        self.spelling = {i.casefold(): i for i in identifiers}
        self.company_groups = chunk_values(
            "identifier", identifiers, client.condition_budget(COMPANIES, COMPANY_FIELDS)
        )
        self.agreement_budget = client.condition_budget(AGREEMENTS, AGREEMENT_FIELDS)
        self.customers_of: dict[str, list[CustomerMap]] = defaultdict(list)
        for c in customers:
            self.customers_of[c.company.casefold()].append(c)
        # Filled as answers arrive; companies kept per chunk (by identifier, the later row
        # winning) so the final state is in the order of the chunks, whatever order they
        # were answered in.
        self.company_chunks: list[dict[str, Company]] = [{} for _ in self.company_groups]
        self.companies: dict[str, Company] = {}  # the final ones, in chunk order (_settle)
        self.by_id: dict[int, Company] = {}
        self.refused: dict[str, str] = {}  # identifier (casefolded) -> ConnectWise's 400
        self.agreements: dict[int, Agreement] = {}
        self.by_company: dict[int, list[Agreement]] = defaultdict(list)
        self.pending_ids: list[int] = []  # company ids whose agreements are not asked yet
        self.asked_ids: set[int] = set()
        self.additions: dict[int, asyncio.Task[tuple[Addition, ...]]] = {}
        self.agreement_tasks: list[asyncio.Task[None]] = []
        self.resolved: list[int] = []

    async def run(self) -> None:
        try:
            await _all_or_none([self._companies(i) for i in range(len(self.company_groups))])
            self._ask_agreements(everything=True)
            while self.agreement_tasks:  # a chunk never adds more, but stay robust
                tasks, self.agreement_tasks = self.agreement_tasks, []
                await _all_or_none(tasks)
            await self._settle()
        except BaseException as exc:
            pending = [*self.agreement_tasks, *self.additions.values()]
            for task in pending:
                _discard(task)  # only unfinished ones (a failure elsewhere): never left running
            await cancel_and_wait(pending, exc)  # ...and ended before the error goes on
            raise

    async def _companies(self, index: int) -> None:
        with slots.priority(slots.NORMAL):
            rows = await self._company_rows(self.company_groups[index])
        # A row a later one of the same identifier overrides (twins equal up to case, e.g.
        # `acme` and `ACME`, both answer `identifier in ("Acme")`) is no company of the
        # state (`_ordered_companies`): its agreements are not asked for.
        latest = self.company_chunks[index]
        for row in rows:
            found = _canonical(company(row), self.spelling.get)
            latest[found.identifier] = found
        for found in latest.values():
            self.by_id[found.id] = found
            if found.id not in self.asked_ids:
                self.asked_ids.add(found.id)
                self.pending_ids.append(found.id)
        self._ask_agreements(everything=False)

    async def _company_rows(self, identifiers: Sequence[Value]) -> list[dict[str, Any]]:
        """The companies of `identifiers`. A 400 to the chunk (one identifier ConnectWise
        will not take in a condition) is bisected down to the identifiers it refuses alone:
        those customers get the error, everyone else is still compared (DESIGN 13.5)."""
        condition = in_list("identifier", identifiers)
        try:
            return await self.client.get_all(COMPANIES, condition, COMPANY_FIELDS)
        except ApiError as exc:
            if exc.status != 400:
                raise
            if len(identifiers) == 1:
                self.refused[str(identifiers[0]).casefold()] = str(exc)
                return []
        half = len(identifiers) // 2
        parts = [self._company_rows(identifiers[:half]), self._company_rows(identifiers[half:])]
        return [row for part in await all_or_none(parts) for row in part]

    def _ask_agreements(self, *, everything: bool) -> None:
        """Ask for the agreements of the pending company ids in full chunks, and the rest
        when `everything`: as many requests as one chunked query over the ids in arrival
        order (over the sorted ids, as the three-step read cut them, now and then one
        fewer: ids of different lengths pack differently)."""
        groups = chunk_values("company/id", self.pending_ids, self.agreement_budget)
        keep: list[Value] = [] if everything or not groups else groups.pop()
        self.pending_ids = _ints(keep)
        for group in groups:
            task = asyncio.create_task(self._agreements(_ints(group)))
            self.agreement_tasks.append(task)

    async def _agreements(self, company_ids: list[int]) -> None:
        with slots.priority(slots.URGENT):  # unlocks the additions of these companies
            condition = in_list("company/id", company_ids)
            rows = await self.client.get_all(AGREEMENTS, condition, AGREEMENT_FIELDS)
        for row in rows:
            found = agreement(row, AGREEMENTS)
            if found.id not in self.agreements:
                self.by_company[found.company_id].append(found)
            self.agreements[found.id] = found
        # The agreements of these companies are all in: their customers resolve now.
        by_key = companies_by_key(self.by_id[i] for i in company_ids if i in self.by_id)
        for cid in company_ids:
            known = self.by_id.get(cid)
            for customer in self.customers_of.get(known.identifier.casefold(), ()) if known else ():
                chosen = resolve_agreement(
                    customer, by_key, self.agreements, self.by_company
                ).agreement
                if chosen is not None:
                    self._fetch_additions(chosen.id)

    def _fetch_additions(self, agreement_id: int) -> None:
        if agreement_id not in self.additions and agreement_id not in self.known:
            self.additions[agreement_id] = asyncio.create_task(self._read_additions(agreement_id))

    async def _read_additions(self, agreement_id: int) -> tuple[Addition, ...]:
        with slots.priority(slots.BACKGROUND):  # thousands; nothing waits on one of them
            return await read_additions(self.client, agreement_id, managed=self.products)

    async def _settle(self) -> None:
        """Resolve over the complete data (what decides), fetch what the prefetch missed and
        the agreements named by id that are not their company's (concurrently: only so the
        planner can say whose they are)."""
        self.companies = self._ordered_companies()
        by_key = companies_by_key(self.companies.values())
        by_company = agreements_by_company(self.agreements.values())
        self.resolved = sorted(
            {
                a.id
                for c in self.customers
                if (a := resolve_agreement(c, by_key, self.agreements, by_company).agreement)
                is not None
            }
        )
        for agreement_id in self.resolved:
            self._fetch_additions(agreement_id)
        strays = sorted(
            {c.agreement for c in self.customers if isinstance(c.agreement, int)}
            - self.agreements.keys()
        )
        stray_rows = asyncio.ensure_future(
            self.client.get_chunked(AGREEMENTS, "id", strays, fields=AGREEMENT_FIELDS)
        )
        reads = [self.additions[i] for i in self.resolved if i in self.additions]
        await _all_or_none([stray_rows, *reads])
        for row in stray_rows.result():
            stray = agreement(row, AGREEMENTS)
            self.agreements.setdefault(stray.id, stray)
        confirmed = set(self.resolved)
        for agreement_id, task in self.additions.items():
            if agreement_id not in confirmed:
                _discard(task)  # a prefetch the final resolution did not confirm

    def _ordered_companies(self) -> dict[str, Company]:
        """In chunk order, whatever order the chunks were answered in (as one chunked query
        returns them: a later row of the same identifier wins)."""
        companies: dict[str, Company] = {}
        for chunk in self.company_chunks:
            companies.update(chunk)
        return companies

    def state(self) -> ActualState:
        return ActualState(
            companies=self.companies,
            agreements=dict(sorted(self.agreements.items())),
            catalog={},
            additions={
                i: self.known[i] if i in self.known else self.additions[i].result()
                for i in self.resolved
            },
            refused=dict(self.refused),
        )


async def _all_or_none(aws: Sequence[Awaitable[Any]]) -> None:
    """taskgroup.all_or_none: the first failure cancels the others and waits for them."""
    await all_or_none(aws)


def _discard(task: asyncio.Task[Any]) -> None:
    """Cancel a task whose result is not wanted; a failure it already had is retrieved, so
    asyncio does not log it as never retrieved (the error that matters is raised)."""
    if task.done():
        if not task.cancelled():
            task.exception()
    else:
        task.cancel()


def _ints(values: Sequence[Value]) -> list[int]:
    return [v for v in values if isinstance(v, int)]


def _canonical(item: _T, spelling: Callable[[str], str | None]) -> _T:
    name = spelling(item.identifier.casefold()) or item.identifier
    return item if name == item.identifier else dataclasses.replace(item, identifier=name)
