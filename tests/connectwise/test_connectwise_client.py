"""ConnectWiseClient against the loopback sandbox (a real HTTP server); respx only for
transport faults a server cannot produce on demand."""

from __future__ import annotations

import asyncio
import base64
import copy
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest
import respx
from respx_pool import POOL
from waiting import DEADLINE, until_async

from reconciler.config.env import CWCredentials, cw_credentials_from_env
from reconciler.connectwise.client import PAGE_SIZE, ApiError, ConnectWiseClient, OutcomeUnknown
from reconciler.connectwise.conditions import eq, in_chunks, in_list, quote
from reconciler.net.settings import HttpSettings
from reconciler.sandbox import Sandbox, default_fixture
from reconciler.sandbox.wire import Request, Response

COMPANIES = "/company/companies"
ADDITIONS_1003 = "/finance/agreements/1003/additions"
FAST_RETRY = HttpSettings(max_retries=2, backoff_base=0.01)


def client_for(sb: Sandbox, page_size: int = PAGE_SIZE, **http: Any) -> ConnectWiseClient:
    """A client of the sandbox retrying fast; `http`: HttpSettings fields."""
    settings = HttpSettings(**{"backoff_base": 0.01, "backoff_max": 0.05, **http})
    creds = cw_credentials_from_env(sb.env())
    return ConnectWiseClient(sb.cw_url, creds, http=settings, page_size=page_size)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def big_sandbox(n: int) -> Sandbox:
    fixture = default_fixture()
    template = fixture.companies[0]
    for i in range(len(fixture.companies), n):
        company = copy.deepcopy(template)
        company.update(id=10_000 + i, identifier=f"GEN{i:05d}", name=f"Generated {i}")
        fixture.companies.append(company)
    return Sandbox(fixture)


def chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


# --- pagination ----------------------------------------------------------------------------


def test_pagination_over_2500_companies_takes_three_capped_pages() -> None:
    with big_sandbox(2500) as sb:

        async def go() -> tuple[list[dict[str, Any]], int]:
            async with client_for(sb) as cw:
                rows = await cw.get_all(COMPANIES, fields="id,identifier")
                return rows, cw.stats.requests

        rows, requests = run(go())
        assert len(rows) == 2500
        assert len({r["id"] for r in rows}) == 2500
        assert requests == 3
        assert sb.stats["GET companies"] == 3


def test_a_server_capping_below_the_asked_page_size_is_followed_by_its_link() -> None:
    # We ask 2500 per page; the server caps at 1000 and says rel="next": a short page
    # alone must not end the listing.
    with big_sandbox(2500) as sb:

        async def go() -> list[dict[str, Any]]:
            async with client_for(sb, page_size=2500) as cw:
                return await cw.get_all(COMPANIES, fields="id")

        assert len(run(go())) == 2500
        assert sb.stats["GET companies"] == 3


# --- conditions ----------------------------------------------------------------------------


def test_quote_escapes_backslash_and_double_quote() -> None:
    assert quote('Big "Quote" Ltd') == r'"Big \"Quote\" Ltd"'
    assert quote("back\\slash") == r'"back\\slash"'
    assert quote("O'Brien") == '"O\'Brien"'
    assert in_list("company/id", [250, 251]) == "company/id in (250, 251)"
    assert eq("inactiveFlag", False) == "inactiveFlag = false"
    with pytest.raises(ValueError):
        eq("name) or (1", "x")


def test_names_with_quotes_apostrophes_and_backslashes_round_trip(sb: Sandbox) -> None:
    names = [c["name"] for c in default_fixture().companies]
    assert any('"' in n for n in names) and any("'" in n for n in names)

    async def go() -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
        async with client_for(sb) as cw:
            together = await cw.get_chunked(COMPANIES, "name", names, fields="id,name")
            one_by_one = await asyncio.gather(
                *(cw.get_all(COMPANIES, eq("name", n), "name") for n in names)
            )
            return together, list(one_by_one)

    together, one_by_one = run(go())
    assert sorted(r["name"] for r in together) == sorted(names)
    # (two companies may share a name: ConnectWise only keeps identifiers unique)
    assert [[r["name"] for r in rows] for rows in one_by_one] == [
        [n] * names.count(n) for n in names
    ]


