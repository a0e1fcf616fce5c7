"""ZeroTek usage API simulation under /zerotek/v1 (DESIGN.md section 4).

`users` = distinct users whose assignment [assigned_on, unassigned_on or open] overlaps
[start, end] (inclusive dates). Cursors are opaque and bound to the query they came from
(reusing one with other dates is a 400). Customers come 100 to a page, usage rows 500.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

from reconciler.sandbox.state import World
from reconciler.sandbox.wire import Request, Response, json_response, zt_error

PREFIX = "/zerotek"
_CUSTOMER_USAGE = re.compile(r"^/v1/customers/([^/]+)/usage$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def classify(method: str, path: str) -> str:
    sub = path[len(PREFIX) :]
    if sub == "/v1/customers":
        return f"{method} zt-customers"
    if sub == "/v1/usage":
        return f"{method} zt-usage"
    if _CUSTOMER_USAGE.match(sub):
        return f"{method} zt-customer-usage"
    return f"{method} zt-other"


class _BadRequest(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _row(row: Any) -> dict[str, Any]:
    if isinstance(row, tuple):  # a usage row
        customer, sku, users = row
        return {"customer_id": customer, "sku": sku, "users": users}
    return dict(row)


def _encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None, kind: str, query: dict[str, str]) -> int:
    if cursor is None or cursor == "":
        return 0
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if state.get("k") != kind or state.get("q") != query:
            raise ValueError
        offset = state["o"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise _BadRequest("invalid_cursor", "cursor is not valid for this query") from None


def _day(req: Request, name: str) -> dt.date:
    raw = req.arg(name)
    if raw is None or raw == "":
        raise _BadRequest("invalid_request", f"query parameter {name} is required (YYYY-MM-DD)")
    try:
        if not _ISO_DAY.match(raw):
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise _BadRequest(
            "invalid_request", f"{name} must be a date YYYY-MM-DD, got {raw!r}"
        ) from None


def _window(req: Request) -> tuple[dt.date, dt.date]:
    start, end = _day(req, "start"), _day(req, "end")
    if start > end:
        raise _BadRequest("invalid_request", f"start {start} is after end {end}")
    return start, end


class ZeroTekApi:
    customers_page_size = 100
    usage_page_size = 500

    def __init__(self, world: World, token: Callable[[], str]) -> None:
        self.world = world
        self.token = token
        self._rows_cache: tuple[object, list[tuple[str, str, int]]] | None = None

    def handle(self, req: Request) -> Response:
        if req.bearer() != self.token():
            return zt_error(401, "unauthorized", "a valid bearer token is required")
        sub = req.path[len(PREFIX) :]
        route = classify(req.method, req.path).split(" ", 1)[1]
        if route == "zt-other":
            return zt_error(404, "not_found", f"no such endpoint: {sub}")
        if req.method != "GET":
            resp = zt_error(405, "method_not_allowed", "only GET is supported")
            resp.headers.append(("Allow", "GET"))
            return resp
        try:
            if route == "zt-customers":
                return self._customers(req)
            if route == "zt-usage":
                return self._usage(req)
            m = _CUSTOMER_USAGE.match(sub)
            assert m is not None
            return self._customer_usage(req, m.group(1))
        except _BadRequest as exc:
            return zt_error(400, exc.code, str(exc))

    def _customers(self, req: Request) -> Response:
        offset = _decode_cursor(req.arg("cursor"), "customers", {})
        size = self.customers_page_size
        with self.world.lock:  # only the page is taken (10,000 customers make 100 pages);
            # records are replaced, never mutated, so _paged copies them outside the lock
            every = self.world.zt_customers.values()
            rows = list(islice(every, offset, offset + size + 1))
        return self._paged(rows, 0, size, "customers", {}, offset_shown=offset)

    def _usage(self, req: Request) -> Response:
        start, end = _window(req)
        query = {"start": start.isoformat(), "end": end.isoformat()}
        offset = _decode_cursor(req.arg("cursor"), "usage", query)
        rows = self._usage_rows(start, end)
        return self._paged(rows, offset, self.usage_page_size, "usage", query)

    def _usage_rows(self, start: dt.date, end: dt.date) -> list[tuple[str, str, int]]:
        """Every usage row of the window, sorted; kept while the world's usage answer for
        the window is the same object (its cache), so paging does not rebuild it per page."""
        counts = self.world.usage(start, end)
        cached = self._rows_cache
        if cached is None or cached[0] is not counts:
            rows = [
                (customer, sku, users)
                for customer, skus in sorted(counts.items())
                for sku, users in sorted(skus.items())
            ]
            cached = self._rows_cache = (counts, rows)
        return cached[1]

    @staticmethod
    def _paged(
        rows: Sequence[Any],
        offset: int,
        size: int,
        kind: str,
        query: dict[str, str],
        *,
        offset_shown: int | None = None,
    ) -> Response:
        """`rows[offset:]`, one page; `offset_shown` when `rows` already starts at the page
        (then it holds at most one row past it, to tell whether more follow)."""
        chosen = [_row(r) for r in rows[offset : offset + size]]
        more = offset + size < len(rows)
        at = offset if offset_shown is None else offset_shown
        cursor = _encode_cursor({"k": kind, "q": query, "o": at + size}) if more else None
        return json_response(200, {"data": chosen, "next_cursor": cursor})

    def _customer_usage(self, req: Request, customer_id: str) -> Response:
        with self.world.lock:
            known = customer_id in self.world.zt_customers
        if not known:
            return zt_error(404, "not_found", f"customer {customer_id} not found")
        start, end = _window(req)
        skus = self.world.usage(start, end).get(customer_id, {})
        return json_response(
            200,
            {
                "customer_id": customer_id,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "skus": [{"sku": sku, "users": n} for sku, n in sorted(skus.items())],
            },
        )
