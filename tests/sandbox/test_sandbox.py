"""The loopback ConnectWise + ZeroTek sandbox, exercised over real HTTP with raw httpx calls."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import world_edits
import yaml
from example_usage import CURRENT_USAGE, LAST_USAGE
from waiting import DEADLINE

from reconciler.sandbox import Sandbox, default_fixture, generate_fixture, usage_counts
from reconciler.sandbox import server as sandbox_server
from reconciler.sandbox.wire import Request, Response

ACCEPT = "application/vnd.connectwise.com+json; version=2020.4"
LAST = ("2026-10-16", "2026-11-15")
CURRENT = ("2026-11-16", "2026-11-24")


def cw(sb: Sandbox, **overrides: str | None) -> httpx.Client:
    """A ConnectWise client as the contract describes: Basic auth, clientId, pinned Accept."""
    creds = {"company": sb.company_id, "public": sb.public_key, "private": sb.private_key}
    creds.update({k: v for k, v in overrides.items() if k in creds and v is not None})
    headers = {"Accept": ACCEPT}
    client_id = overrides.get("client_id", sb.client_id)
    if client_id is not None:
        headers["clientId"] = client_id
    return httpx.Client(
        base_url=sb.cw_url,
        auth=(f"{creds['company']}+{creds['public']}", creds["private"]),
        headers=headers,
        timeout=10,
    )


def zt(sb: Sandbox, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=sb.zerotek_url,
        headers={"Authorization": f"Bearer {token or sb.zerotek_token}"},
        timeout=10,
    )


@pytest.fixture(scope="module")
def shared() -> Iterator[Sandbox]:
    """Read-only tests share one sandbox; tests that write get their own `sb`."""
    with Sandbox() as sb:
        yield sb


# --- fixture ---------------------------------------------------------------------------------


def test_default_fixture_usage_matches_the_example_data_for_both_periods() -> None:
    history = default_fixture().assignments
    d = dt.date.fromisoformat
    assert usage_counts(history, d(LAST[0]), d(LAST[1])) == LAST_USAGE
    assert usage_counts(history, d(CURRENT[0]), d(CURRENT[1])) == CURRENT_USAGE
    # zt-0002's UD users all left before the period; the history spans May..Nov 24
    assert any(a.customer_id == "zt-0002" and a.sku == "OKTA-UD" for a in history)
    assert min(a.assigned_on for a in history) >= d("2026-05-01")
    assert max(a.assigned_on for a in history) == d("2026-11-24")


def test_default_fixture_has_the_traps_the_example_promises() -> None:
    fx = default_fixture()
    assert fx == default_fixture()  # deterministic
    assert len(fx.companies) >= 22
    names = [c["name"] for c in fx.companies]
    assert any('"' in n for n in names) and any("'" in n for n in names)
    assert sum("&" in n for n in names) >= 3
    status = {a["id"]: a["agreementStatus"] for a in fx.agreements}
    assert (status[1011], status[1020], status[1021]) == ("Expired", "Cancelled", "Expired")
    ending = [
        a for a in fx.agreements if a["endDate"] and "2026-11-24" < a["endDate"] < "2026-12-25"
    ]
    assert [a["id"] for a in ending] == [1004]
    assert [i["identifier"] for i in fx.catalog if i["inactiveFlag"]] == ["ZT-OKTA-LEGACY"]
    assert {c["id"]: c["status"] for c in fx.zerotek_customers}["zt-0098"] == "inactive"


# --- ConnectWise: auth and plumbing ------------------------------------------------------------


def test_auth_failures_are_distinct_and_never_echo_the_key(shared: Sandbox) -> None:
    with cw(shared, private="not-the-key-XYZZY") as c:
        r = c.get("/company/companies")
    assert r.status_code == 401
    assert r.json()["code"] == "Unauthorized" and "XYZZY" not in r.text
    with cw(shared, company="otherco") as c:
        assert c.get("/company/companies").status_code == 401
    with cw(shared, client_id=None) as c:
        assert c.get("/company/companies").status_code == 403
    with cw(shared, client_id="someone-else") as c:
        assert c.get("/company/companies").status_code == 403
    with cw(shared) as c:
        r = c.get(shared.base_url + "/v2022_1/apis/3.0/company/companies")
        assert r.status_code == 404 and r.json()["code"] == "NotFound"
        assert c.get("/company/companies", headers={"Accept": "text/xml"}).status_code == 406
        ok = c.get("/company/companies")
    assert ok.status_code == 200 and ok.http_version == "HTTP/1.1"
    assert ok.headers["content-type"].startswith("application/json")


def test_bad_keys_can_answer_404_like_some_cloud_servers(sb: Sandbox) -> None:
    sb.auth_failure_status = 404
    with cw(sb, public="wrong") as c:
        assert c.get("/company/companies").status_code == 404


def test_pagination_caps_page_size_at_1000_and_links_pages() -> None:
    fixture, _, _ = generate_fixture(2500, seed=1)
    with Sandbox(fixture) as sb, cw(sb) as c:
        assert len(c.get("/company/companies").json()) == 25  # default page size
        first = c.get("/company/companies", params={"pageSize": 5000, "page": 1})
        assert len(first.json()) == 1000
        links = dict(
            (rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', first.headers["link"])
        )
        assert set(links) == {"next", "last"}
        assert parse_qs(urlsplit(links["last"]).query)["page"] == ["3"]
        seen: list[int] = []
        url: str | None = "/company/companies?pageSize=1000&conditions=id%3E0"
        while url:
            r = c.get(url)
            seen += [row["id"] for row in r.json()]
            found = re.search(r'<([^>]+)>; rel="next"', r.headers.get("link", ""))
            url = found.group(1) if found else None
        assert len(seen) == len(set(seen)) == 2500
        assert c.get("/company/companies", params={"pageSize": 1000, "page": 3}).json()[-1][
            "id"
        ] == max(seen)
        assert c.get("/company/companies", params={"pageSize": 1000, "page": 4}).json() == []
        assert c.get("/company/companies", params={"page": 0}).status_code == 400


def test_forward_only_pagination_and_order_by(shared: Sandbox) -> None:
    with cw(shared) as c:
        ids: list[int] = []
        url: str | None = "/company/companies?pageSize=10"
        while url:
            r = c.get(url, headers={"pagination-type": "forward-only"})
            ids += [row["id"] for row in r.json()]
            found = re.search(r'<([^>]+)>; rel="next"', r.headers.get("link", ""))
            url = found.group(1) if found else None
        assert ids == sorted(ids) and len(ids) == len(default_fixture().companies)
        names = [
            x["name"]
            for x in c.get(
                "/company/companies", params={"orderBy": "name desc", "pageSize": 100}
            ).json()
        ]
        assert names == sorted(names, key=str.casefold, reverse=True)


# --- ConnectWise: conditions and fields ------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ('identifier in ("ACME","OBRIEN","NOPE")', [250, 251]),
        ('name = "O\'Brien & Sons"', [251]),
        (r'name = "Big \"Quote\" Ltd"', [252]),
        (r'name = "Smith & \"Sons\" (UK), Ltd"', [257]),
        (r'name = "Back\\Slash \"Studios\""', [261]),
        ('name = "acme corp"', [250, 273]),  # SQL Server collation: case-insensitive
        ('name like "%&%Co"', [256, 263, 269]),
        ('name contains "100%"', [262]),
        ('(identifier = "ACME" or identifier = "GLOBEX") and id > 250', [255]),
        ('name = "Sand and Orr \\"Law\\" or Not"', [274]),
        ("id not in (250, 251) and id <= 253", [252, 253]),
        ('status/name = "Active" AND deletedFlag = false AND id < 252', [250, 251]),
        ("website = null and id = 250", [250]),
    ],
)
def test_conditions_select_companies(shared: Sandbox, conditions: str, expected: list[int]) -> None:
    with cw(shared) as c:
        r = c.get("/company/companies", params={"conditions": conditions, "pageSize": 1000})
    assert r.status_code == 200, r.text
    assert [row["id"] for row in r.json()] == expected


def test_conditions_on_nested_fields_and_dates(shared: Sandbox) -> None:
    with cw(shared) as c:
        r = c.get(
            "/finance/agreements",
            params={
                "conditions": 'company/identifier = "ACME" and endDate < [2024-01-01T00:00:00Z]'
            },
        )
        assert [a["id"] for a in r.json()] == [1011]
        r = c.get(
            "/finance/agreements/1001/additions",
            params={"conditions": 'product/identifier = "ZT-OKTA-LCM" and cancelledDate != null'},
        )
        assert [a["id"] for a in r.json()] == [9004]
        count = c.get(
            "/finance/agreements/count", params={"conditions": 'agreementStatus = "Active"'}
        )
        assert count.json() == {"count": 11}  # 1001-1007, 1022-1025


@pytest.mark.parametrize(
    ("conditions", "field"),
    [
        ('nosuchfield = "x"', "nosuchfield"),
        ("company/nosuch = 1", "company/nosuch"),
        ('id = "250"', "id"),  # strings are not numbers
        ("name = 'Acme Corp'", "conditions"),  # single quotes are not strings
        ('name = "Big ""Quote"" Ltd"', "conditions"),  # doubled quotes are not an escape
        ('name = "Back\\Slash"', "conditions"),  # unknown escape \S
        ("id = 250 and", "conditions"),
        ('endDate > "2026-01-01"', "endDate"),
    ],
)
def test_bad_conditions_are_400_with_a_connectwise_error(
    shared: Sandbox, conditions: str, field: str
) -> None:
    with cw(shared) as c:
        r = c.get("/finance/agreements", params={"conditions": conditions})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "InvalidObject" and body["errors"][0]["field"] == field


def test_fields_trim_nulls_are_omitted_and_info_only_on_request(shared: Sandbox) -> None:
    with cw(shared) as c:
        full = c.get("/finance/agreements/1001").json()
        assert "_info" in full and "endDate" not in full  # null -> left out
        assert full["noEndingDateFlag"] is True
        trimmed = c.get(
            "/finance/agreements",
            params={"fields": "id,company/identifier,billStartDate", "conditions": "id = 1006"},
        ).json()
        assert trimmed == [
            {
                "id": 1006,
                "company": {"identifier": "GLOBEX"},
                "billStartDate": "2026-12-01T00:00:00Z",
            }
        ]
        adds = c.get("/finance/agreements/1001/additions", params={"fields": "id,quantity,_info"})
        assert adds.json()[0] == {
            "id": 9001,
            "quantity": 40.0,
            "_info": {"lastUpdated": "2026-11-01T09:00:00Z", "updatedBy": "jsmith"},
        }
        product = c.get(
            "/procurement/catalog",
            params={
                "conditions": 'identifier = "ZT-OKTA-LEGACY"',
                "fields": "id,identifier,inactiveFlag,price",
            },
        ).json()
        assert product == [
            {"id": 506, "identifier": "ZT-OKTA-LEGACY", "inactiveFlag": True, "price": 1.0}
        ]


def test_overlong_urls_are_refused(shared: Sandbox) -> None:
    many = ",".join(f'"C{i:05d}"' for i in range(2000))
    with cw(shared) as c:
        assert (
            c.get(
                "/company/companies", params={"conditions": f"identifier in ({many})"}
            ).status_code
            == 414
        )


# --- ConnectWise: writes ---------------------------------------------------------------------


def post(c: httpx.Client, agreement: int, **body: object) -> httpx.Response:
    payload = {
        "product": {"id": 501},
        "quantity": 5,
        "billCustomer": "Billable",
        "effectiveDate": "2026-11-24T00:00:00Z",
        **body,
    }
    return c.post(f"/finance/agreements/{agreement}/additions", json=payload)


@pytest.mark.parametrize(
    ("agreement", "body", "status", "field"),
    [
        (1003, {"product": {"id": 506}}, 400, "product"),  # inactive
        (1003, {"product": {"id": 999}}, 400, "product"),  # unknown
        (1003, {"product": {"identifier": "ZT-OKTA-SSO"}}, 400, "product"),  # by id only
        (1003, {"quantity": 2.5}, 400, "quantity"),
        (1003, {"quantity": -1}, 400, "quantity"),
        (1003, {"quantity": "5"}, 400, "quantity"),
        (1003, {"billCustomer": "Sometimes"}, 400, "billCustomer"),
        (1003, {"billCustomer": None}, 400, "billCustomer"),
        (1003, {"effectiveDate": "2026-11-24"}, 400, "effectiveDate"),
        (1006, {}, 400, "effectiveDate"),  # before billStartDate 2026-12-01
        (1020, {}, 400, "agreementId"),  # cancelled agreement
        (4040, {}, 404, None),
    ],
)
def test_post_validation(
    sb: Sandbox, agreement: int, body: dict[str, object], status: int, field: str | None
) -> None:
    with cw(sb) as c:
        r = post(c, agreement, **body)
    assert r.status_code == status, r.text
    if field:
        assert r.json()["errors"][0]["field"] == field
    assert sb.stats.writes == 0 and sb.additions(1003) == []


def test_post_creates_an_addition(sb: Sandbox) -> None:
    with cw(sb) as c:
        r = post(c, 1006, effectiveDate="2026-12-01T00:00:00Z", quantity=9)
        assert r.status_code == 201
        made = r.json()
        assert made["product"] == {"id": 501, "identifier": "ZT-OKTA-SSO"}
        assert (made["quantity"], made["unitPrice"], made["agreementId"]) == (9.0, 4.0, 1006)
        assert made["id"] > 9012 and "cancelledDate" not in made
        assert made["_info"]["updatedBy"] == sb.api_member
        assert c.get("/finance/agreements/1006/additions").json() == [made]
        bad = post(c, 1003, effectiveDate="2026-11-24T00:00:00Z")
        assert bad.status_code == 201
        r = c.post(
            "/finance/agreements/1003/additions",
            content=b"{}",
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 415
    assert sb.stats.writes == 2 and sb.stats["POST additions"] == 3


def test_billstartdate_error_message(sb: Sandbox) -> None:
    with cw(sb) as c:
        r = post(c, 1006)
    assert r.json()["errors"][0]["message"] == (
        "effectiveDate cannot be less than the agreement billing start date"
    )


def test_patch_and_delete(sb: Sandbox) -> None:
    url = "/finance/agreements/1001/additions"
    with cw(sb) as c:
        r = c.patch(f"{url}/9001", json=[{"op": "replace", "path": "quantity", "value": 42}])
        assert r.status_code == 200 and r.json()["quantity"] == 42.0
        assert r.json()["_info"]["updatedBy"] == sb.api_member
        r = c.patch(
            f"{url}/9002",
            json=[{"op": "replace", "path": "/cancelledDate", "value": "2026-11-24T00:00:00Z"}],
        )
        assert r.json()["cancelledDate"] == "2026-11-24T00:00:00Z"
        for ops in (
            [{"op": "replace", "path": "nosuch", "value": 1}],
            [{"op": "replace", "path": "id", "value": 1}],
            [{"op": "remove", "path": "quantity"}],
            [{"op": "replace", "path": "quantity", "value": 1.5}],
            [{"op": "replace", "path": "cancelledDate", "value": "2024-01-01T00:00:00Z"}],
            {"op": "replace", "path": "quantity", "value": 1},
        ):
            bad = c.patch(f"{url}/9001", json=ops)
            assert bad.status_code == 400, ops
            assert bad.json()["code"] == "InvalidObject"
        assert (
            c.patch(
                "/finance/agreements/1002/additions/9001",
                json=[{"op": "replace", "path": "quantity", "value": 1}],
            ).status_code
            == 404
        )
        assert c.delete(f"{url}/9003").status_code == 204
        assert c.delete(f"{url}/9003").status_code == 404
        assert c.put(f"{url}/9001", json={}).status_code == 405
    stored = {a["id"]: a for a in sb.additions(1001)}
    assert (
        stored[9001]["quantity"] == 42 and stored[9002]["cancelledDate"] == "2026-11-24T00:00:00Z"
    )
    assert 9003 not in stored and sb.stats.writes == 3
    assert sb.stats["PATCH additions/{id}"] == 9 and sb.stats["DELETE additions/{id}"] == 2


def test_state_helpers_change_what_the_api_serves(sb: Sandbox) -> None:
    world_edits.set_addition_quantity(sb, 9005, 3)
    extra = world_edits.add_addition(
        sb, 1002, "ZT-OKTA-SSO", 1
    )  # a duplicate, as other tools leave
    world_edits.update_catalog_item(sb, "ZT-OKTA-MFA", inactiveFlag=True)
    world_edits.set_users(sb, "zt-0002", "OKTA-SSO", 50)
    with cw(sb) as c:
        quantities = [
            (a["id"], a["quantity"]) for a in c.get("/finance/agreements/1002/additions").json()
        ]
        assert quantities == [(9005, 3.0), (9006, 7.0), (extra["id"], 1.0)]
        assert post(c, 1003, product={"id": 502}).status_code == 400
    with zt(sb) as z:
        r = z.get("/v1/customers/zt-0002/usage", params={"start": LAST[0], "end": LAST[1]})
    assert r.json()["skus"] == [{"sku": "OKTA-SSO", "users": 50}]


# --- ZeroTek -----------------------------------------------------------------------------------


def bulk_usage(z: httpx.Client, start: str, end: str) -> tuple[dict[str, dict[str, int]], int]:
    out: dict[str, dict[str, int]] = {}
    cursor, pages = None, 0
    while True:
        params = {"start": start, "end": end, **({"cursor": cursor} if cursor else {})}
        body = z.get("/v1/usage", params=params).json()
        pages += 1
        for row in body["data"]:
            assert row["users"] > 0
            out.setdefault(row["customer_id"], {})[row["sku"]] = row["users"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out, pages


def test_zerotek_usage_windows_for_both_periods(sb: Sandbox) -> None:
    sb.zerotek_page_sizes = (100, 4)  # 16 rows -> 4 full pages, the last with no cursor
    with zt(sb) as z:
        assert bulk_usage(z, *LAST) == (LAST_USAGE, 4)
        assert bulk_usage(z, *CURRENT)[0] == CURRENT_USAGE
        one = z.get("/v1/customers/zt-0001/usage", params={"start": CURRENT[0], "end": CURRENT[1]})
        assert one.json() == {
            "customer_id": "zt-0001",
            "start": CURRENT[0],
            "end": CURRENT[1],
            "skus": [{"sku": "OKTA-MFA", "users": 41}, {"sku": "OKTA-SSO", "users": 43}],
        }
        dormant = z.get("/v1/customers/zt-0098/usage", params={"start": LAST[0], "end": LAST[1]})
        assert dormant.json()["skus"] == []
    assert sb.stats["GET zt-usage"] == 4 + 4 and sb.stats["GET zt-customer-usage"] == 2


def test_zerotek_customers_cursor_pagination_and_errors(sb: Sandbox) -> None:
    sb.zerotek_page_sizes = (4, 500)
    with zt(sb) as z:
        ids, cursor = [], None
        while True:
            body = z.get("/v1/customers", params={"cursor": cursor} if cursor else {}).json()
            ids += [c["id"] for c in body["data"]]
            if (cursor := body["next_cursor"]) is None:
                break
        assert ids == sorted(c["id"] for c in default_fixture().zerotek_customers)
        usage_cursor = z.get("/v1/usage", params={"start": "2026-01-01", "end": "2026-12-31"})
        assert usage_cursor.json()["next_cursor"] is None
        sb.zerotek_page_sizes = (4, 2)
        cur = z.get("/v1/usage", params={"start": LAST[0], "end": LAST[1]}).json()["next_cursor"]
        for params, code in [
            ({"start": "2026-10-16"}, "invalid_request"),
            ({"start": "2026-11-16", "end": "2026-11-15"}, "invalid_request"),
            ({"start": "2026/10/16", "end": "2026-11-15"}, "invalid_request"),
            ({"start": LAST[0], "end": LAST[1], "cursor": "garbage"}, "invalid_cursor"),
            ({"start": CURRENT[0], "end": CURRENT[1], "cursor": cur}, "invalid_cursor"),
        ]:
            r = z.get("/v1/usage", params=params)
            assert (r.status_code, r.json()["error"]["code"]) == (400, code), params
        assert (
            z.get(
                "/v1/customers/zt-9999/usage", params={"start": LAST[0], "end": LAST[1]}
            ).status_code
            == 404
        )
    with zt(sb, token="wrong") as z:
        r = z.get("/v1/customers")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


# --- faults, latency, counters -----------------------------------------------------------------


def test_each_fault_kind_is_observable(sb: Sandbox) -> None:
    with cw(sb) as c, zt(sb) as z:
        sb.configure_faults(error_500=1.0)
        r = c.get("/company/companies")
        assert r.status_code == 500 and r.json()["code"]
        assert z.get("/v1/customers").json()["error"]["code"] == "internal_error"
        sb.configure_faults(error_429=1.0, retry_after=3)
        r = c.get("/company/companies")
        assert (r.status_code, r.headers["retry-after"]) == (429, "3")
        assert r.headers["content-type"].startswith("text/html")  # the edge, not the API
        r = z.get("/v1/customers")
        assert (r.status_code, r.headers["retry-after"], r.json()["error"]["code"]) == (
            429,
            "3",
            "rate_limited",
        )
        sb.configure_faults(drop=1.0)
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/company/companies")
        sb.configure_faults(drop=1.0, methods={"POST"})
        assert c.get("/company/companies").status_code == 200  # GETs spared
    assert sb.stats.faults == {"500": 2, "429": 2, "drop": 1}


def test_lost_write_commits_then_drops_the_connection(sb: Sandbox) -> None:
    seen: list[int] = []
    sb.on_write = seen.append
    sb.configure_faults(lost_write=1.0)
    with cw(sb) as c:
        assert c.get("/finance/agreements/1003/additions").json() == []  # reads unaffected
        with pytest.raises(httpx.RemoteProtocolError):
            post(c, 1003, quantity=18)
        with pytest.raises(httpx.RemoteProtocolError):
            c.patch(
                "/finance/agreements/1001/additions/9001",
                json=[{"op": "replace", "path": "quantity", "value": 42}],
            )
        assert post(c, 1003, quantity=-1).status_code == 400  # nothing written: nothing lost
        sb.configure_faults()
        stored = c.get("/finance/agreements/1003/additions").json()
    assert [(a["product"]["identifier"], a["quantity"]) for a in stored] == [("ZT-OKTA-SSO", 18.0)]
    assert sb.additions(1001)[0]["quantity"] == 42
    assert seen == [1, 2] and sb.stats.writes == 2 and sb.stats.faults["lost_write"] == 2


def test_fault_rate_mixes_kinds_reproducibly() -> None:
    def run() -> dict[str, int]:
        with Sandbox(fault_rate=0.6, seed=7) as sb, cw(sb) as c:
            for _ in range(60):
                with contextlib.suppress(httpx.TransportError):
                    c.get("/company/companies", params={"pageSize": 1})
            return dict(sb.stats.faults)

    first = run()
    assert first == run()
    assert set(first) == {"500", "429", "drop"} and 20 < sum(first.values()) < 55


class _SleepLog:
    """Stands in for the `time` module of the sandbox's server: real clock and real sleeps,
    each sleep recorded, and with `meet` every sleep first waits until that many are
    sleeping at once (a server that waits its latency one request at a time never gets
    there, and the barrier breaks)."""

    def __init__(self, meet: int = 1) -> None:
        self.monotonic = time.monotonic
        self.slept: list[float] = []
        self._meet = threading.Barrier(meet, timeout=DEADLINE) if meet > 1 else None

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self._meet is not None:
            self._meet.wait()
        time.sleep(seconds)


def test_latency_is_honoured_concurrently(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _SleepLog(meet=8)
    with Sandbox(latency_ms=300) as sb:
        with cw(sb) as c:
            started = time.perf_counter()
            c.get("/company/companies")
            assert time.perf_counter() - started >= 0.3
        monkeypatch.setattr(sandbox_server, "time", clock)

        def one(_: int) -> int:
            with cw(sb) as c:
                return c.get("/finance/agreements").status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(one, range(8))) == [200] * 8
        # All 8 met in their latency waits (else BrokenBarrierError fails every request)
        assert len(clock.slept) == 8 and all(0 <= s <= 0.3 for s in clock.slept)
        assert sb.stats["GET agreements"] == 8 and sb.stats.total == 9
        sb.stats.reset()
        assert sb.stats.total == 0 and sb.stats.writes == 0


def test_latency_is_the_whole_response_time_processing_included(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The injected latency is measured from the request's arrival: the sandbox's own
    processing happens within it, not on top of it (a benchmark's lower bound assumes
    every answer takes exactly the latency)."""

    def slow(req: Request, resp: Response) -> Response:
        time.sleep(0.25)  # processing that takes most of the latency
        return resp

    clock = _SleepLog()
    monkeypatch.setattr(sandbox_server, "time", clock)
    with Sandbox(latency_ms=300) as sb:
        sb.on_response = slow
        with cw(sb) as c:
            started = time.perf_counter()
            assert c.get("/company/companies").status_code == 200
            took = time.perf_counter() - started
    assert took >= 0.3
    # what was left of the 300 ms after 250 of processing (all of it, were it added on top)
    (rest,) = clock.slept
    assert 0 <= rest <= 0.05