def test_long_in_lists_are_chunked_so_every_url_stays_short(sb: Sandbox) -> None:
    wanted = [c["identifier"] for c in default_fixture().companies]
    padding = [f"NO-SUCH-COMPANY-{i:04d}-{'x' * 20}" for i in range(400)]

    async def go() -> tuple[list[dict[str, Any]], int]:
        async with client_for(sb) as cw:
            rows = await cw.get_chunked(COMPANIES, "identifier", padding + wanted, fields="id")
            return rows, cw.stats.longest_url

    rows, longest = run(go())
    assert len(rows) == len(wanted)
    assert longest <= 2000
    assert sb.stats["GET companies"] > 5  # really split, not one huge URL


def test_in_chunks_respects_the_encoded_budget() -> None:
    values = [f'name "{i}" & co' for i in range(300)]
    chunks = in_chunks("name", values, 500, extra="inactiveFlag = false")
    assert all(len(quote_plus(c)) <= 500 for c in chunks)
    joined = " ".join(chunks)
    assert all(quote(v) in joined for v in values)
    assert all(c.startswith("(inactiveFlag = false) and (name in (") for c in chunks)


# --- retries -------------------------------------------------------------------------------


def test_retries_recover_from_500s_and_429s(sb: Sandbox) -> None:
    async def listing() -> tuple[list[dict[str, Any]], int]:
        async with client_for(sb, max_retries=12) as cw:
            rows = await asyncio.gather(*(cw.get_all(COMPANIES, fields="id") for _ in range(20)))
            return [r for page in rows for r in page], cw.stats.retries

    clean, _ = run(listing())
    # 40% faults, 12 retries: all 13 attempts failing is a 1-in-150,000 event per request
    sb.configure_faults(error_500=0.2, error_429=0.2, retry_after=0, seed=7)
    faulty, retries = run(listing())
    assert faulty == clean
    assert sb.stats.faults["500"] > 0 and sb.stats.faults["429"] > 0
    assert retries == sb.stats.faults["500"] + sb.stats.faults["429"]


def test_429_waits_at_least_retry_after(sb: Sandbox) -> None:
    sb.configure_faults(error_429=1.0, retry_after=1)

    async def go() -> tuple[float, Any]:
        async with client_for(sb) as cw:
            started = time.monotonic()
            task = asyncio.create_task(cw.get_all(COMPANIES, fields="id"))
            await until_async(lambda: sb.stats.faults["429"], "the first answer, a 429")
            sb.configure_faults()  # the retry, after Retry-After, succeeds
            rows = await task
            return time.monotonic() - started, rows

    elapsed, rows = run(go())
    assert rows
    assert sb.stats.faults["429"] == 1
    assert elapsed >= 1.0  # backoff alone would have retried within 0.05 s


def test_retries_are_bounded(sb: Sandbox) -> None:
    sb.configure_faults(error_500=1.0)

    async def go() -> None:
        async with client_for(sb, max_retries=2) as cw:
            await cw.get_all(COMPANIES)

    with pytest.raises(ApiError) as err:
        run(go())
    assert err.value.status == 500
    assert str(err.value) == (
        "ConnectWise 500 UnexpectedServerError: An unexpected error occurred "
        "on GET /company/companies"
    )
    assert sb.stats["GET companies"] == 3


def test_dropped_connections_on_reads_are_retried(sb: Sandbox) -> None:
    sb.configure_faults(drop=0.3, seed=3)

    async def go() -> list[list[dict[str, Any]]]:
        async with client_for(sb, max_retries=10) as cw:
            return list(await asyncio.gather(*(cw.get_all(COMPANIES) for _ in range(8))))

    pages = run(go())
    assert sb.stats.faults["drop"] > 0
    assert all(len(p) == len(default_fixture().companies) for p in pages)


# --- writes --------------------------------------------------------------------------------


def _sso_product(sb: Sandbox) -> dict[str, Any]:
    item = next(i for i in default_fixture().catalog if i["identifier"] == "ZT-OKTA-SSO")
    return {"id": item["id"]}


