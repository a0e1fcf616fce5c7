"""ZeroTek usage API client: bearer token, cursor pagination, the shared retry policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from reconciler.core.errors import ReconcileError
from reconciler.core.periods import Period
from reconciler.core.state import Usage
from reconciler.net.errors import ApiError
from reconciler.net.http import HttpApi
from reconciler.net.settings import DEFAULT_HTTP, HttpSettings
from reconciler.net.stats import RequestStats
from reconciler.net.taskgroup import all_or_none
from reconciler.net.throttle import Throttle
from reconciler.usage.identity import SkuRows

CUSTOMERS = "/v1/customers"
USAGE = "/v1/usage"
MAX_PAGES = 100_000  # a server handing out endless cursors must not hang the run


class ZeroTekClient(HttpApi):
    service = "ZeroTek"
    credential_hint = "ZEROTEK_API_TOKEN"
    api = "zerotek"
    id_after = frozenset({"customers"})  # /v1/customers/{id}/usage: ids are not numeric
    url_hint = "ZEROTEK_API_URL"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        http: HttpSettings = DEFAULT_HTTP,
        stats: RequestStats | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        super().__init__(
            base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            secrets=(token,),
            http=http,
            stats=stats,
            throttle=throttle,
        )

    def parse_error_body(self, body: Any) -> tuple[str | None, str | None, str | None]:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return None, None, None
        code, message = error.get("code"), error.get("message")
        return (
            code if isinstance(code, str) else None,
            message if isinstance(message, str) else None,
            None,
        )

    async def _object(self, path: str, params: dict[str, str | int]) -> dict[str, Any]:
        response = await self.request("GET", path, params=params)
        body = self.json_of(response, "GET", path)
        if not isinstance(body, dict):
            raise _malformed(path, "the body", "is not a JSON object")
        return body

    async def _pages(self, path: str, params: dict[str, str | int]) -> list[Any]:
        """Every `data` item across `next_cursor` pages."""
        items: list[Any] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = await self._object(path, {**params, "cursor": cursor} if cursor else params)
            data = page.get("data")
            if not isinstance(data, list):
                raise _malformed(path, "data", "is not a list")
            items.extend(data)
            cursor = page.get("next_cursor")
            if cursor is None or cursor == "":
                return items
            if not isinstance(cursor, str):
                raise _malformed(path, "next_cursor", "is not a string or null")
            if cursor in seen:
                raise _malformed(path, "next_cursor", f"repeats {cursor!r} (endless pages)")
            seen.add(cursor)
        raise _malformed(path, "next_cursor", f"still set after {MAX_PAGES} pages")

    async def customer_directory(self) -> dict[str, tuple[str, str | None]]:
        """ZeroTek's customer directory with status: id -> (name, status or None).
        `discover` proposes mappings only for customers that are not inactive."""
        out: dict[str, tuple[str, str | None]] = {}
        for row in await self._pages(CUSTOMERS, {}):
            if not isinstance(row, dict):
                raise _malformed(CUSTOMERS, "data item", "is not an object")
            ident, name, status = row.get("id"), row.get("name"), row.get("status")
            if not isinstance(ident, str) or not ident:
                raise _malformed(CUSTOMERS, "id", f"is {ident!r}, expected a string")
            out[ident] = (
                name if isinstance(name, str) else ident,
                status if isinstance(status, str) else None,
            )
        return out

    async def customers(self) -> dict[str, str]:
        """ZeroTek's customer directory: id -> name."""
        out: dict[str, str] = {}
        for row in await self._pages(CUSTOMERS, {}):
            if not isinstance(row, dict):
                raise _malformed(CUSTOMERS, "data item", "is not an object")
            ident, name = row.get("id"), row.get("name")
            if not isinstance(ident, str) or not ident:
                raise _malformed(CUSTOMERS, "id", f"is {ident!r}, expected a string")
            out[ident] = name if isinstance(name, str) else ident
        return out

    async def usage(self, start: dt.date, end: dt.date) -> dict[str, dict[str, int]]:
        """Distinct users per customer and SKU over [start, end], all customers (`discover`:
        a customer listing one SKU in two spellings keeps its first row)."""
        return (await self.usage_rows(start, end)).result()

    async def usage_rows(self, start: dt.date, end: dt.date) -> SkuRows:
        """The bulk usage rows, SKUs keyed as one identity (usage.identity)."""
        rows = SkuRows()
        window: dict[str, str | int] = {"start": start.isoformat(), "end": end.isoformat()}
        for row in await self._pages(USAGE, window):
            if not isinstance(row, dict):
                raise _malformed(USAGE, "data item", "is not an object")
            customer = _string(row, "customer_id", USAGE)
            rows.add(customer, _string(row, "sku", USAGE), _users(row, USAGE))
        return rows

    async def customer_usage(
        self, customer_id: str, start: dt.date, end: dt.date
    ) -> SkuRows | None:
        """One customer's usage; None when ZeroTek says it does not know the customer."""
        path = f"{CUSTOMERS}/{quote(customer_id, safe='')}/usage"
        window: dict[str, str | int] = {"start": start.isoformat(), "end": end.isoformat()}
        try:
            body = await self._object(path, window)
        except ApiError as exc:
            # A ZeroTek error body (it has a code) means the API answered: the customer is
            # unknown. A bare 404 stays a "check the URL" error.
            if exc.status != 404 or exc.code is None:
                raise
            return None
        if body.get("customer_id") not in (None, customer_id):
            raise _malformed(path, "customer_id", f"is {body.get('customer_id')!r}")
        items = body.get("skus")
        if not isinstance(items, list):
            raise _malformed(path, "skus", "is not a list")
        rows = SkuRows()
        for row in items:
            if not isinstance(row, dict):
                raise _malformed(path, "skus item", "is not an object")
            rows.add(customer_id, _string(row, "sku", path), _users(row, path))
        return rows


async def zerotek_rows(
    client: ZeroTekClient, period: Period, customer_ids: Sequence[str] | None = None
) -> Usage:
    """Full sync: the bulk usage, `known_customers` None (the directory is read apart,
    `client.customers()`, see `usage.reading_usage`). A few customers: one call each; those
    ZeroTek answers 404 for are left out of `known_customers`, so the planner warns about
    them and leaves them untouched while the others proceed (as in a full sync)."""
    if customer_ids is None:
        rows = await client.usage_rows(period.start, period.end)
        return Usage(period, rows.result(), None, problems=rows.problems)
    ids = list(dict.fromkeys(customer_ids))
    results = await all_or_none([client.customer_usage(c, period.start, period.end) for c in ids])
    answered = {c: r for c, r in zip(ids, results, strict=True) if r is not None}
    users: dict[str, dict[str, int]] = {}
    problems: dict[str, str] = {}
    for r in answered.values():
        users.update(r.result())
        problems.update(r.problems)
    return Usage(period, users, {c: c for c in answered}, problems=problems)


def _malformed(path: str, field: str, problem: str) -> ReconcileError:
    return ReconcileError(f"ZeroTek returned a malformed response on GET {path}: {field} {problem}")


def _string(row: dict[str, Any], key: str, path: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise _malformed(path, key, f"is {value!r}, expected a non-empty string")
    return value


def _users(row: dict[str, Any], path: str) -> int:
    value = row.get("users")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _malformed(path, "users", f"is {value!r}, expected a whole number >= 0")
    return value