# --- generator and CLI --------------------------------------------------------------------------


def test_generate_fixture_matches_its_mapping_files() -> None:
    fx, skus_text, customers_text = generate_fixture(40, seed=3, skus_per_customer=2)
    assert generate_fixture(40, seed=3, skus_per_customer=2)[0] == fx
    skus, customers = yaml.safe_load(skus_text), yaml.safe_load(customers_text)
    catalog = {i["identifier"] for i in fx.catalog}
    assert all(s["product"] in catalog for s in skus)
    companies = {c["identifier"]: c["id"] for c in fx.companies}
    agreements = {a["id"]: a for a in fx.agreements}
    by_name = {(a["company"]["id"], a["name"]): a for a in fx.agreements}
    product_sku = {s["product"]: s["sku"] for s in skus}
    usage = usage_counts(fx.assignments, dt.date(2026, 10, 16), dt.date(2026, 11, 15))
    kinds: set[str] = set()
    for cust in customers:
        ref = cust["agreement"]
        company_id = companies[cust["company"]]
        agreement = agreements[ref] if isinstance(ref, int) else by_name[(company_id, ref)]
        assert agreement["company"]["id"] == company_id
        used = usage[cust["id"]]
        assert len(used) == 2
        have = {
            product_sku.get(a["product"]["identifier"]): a["quantity"]
            for a in fx.additions
            if a["agreementId"] == agreement["id"]
        }
        for sku, users in used.items():
            kinds.add("missing" if sku not in have else "equal" if have[sku] == users else "off")
        if any(sku and sku not in used for sku in have):
            kinds.add("remove")
    assert kinds == {"missing", "equal", "off", "remove"}
    assert {type(c["agreement"]) for c in customers} == {int, str}