def _new_addition(sb: Sandbox) -> dict[str, Any]:
    return {
        "product": _sso_product(sb),
        "quantity": 18,
        "billCustomer": "Billable",
        "effectiveDate": "2026-11-24T00:00:00Z",
    }


def test_post_whose_response_is_lost_raises_outcome_unknown_and_was_committed(
    sb: Sandbox,
) -> None:
    sb.configure_faults(lost_write=1.0, methods=["POST"])

    async def go() -> None:
        async with client_for(sb) as cw:
            await cw.post(ADDITIONS_1003, _new_addition(sb))

    with pytest.raises(OutcomeUnknown) as err:
        run(go())
    assert "outcome of POST /finance/agreements/1003/additions unknown" in str(err.value)
    assert sb.stats["POST additions"] == 1  # never blindly resent
    assert sb.stats.writes == 1
    assert [a["quantity"] for a in sb.additions(1003)] == [18]


def test_post_answered_500_is_outcome_unknown_not_retried(sb: Sandbox) -> None:
    sb.configure_faults(error_500=1.0, methods=["POST"])

    async def go() -> None:
        async with client_for(sb) as cw:
            await cw.post(ADDITIONS_1003, _new_addition(sb))

    with pytest.raises(OutcomeUnknown, match=r"^outcome unknown: ConnectWise 500"):
        run(go())
    assert sb.stats["POST additions"] == 1


def test_post_answered_429_is_retried_because_it_was_not_processed(sb: Sandbox) -> None:
    sb.configure_faults(error_429=1.0, retry_after=1, methods=["POST"])

    async def go() -> dict[str, Any]:
        async with client_for(sb) as cw:
            task = asyncio.create_task(cw.post(ADDITIONS_1003, _new_addition(sb)))
            await until_async(lambda: sb.stats.faults["429"], "the first answer, a 429")
            sb.configure_faults()
            return await task

    created = run(go())
    assert created["quantity"] == 18
    assert sb.stats["POST additions"] == 2
    assert len(sb.additions(1003)) == 1


def test_validation_error_is_one_readable_line_with_the_field(sb: Sandbox) -> None:
    body = _new_addition(sb) | {"effectiveDate": "2026-11-24T00:00:00Z"}

    async def go() -> None:
        async with client_for(sb) as cw:
            await cw.get_all(COMPANIES, fields="id")  # the client has been answered before
            await cw.post("/finance/agreements/1006/additions", body)

    with pytest.raises(ApiError) as err:
        run(go())
    line = str(err.value)
    assert err.value.status == 400 and err.value.field == "effectiveDate"
    assert line.startswith("ConnectWise 400 ")
    assert "(field effectiveDate) on POST /finance/agreements/1006/additions" in line
    assert "\n" not in line


def test_patch_and_delete(sb: Sandbox) -> None:
    addition = next(a for a in sb.additions(1004))

    async def go() -> dict[str, Any]:
        async with client_for(sb) as cw:
            path = f"/finance/agreements/1004/additions/{addition['id']}"
            patched = await cw.patch(path, [{"op": "replace", "path": "quantity", "value": 27}])
            await cw.delete(path)
            return patched

    assert run(go())["quantity"] == 27
    assert sb.additions(1004) == []


# --- credentials and secrets ---------------------------------------------------------------


def _wrong_key(sb: Sandbox) -> CWCredentials:
    env = sb.env() | {"CW_PRIVATE_KEY": "WrongPrivateKey-7f3a9"}
    return cw_credentials_from_env(env)


def _assert_no_secret(exc: BaseException, creds: CWCredentials) -> None:
    token = base64.b64encode(f"{creds.username}:{creds.private_key}".encode()).decode()
    for link in chain(exc):
        assert not isinstance(link, httpx.HTTPError)
        for text in (str(link), repr(link), repr(vars(link))):
            for secret in (creds.private_key, creds.public_key, token):
                assert secret not in text


