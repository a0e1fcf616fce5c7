"""ConnectWise PSA REST client: auth, pagination, chunked `in` queries, retries, concurrency.

Speaks only the documented conventions (DESIGN 4, research-connectwise.md), so it works
against any server following them, not just the sandbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_plus

import httpx

from reconciler.config.env import CWCredentials
from reconciler.connectwise.conditions import Value, in_chunks
from reconciler.core.errors import ReconcileError
from reconciler.net.errors import ApiError, OutcomeUnknown
from reconciler.net.http import HttpApi
from reconciler.net.settings import DEFAULT_HTTP, HttpSettings
from reconciler.net.stats import RequestStats
from reconciler.net.taskgroup import all_or_none
from reconciler.net.throttle import Throttle
from reconciler.secure.scrub import basic_auth_token

__all__ = ["ApiError", "ConnectWiseClient", "OutcomeUnknown", "RequestStats"]

ACCEPT = "application/vnd.connectwise.com+json; version=2020.4"
PAGE_SIZE = 1000  # the server caps pageSize here whatever we ask
MAX_PAGES = 10_000  # 10 million items at full pages: far beyond any real tenant (13.5)
MAX_URL = 2000  # proxies and IIS start refusing URLs not far above this


class ConnectWiseClient(HttpApi):
    service = "ConnectWise"
    credential_hint = "CW_COMPANY_ID/CW_PUBLIC_KEY/CW_PRIVATE_KEY/CW_CLIENT_ID"
    api = "connectwise"
    url_hint = "CW_API_URL"

    def __init__(
        self,
        base_url: str,
        creds: CWCredentials,
        *,
        http: HttpSettings = DEFAULT_HTTP,
        stats: RequestStats | None = None,
        throttle: Throttle | None = None,
        page_size: int = PAGE_SIZE,
        max_url: int = MAX_URL,
    ) -> None:
        # The scrubber's own encoding of the pair: the form it removes is the form sent.
        token = basic_auth_token(creds.username, creds.private_key)
        super().__init__(
            base_url,
            headers={
                "Authorization": f"Basic {token}",
                "clientId": creds.client_id,
                "Accept": ACCEPT,
            },
            secrets=(creds.private_key, creds.public_key, creds.client_id, creds.username, token),
            http=http,
            stats=stats,
            throttle=throttle,
        )
        self.page_size = page_size
        self.max_url = max_url

    def parse_error_body(self, body: Any) -> tuple[str | None, str | None, str | None]:
        # {"code","message","errors":[{"code","message","resource","field"}]}: the nested
        # errors say what is actually wrong ("company object is invalid" says nothing).
        if not isinstance(body, dict):
            return None, None, None
        code = _text(body.get("code"))
        message = _text(body.get("message"))
        fld = None
        details = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        if details:
            messages = [m for m in (_text(e.get("message")) for e in details) if m]
            if messages:
                message = "; ".join(messages)
            fields = [f for f in (_text(e.get("field")) for e in details) if f]
            fld = ", ".join(dict.fromkeys(fields)) or None
            code = code or _text(details[0].get("code"))
        return code, message, fld

    # --- reads --------------------------------------------------------------------------

    async def get(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        response = await self.request("GET", path, params=params)
        return self.json_of(response, "GET", path)

    async def get_all(
        self, path: str, conditions: str | None = None, fields: str | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a list endpoint, page by page until a short page.

        A `Link: rel="next"` also keeps us going: a server that caps pageSize below what
        we asked would otherwise look finished after its first page."""
        items: list[dict[str, Any]] = []
        seen: set[Any] = set()
        page = 1
        while True:
            if page > MAX_PAGES:
                # A `Link: rel="next"` that never ends would otherwise be read forever.
                raise ReconcileError(
                    f"ConnectWise kept announcing another page after {MAX_PAGES:,} pages on "
                    f"GET {path}: stopped (the list is larger than any real one, or the "
                    "server's paging is broken)"
                )
            params: dict[str, str | int] = {"page": page, "pageSize": self.page_size}
            if conditions:
                params["conditions"] = conditions
            if fields:
                params["fields"] = fields
            response = await self.request("GET", path, params=params)
            batch = self.json_of(response, "GET", path)
            if not isinstance(batch, list) or not all(isinstance(i, dict) for i in batch):
                raise ReconcileError(
                    f"ConnectWise returned something other than a list of objects on GET {path}"
                )
            ids = {_id_key(item.get("id")) for item in batch}
            if page > 1 and batch and ids <= seen:
                # A server that ignores `page` (or cycles) would otherwise be read forever.
                raise ReconcileError(
                    f"ConnectWise returned page {page} on GET {path} with no item not already "
                    "read on an earlier page: it ignores or repeats the `page` parameter"
                )
            seen |= ids
            items.extend(batch)
            more = len(batch) >= self.page_size or "next" in response.links
            if not batch or not more:
                return items
            page += 1

    async def get_chunked(
        self,
        path: str,
        field: str,
        values: Sequence[Value],
        *,
        fields: str | None = None,
        conditions: str | None = None,
    ) -> list[dict[str, Any]]:
        """`field in (values)` over as many requests as keep each URL under `max_url`,
        fetched concurrently. Items come back in chunk order."""
        if not values:
            return []
        chunks = in_chunks(field, values, self.condition_budget(path, fields), extra=conditions)
        pages = await all_or_none([self.get_all(path, c, fields) for c in chunks])
        return [item for page in pages for item in page]

    def condition_budget(self, path: str, fields: str | None = None) -> int:
        """Encoded characters left for `conditions=` in a list request's URL to `path`."""
        fixed = len(self.base_url) + len(path) + len("?conditions=")
        fixed += len(f"&fields={quote_plus(fields)}") if fields else 0
        fixed += len(f"&page=9999&pageSize={self.page_size}")
        return max(self.max_url - fixed, 200)

    # --- writes -------------------------------------------------------------------------

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.request("POST", path, json_body=body)
        return self._object(response, "POST", path)

    async def patch(self, path: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
        response = await self.request("PATCH", path, json_body=operations)
        return self._object(response, "PATCH", path)

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path)

    def _object(self, response: httpx.Response, method: str, path: str) -> dict[str, Any]:
        if not response.content:
            return {}
        body = self.json_of(response, method, path)
        if not isinstance(body, dict):
            raise ReconcileError(f"ConnectWise returned a non-object body on {method} {path}")
        return body


def _id_key(value: Any) -> Any:
    """A hashable stand-in for an item's id (ids are ints; a hostile page may hold lists)."""
    return value if isinstance(value, int | str | float | None) else repr(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