def test_sandbox_command_prints_the_environment_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sandbox", "--latency-ms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        env = {}
        for _ in range(7):
            name, _, value = proc.stdout.readline().strip().removeprefix("export ").partition("=")
            env[name] = value
        assert env["CW_API_URL"].startswith("http://127.0.0.1:") and env["CW_COMPANY_ID"]
        r = httpx.get(
            env["ZEROTEK_API_URL"] + "/v1/customers",
            headers={"Authorization": f"Bearer {env['ZEROTEK_API_TOKEN']}"},
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "GET /zerotek/v1/customers -> 200" in err and "Sandbox stopped." in err


def test_sandbox_export_lines_are_not_redacted_when_the_shell_already_holds_them() -> None:
    """Issue 25: a shell that eval'd the export lines once runs `reconcile sandbox` again:
    the lines must still be the values (public demo credentials), not `[... redacted]`."""
    demo = {
        "CW_COMPANY_ID": Sandbox.company_id,
        "CW_PUBLIC_KEY": Sandbox.public_key,
        "CW_PRIVATE_KEY": Sandbox.private_key,
        "CW_CLIENT_ID": Sandbox.client_id,
        "ZEROTEK_API_TOKEN": Sandbox.zerotek_token,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sandbox", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **demo, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(7)]
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert not any("redacted" in line for line in lines), lines
    for name, value in demo.items():
        assert f"export {name}={value}" in lines