@pytest.mark.parametrize("status", [401, 404])
def test_rejected_credentials_say_so_without_key_material(sb: Sandbox, status: int) -> None:
    sb.auth_failure_status = status
    creds = _wrong_key(sb)

    async def go() -> None:
        async with ConnectWiseClient(sb.cw_url, creds) as cw:
            await cw.get_all(COMPANIES)

    with pytest.raises(ApiError) as err:
        run(go())
    expected = {
        401: "ConnectWise rejected the credentials "
        "(CW_COMPANY_ID/CW_PUBLIC_KEY/CW_PRIVATE_KEY/CW_CLIENT_ID): 401",
        404: "check credentials and API URL",
    }[status]
    assert expected in str(err.value)
    assert err.value.status == status
    _assert_no_secret(err.value, creds)
    assert "WrongPrivateKey" not in repr(creds)


def test_unreachable_host_is_reported_after_bounded_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    creds = CWCredentials("co", "pub-key-1234", "priv-key-5678", "client")

    async def go() -> None:
        url = f"http://127.0.0.1:{port}/v4_6_release/apis/3.0"
        async with ConnectWiseClient(url, creds, http=FAST_RETRY) as cw:
            await cw.get_all(COMPANIES)

    with pytest.raises(ApiError) as err:
        run(go())
    assert err.value.unreachable
    assert f"ConnectWise unreachable at 127.0.0.1:{port}: connection failed" in str(err.value)
    assert "3 attempts" in str(err.value)
    _assert_no_secret(err.value, creds)


# --- transport faults no server produces on demand (respx) -----------------------------------

BASE = "https://cw.example/v4_6_release/apis/3.0"
CREDS = CWCredentials("co", "pub-key-1234", "priv-key-5678", "client")


@respx.mock(using=POOL)
def test_post_refused_before_sending_is_retried(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(BASE + ADDITIONS_1003).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(201, json={"id": 9})]
    )

    async def go() -> dict[str, Any]:
        async with ConnectWiseClient(BASE, CREDS, http=HttpSettings(backoff_base=0.01)) as cw:
            return await cw.post(ADDITIONS_1003, {"product": {"id": 1}})

    assert run(go()) == {"id": 9}
    assert route.call_count == 2
    sent = route.calls[0].request
    assert sent.headers["clientId"] == "client"
    assert sent.headers.get_list("Accept") == [
        "application/vnd.connectwise.com+json; version=2020.4"
    ]  # the pinned API version, and no other Accept beside it
    user, _, password = base64.b64decode(sent.headers["Authorization"][6:]).decode().partition(":")
    assert (user, password) == ("co+pub-key-1234", "priv-key-5678")


@respx.mock(using=POOL)
def test_post_timing_out_after_sending_is_outcome_unknown_without_request_in_chain(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(BASE + ADDITIONS_1003).mock(side_effect=httpx.ReadTimeout("slow"))

    async def go() -> None:
        async with ConnectWiseClient(BASE, CREDS, http=HttpSettings(backoff_base=0.01)) as cw:
            await cw.post(ADDITIONS_1003, {"product": {"id": 1}})

    with pytest.raises(OutcomeUnknown, match="read timed out") as err:
        run(go())
    assert route.call_count == 1
    _assert_no_secret(err.value, CREDS)


@respx.mock(using=POOL)
def test_read_timeouts_on_get_are_retried(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(BASE + COMPANIES).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=[{"id": 1}])]
    )

    async def go() -> list[dict[str, Any]]:
        async with ConnectWiseClient(BASE, CREDS, http=HttpSettings(backoff_base=0.01)) as cw:
            return await cw.get_all(COMPANIES)

    assert run(go()) == [{"id": 1}]
    assert route.call_count == 2


