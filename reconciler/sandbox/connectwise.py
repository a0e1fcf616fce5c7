"""ConnectWise PSA REST simulation under /v4_6_release/apis/3.0 (DESIGN.md section 4).

Deliberately as strict as the real service, never more convenient:
- clientId header first (missing or unknown -> 403), then Basic `COMPANY+PUBLIC:PRIVATE`
  (wrong -> 401, or whatever `auth_failure_status` says: cloud servers may answer 404);
  a path outside the codebase /v4_6_release/apis/3.0 -> 404.
- Lists: `page` (1-based), `pageSize` default 25, silently capped at 1000, a page past the
  end is `[]`; a `Link` header (first/prev/next/last) whenever there is more than one page;
  `pagination-type: forward-only` with `pageId` works as on the real API.
- Null fields are left out of JSON (ConnectWise does not serialise them) and quantities and
  prices are floats (`40.0`), as ConnectWise's doubles are.
- `_info` is returned unless `fields=` is given without it.
- A 429 arrives from the edge as HTML, not JSON (see server.py); everything else errs as
  {"code","message","errors":[{"code","message","resource","field"}]}.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from reconciler.sandbox.conditions import (
    KeyLookup,
    QueryError,
    Record,
    Schema,
    compile_conditions,
    order_key,
    parse_fields,
    sort_records,
    trim,
)
from reconciler.sandbox.lookup import candidates
from reconciler.sandbox.state import World
from reconciler.sandbox.validation import AdditionError, apply_patch, new_addition
from reconciler.sandbox.wire import Request, Response, cw_error, json_response

PREFIX = "/v4_6_release/apis/3.0"
_ACCEPTABLE = {"*/*", "application/*", "application/json", "application/vnd.connectwise.com+json"}
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 25

_INFO: Schema = {
    "lastUpdated": "date",
    "updatedBy": "str",
    "dateEntered": "date",
    "enteredBy": "str",
}
_REF: Schema = {"id": "int", "name": "str"}
COMPANY: Schema = {
    "id": "int",
    "identifier": "str",
    "name": "str",
    "status": _REF,
    "deletedFlag": "bool",
    "phoneNumber": "str",
    "website": "str",
    "_info": _INFO,
}
AGREEMENT: Schema = {
    "id": "int",
    "name": "str",
    "type": _REF,
    "company": {"id": "int", "identifier": "str", "name": "str"},
    "agreementStatus": "str",
    "startDate": "date",
    "endDate": "date",
    "noEndingDateFlag": "bool",
    "cancelledFlag": "bool",
    "billStartDate": "date",
    "prorateFlag": "bool",
    "_info": _INFO,
}
CATALOG: Schema = {
    "id": "int",
    "identifier": "str",
    "description": "str",
    "customerDescription": "str",
    "inactiveFlag": "bool",
    "price": "float",
    "cost": "float",
    "subcategory": _REF,
    "type": _REF,
    "productClass": "str",
    "taxableFlag": "bool",
    "_info": _INFO,
}
ADDITION: Schema = {
    "id": "int",
    "agreementId": "int",
    "product": {"id": "int", "identifier": "str"},
    "quantity": "float",
    "lessIncluded": "float",
    "unitPrice": "float",
    "unitCost": "float",
    "billCustomer": "str",
    "effectiveDate": "date",
    "cancelledDate": "date",
    "taxableFlag": "bool",
    "serialNumber": "str",
    "invoiceDescription": "str",
    "description": "str",
    "agreementStatus": "str",
    "_info": _INFO,
}

_ROUTES = [
    (re.compile(r"^/company/companies(?:/(count|\d+))?$"), "companies"),
    (re.compile(r"^/finance/agreements(?:/(count|\d+))?$"), "agreements"),
    (re.compile(r"^/procurement/catalog(?:/(count|\d+))?$"), "catalog"),
    (re.compile(r"^/finance/agreements/(\d+)/additions(?:/(count|\d+))?$"), "additions"),
]


error = cw_error


def _match(path: str) -> tuple[str, tuple[str | None, ...]] | None:
    for rx, name in _ROUTES:
        m = rx.match(path)
        if m:
            return name, m.groups()
    return None


def classify(method: str, path: str) -> str:
    """The stats key of a request: "GET companies", "POST additions", "GET additions/count"."""
    found = _match(path[len(PREFIX) :]) if path.startswith(PREFIX + "/") else None
    if found is None:
        return f"{method} cw-other"
    name, groups = found
    tail = groups[-1] if name != "additions" else groups[1]
    suffix = "" if tail is None else "/count" if tail == "count" else "/{id}"
    return f"{method} {name}{suffix}"


def strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):  # recursing only into objects: a page holds 1,000 records
        return {
            k: strip_nulls(v) if isinstance(v, dict) else v
            for k, v in value.items()
            if v is not None
        }
    return value


def _top_level(record: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """`strip_nulls(trim(record, fields))` for top-level fields only, in one pass: a page
    holds up to 1,000 records."""
    out = {}
    for key in keys:
        value = record.get(key)
        if value is not None:
            out[key] = strip_nulls(value) if isinstance(value, dict) else value
    return out


class ConnectWiseApi:
    def __init__(self, world: World, credentials: Callable[[], tuple[str, str, str, str]]) -> None:
        self.world = world
        self.credentials = credentials  # (company, public, private, client id), read live
        self.auth_failure_status = 401

    # --- entry -------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        if not req.path.startswith(PREFIX + "/"):
            return error(404, "NotFound", "The requested resource was not found")
        company, public, private, client_id = self.credentials()
        if req.headers.get("clientId") != client_id:
            what = "missing" if req.headers.get("clientId") is None else "not recognised"
            return error(
                403,
                "Forbidden",
                f"The clientId header is {what}; a registered "
                "clientId is required on every request",
            )
        if req.basic_auth() != (f"{company}+{public}", private):
            return error(
                self.auth_failure_status, "Unauthorized", "The API keys or company id are not valid"
            )
        accepted = [
            t.split(";")[0].strip().lower() for t in (req.headers.get("Accept") or "*/*").split(",")
        ]
        if not any(t in _ACCEPTABLE for t in accepted):
            return error(406, "NotAcceptable", f"Cannot produce {', '.join(accepted)}")
        found = _match(req.path[len(PREFIX) :])
        if found is None:
            return error(404, "NotFound", "The requested resource was not found")
        name, groups = found
        try:
            if name == "additions":
                return self._additions(req, int(groups[0] or 0), groups[1])
            return self._top(req, name, groups[0])
        except QueryError as exc:
            return error(
                400,
                "InvalidObject",
                f"Invalid query: {exc}",
                {
                    "code": "InvalidField",
                    "message": str(exc),
                    "resource": name,
                    "field": exc.field or "conditions",
                },
            )

    # --- reads -------------------------------------------------------------------------

    def _top(self, req: Request, name: str, tail: str | None) -> Response:
        if req.method != "GET":
            return _not_allowed("GET")
        table, schema = {
            "companies": (self.world.companies, COMPANY),
            "agreements": (self.world.agreements, AGREEMENT),
            "catalog": (self.world.catalog, CATALOG),
        }[name]

        def fetch(lookup: KeyLookup | None) -> list[Record]:
            with self.world.lock:
                return candidates(table, lookup)

        return self._read(req, fetch, schema, tail, name)

    def _read(
        self,
        req: Request,
        fetch: Callable[[KeyLookup | None], list[Record]],
        schema: Schema,
        tail: str | None,
        name: str,
    ) -> Response:
        """`fetch(lookup)`: the records a query with that key lookup can match, in order."""
        if tail is not None and tail != "count":
            wanted = int(tail)
            by_id = fetch(KeyLookup("int", "id", frozenset([wanted])))
            found = next((r for r in by_id if r["id"] == wanted), None)
            if found is None:
                return error(404, "NotFound", f"{name} record {tail} not found")
            return json_response(200, strip_nulls(trim(found, parse_fields(req.arg("fields")))))
        query = compile_conditions(req.arg("conditions"), schema)
        test = query.test
        records = [r for r in fetch(query.lookup) if test(r)]
        if tail == "count":
            return json_response(200, {"count": len(records)})
        return self._page(req, records, schema)

    def _page(self, req: Request, records: list[dict[str, Any]], schema: Schema) -> Response:
        size = min(_positive(req.arg("pageSize"), "pageSize", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        fields = parse_fields(req.arg("fields"))
        order = order_key(req.arg("orderBy"), schema)
        links: list[tuple[str, dict[str, str]]] = []
        base = [(k, v) for k, v in req.query if k.lower() not in ("page", "pagesize", "pageid")]
        if (req.headers.get("pagination-type") or "").lower() == "forward-only":
            if order:
                raise QueryError("orderBy is not supported with forward-only pagination")
            after = _positive(req.arg("pageId"), "pageId", 0, minimum=0)
            rest = [r for r in records if r["id"] > after]
            chosen = rest[:size]
            if len(rest) > size:
                links.append(("next", {"pageSize": str(size), "pageId": str(chosen[-1]["id"])}))
        else:
            page = _positive(req.arg("page"), "page", 1)
            if order:
                records = sort_records(records, order)
            chosen = records[(page - 1) * size : page * size]
            last = max(1, -(-len(records) // size))
            if last > 1:
                rels = []
                if page > 1:
                    rels += [("first", 1), ("prev", min(page - 1, last))]
                if page < last:
                    rels += [("next", page + 1), ("last", last)]
                links = [(rel, {"pageSize": str(size), "page": str(n)}) for rel, n in rels]
        headers = []
        if links:
            url = f"http://{req.host}{req.path}"
            headers.append(
                (
                    "Link",
                    ", ".join(
                        f'<{url}?{urlencode([*base, *params.items()])}>; rel="{rel}"'
                        for rel, params in links
                    ),
                )
            )
        if fields is not None and all(len(path) == 1 for path in fields):
            keys = [path[0] for path in fields]  # the usual `fields=id,name,company`
            body = [_top_level(r, keys) for r in chosen]
        else:
            body = [strip_nulls(trim(r, fields)) for r in chosen]
        return json_response(200, body, headers)

    # --- additions ---------------------------------------------------------------------

    def _additions(self, req: Request, agreement_id: int, tail: str | None) -> Response:
        with self.world.lock:
            agreement = self.world.agreements.get(agreement_id)
        if agreement is None:
            return error(404, "NotFound", f"Agreement record {agreement_id} not found")
        if req.method == "GET":
            additions = self.world.additions(agreement_id)
            return self._read(req, lambda _: additions, ADDITION, tail, "addition")
        if tail == "count":
            return _not_allowed("GET")
        if req.method == "POST" and tail is None:
            return self._post(req, agreement)
        if tail is None:
            return _not_allowed("GET, POST")
        if req.method not in ("PATCH", "DELETE"):
            return _not_allowed("GET, PATCH, DELETE")
        with self.world.lock:
            current = self.world.addition(int(tail))
            if current is None or current["agreementId"] != agreement_id:
                return error(404, "NotFound", f"Addition record {tail} not found")
            if req.method == "DELETE":
                self.world.delete_addition(int(tail))
                return Response(204, wrote=True)
            body, problem = req.json()
            if problem:
                return problem
            try:
                updated = apply_patch(current, body, agreement, self.world.api_member)
            except AdditionError as exc:
                return error(400, "InvalidObject", "addition object is invalid", *exc.errors)
            self.world.replace_addition(updated)
        return json_response(200, strip_nulls(updated), wrote=True)

    def _post(self, req: Request, agreement: dict[str, Any]) -> Response:
        body, problem = req.json()
        if problem:
            return problem
        with self.world.lock:
            try:
                record = new_addition(body, agreement, self.world.catalog, self.world.api_member)
            except AdditionError as exc:
                return error(400, "InvalidObject", "addition object is invalid", *exc.errors)
            stored = self.world.insert_addition(record)
        return json_response(201, strip_nulls(stored), wrote=True)


def _positive(raw: str | None, name: str, default: int, minimum: int = 1) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {raw!r}", field=name) from None
    if value < minimum:
        raise QueryError(f"{name} must be at least {minimum}, got {value}", field=name)
    return value


def _not_allowed(allow: str) -> Response:
    resp = error(405, "MethodNotAllowed", f"The requested method is not allowed; use {allow}")
    resp.headers.append(("Allow", allow))
    return resp