@respx.mock(using=POOL)
def test_server_text_echoing_a_secret_is_redacted(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(BASE + COMPANIES).mock(
        return_value=httpx.Response(400, json={"code": "Bad", "message": "key priv-key-5678"})
    )

    async def go() -> None:
        async with ConnectWiseClient(BASE, CREDS) as cw:
            await cw.get_all(COMPANIES)

    with pytest.raises(ApiError) as err:
        run(go())
    assert str(err.value) == "ConnectWise 400 Bad: key *** on GET /company/companies"


def test_concurrency_is_bounded(sb: Sandbox) -> None:
    """Counted at the server, not timed: a request is in flight there from its processing
    until its answer (the client sends the next one only once it has an answer)."""
    lock, in_flight, peak = threading.Lock(), [0], [0]
    four = threading.Event()

    def held(req: Request, resp: Response) -> Response:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            if in_flight[0] == 4:
                four.set()
        four.wait(timeout=DEADLINE)  # the first requests wait until 4 are in flight at once
        time.sleep(0.05)  # room for a fifth to arrive, were the client to send one
        with lock:
            in_flight[0] -= 1
        return resp

    sb.on_response = held

    async def go() -> None:
        async with client_for(sb, max_concurrency=4) as cw:
            await asyncio.gather(*(cw.get_all(COMPANIES, fields="id") for _ in range(16)))

    run(go())
    assert four.is_set() and peak[0] == 4  # 4 at once, never more
    assert sb.stats["GET companies"] == 16


def test_cookies_a_server_sets_are_never_sent_back() -> None:
    """Both APIs authenticate each request by header; a session cookie from a server or a
    proxy in front of it must not ride along on later requests (nor cost a parse each)."""
    import http.server
    import threading

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Cookie"))
            body = b"[]"
            self.send_response(200)
            self.send_header("Set-Cookie", "session=abc; Path=/")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"

        async def go() -> None:
            async with ConnectWiseClient(url, CREDS) as cw:
                await cw.get_all(COMPANIES)
                await cw.get_all(COMPANIES)

        run(go())
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [None, None]


# --- environment -----------------------------------------------------------------------------


def test_api_url_from_environment_and_only_https_off_loopback() -> None:
    from reconciler.config.env import resolve_api_url
    from reconciler.core.errors import ReconcileError

    setting = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/"
    assert resolve_api_url(setting, "CW_API_URL", {}) == setting.rstrip("/")
    local = "http://127.0.0.1:8080/v4_6_release/apis/3.0"
    assert resolve_api_url(setting, "CW_API_URL", {"CW_API_URL": local}) == local
    with pytest.raises(ReconcileError, match=r"^CW_API_URL: plain http:// is allowed only"):
        resolve_api_url(setting, "CW_API_URL", {"CW_API_URL": "http://cw.example/apis/3.0"})
    with pytest.raises(ReconcileError, match=r"^settings.yaml connectwise.api_url: plain http"):
        resolve_api_url("http://cw.example/", "CW_API_URL", {"CW_API_URL": local})
    with pytest.raises(ReconcileError, match=r"set CW_API_URL or the api_url in settings\.yaml"):
        resolve_api_url("", "CW_API_URL", {})


def test_missing_credentials_name_the_variables_never_values() -> None:
    from reconciler.core.errors import ReconcileError

    env = {"CW_COMPANY_ID": "co", "CW_PRIVATE_KEY": "priv-secret-99", "CW_CLIENT_ID": " "}
    with pytest.raises(ReconcileError) as err:
        cw_credentials_from_env(env)
    assert str(err.value) == (
        "ConnectWise credentials missing: set the environment variables CW_PUBLIC_KEY, CW_CLIENT_ID"
    )
    creds = CWCredentials("co", "pub-secret-11", "priv-secret-99", "client-7")
    assert "secret" not in repr(creds)


def test_a_server_that_ignores_page_is_an_error_not_an_endless_read() -> None:
    """A real (if broken) server on loopback: every page is the same 1000 items."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    served = []

    class Stuck(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            body = json.dumps([{"id": i} for i in range(1000)]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stuck)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    creds = CWCredentials("co", "pub", "privatekey", "client")
    try:

        async def go() -> None:
            url = f"http://127.0.0.1:{server.server_port}/v4_6_release/apis/3.0"
            async with ConnectWiseClient(url, creds) as client:
                await client.get_all(COMPANIES)

        with pytest.raises(Exception, match=r"page 2 .* no item not already read"):
            run(go())
        assert len(served) == 2
    finally:
        server.shutdown()
        server.server_close()
