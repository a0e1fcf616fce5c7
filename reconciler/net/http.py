"""HTTP plumbing shared by the ConnectWise and ZeroTek clients.

One `httpx.AsyncClient` per run with a keep-alive pool, a semaphore bounding requests in
flight, bounded retries with exponential backoff and full jitter (honouring `Retry-After`),
and errors that are one readable line.

Secrets: every exception raised here is created outside the `except` block that caught the
httpx error, so no exception chain ever holds an httpx request (whose headers carry the
credentials); and server-supplied text is scrubbed of the secrets before it is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, ClassVar, NamedTuple, Self
from urllib.parse import urlsplit

import httpx

from reconciler.core.errors import ReconcileError
from reconciler.net.deadline import RunDeadline
from reconciler.net.settings import DEFAULT_HTTP, HttpSettings
from reconciler.net.slots import Slots
from reconciler.net.throttle import Throttle
from reconciler.net.transport import Transport
from reconciler.secure.scrub import shorten

log = logging.getLogger(__name__)

# Retry-After beyond this is treated as "come back much later": better to fail the run
# clearly than to sleep for an hour inside a CI job.
MAX_RETRY_AFTER = 120.0


class _TooLarge(Exception):
    pass


class ApiError(ReconcileError):
    """An API call failed. `str()` is the whole readable line; `message` is the server's.

    `status` is None when no HTTP response arrived (unreachable host, timeout)."""

    def __init__(
        self,
        line: str,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        field: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(line)
        self.status = status
        self.code = code
        self.message = message if message is not None else line
        self.field = field
        self.method = method
        self.path = path

    @property
    def unreachable(self) -> bool:
        return self.status is None

    @property
    def auth_rejected(self) -> bool:
        return self.status in (401, 403)


class OutcomeUnknown(ApiError):
    """A non-idempotent request (POST) may or may not have been processed: the caller must
    re-read before deciding whether to send it again."""


@dataclass
class RequestStats:
    """What the clients of one API sent and received during one command: the run record's
    `requests`, `-v` and the benchmarks. Clients made through one `Clients` share it.

    A few additions per request, never a list per request (10,000-customer runs send tens
    of thousands). `by_kind` counts every attempt, retries included, by method and route
    pattern (`GET finance/agreements/{id}/additions`): never a raw URL (ids, query
    conditions with names from the APIs) and never a header (credentials). Bytes are of
    request and response bodies as sent and received on the wire."""

    by_method: Counter[str] = field(default_factory=Counter)  # logical requests by method
    retries: int = 0
    longest_url: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)  # attempts, retries included
    status_429: int = 0
    wait_seconds: float = 0.0  # slept in back-off and Retry-After before retries
    request_seconds: float = 0.0  # summed over attempts (concurrent ones overlap)
    bytes_received: int = 0
    bytes_sent: int = 0
    throttle: Throttle | None = None  # the API's rate, set by the first client made

    @property
    def requests(self) -> int:
        """Logical requests (a request retried three times counts once)."""
        return sum(self.by_method.values())

    @property
    def attempts(self) -> int:
        """Requests sent, retries included."""
        return sum(self.by_kind.values())

    def to_json(self) -> dict[str, Any]:
        """As the run record holds it (schemas/run.schema.json, `api_requests`)."""
        return {
            "requests": self.attempts,
            "by_kind": dict(sorted(self.by_kind.items())),
            "retries": self.retries,
            "status_429": self.status_429,
            "wait_seconds": round(self.wait_seconds, 3),
            "request_seconds": round(self.request_seconds, 3),
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
            "throttle": (self.throttle or Throttle()).to_json(),
        }


# The APIs a run talks to, as the run record names them.
APIS = ("connectwise", "zerotek")


class Traffic:
    """Request statistics per API for one command (one `RequestStats` per API, shared by
    every client of that API the command makes, and with it one `Throttle`).

    `notice` gets the throttles' progress lines ("ConnectWise is throttling: about 9.8
    requests/s get through"); `deadline` (a `time.monotonic()` instant: the run's time limit) bounds
    their waiting."""

    def __init__(
        self, *, notice: Callable[[str], None] | None = None, deadline: float | None = None
    ) -> None:
        self.apis: dict[str, RequestStats] = {}
        self.notice = notice
        self.deadline = deadline

    def of(self, api: str) -> RequestStats:
        stats = self.apis.get(api)
        if stats is None:
            throttle = Throttle(notice=self.notice, deadline=self.deadline)
            stats = self.apis[api] = RequestStats(throttle=throttle)
        return stats

    def to_json(self) -> dict[str, dict[str, Any]]:
        """Every API in APIS, with zeros when one was not contacted: stable keys."""
        return {name: self.of(name).to_json() for name in APIS}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def retry_delay(attempt: int, retry_after: float | None, base: float, maximum: float) -> float:
    """The one retry policy (every HTTP client here): exponential backoff with full jitter,
    or the server's `Retry-After` plus at most a second of jitter, so concurrent retries
    do not stampede."""
    jitter = random.uniform(0, min(maximum, base * 2**attempt))
    if retry_after is None:
        return jitter
    return retry_after + min(jitter, 1.0)


def one_line(text: str, limit: int = 300, extra: Iterable[str] = ()) -> str:
    """Server or exception text for a message: scrubbed, then one line, then cut."""
    return shorten(text, limit, extra)


@dataclass
class _Call:
    """One request across its attempts."""

    method: str
    path: str
    params: dict[str, str | int] | None
    kwargs: dict[str, Any]  # the body, for httpx
    kind: str  # `by_kind`'s key: method and route pattern
    url: httpx.URL | None = None  # built when the first attempt has its slot
    attempt: int = 0  # failures that use up the retry budget (429s do not: DESIGN 13.9)
    refusals: int = 0  # 429s
    sent_before: bool = False

    @property
    def idempotent(self) -> bool:
        return self.method != "POST"


class _Sent(NamedTuple):
    """What one attempt came to: an answer; or a `failure` worth retrying (`reached`: the
    request may have reached the server); or a `final` failure, not worth retrying."""

    response: httpx.Response | None = None
    failure: str | None = None
    reached: bool = False
    final: str | None = None
    waited: float = 0.0  # the throttle's instant the attempt started at
    started: float = 0.0  # time.perf_counter() when it was sent


class HttpApi:
    """Base of both API clients. Subclasses name the service and parse its error bodies."""

    service: ClassVar[str] = "API"
    credential_hint: ClassVar[str] = ""  # names of the variables holding the credentials
    url_hint: ClassVar[str] = ""  # name of the variable holding the API root
    api: ClassVar[str] = "api"  # the run record's name for it (connectwise, zerotek)
    # Path segments after these are ids in route patterns (besides all-digit segments).
    id_after: ClassVar[frozenset[str]] = frozenset()
    # The run's --max-duration (set by clients.Clients): how long waits may still last.
    run_deadline: RunDeadline = RunDeadline.unbounded()

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str],
        secrets: tuple[str, ...],
        http: HttpSettings = DEFAULT_HTTP,
        transport: httpx.AsyncBaseTransport | None = None,
        stats: RequestStats | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.stats = stats if stats is not None else RequestStats()
        self._secrets = tuple(secrets)
        self._slots = Slots(http.max_concurrency)  # by priority: see reconciler.net.slots
        # One per API, shared by every client counting into the same stats (a command's
        # clients of one API): see reconciler.net.throttle.
        if throttle is None:
            throttle = self.stats.throttle or Throttle()
        self.stats.throttle = self.throttle = throttle
        throttle.service = self.service
        throttle.concurrency = max(throttle.concurrency, http.max_concurrency)
        throttle.limit(http.max_requests_per_minute)
        self._answered = False  # any 2xx yet: a 404 before that means wrong URL or auth
        limits = httpx.Limits(
            max_connections=http.max_concurrency, max_keepalive_connections=http.max_concurrency
        )
        self._transport = Transport(limits=limits) if transport is None else transport
        self._client = httpx.AsyncClient(
            headers=headers,
            cookies=_no_cookies(),
            timeout=httpx.Timeout(http.timeout),
            limits=limits,
            transport=self._transport,
            follow_redirects=False,  # a redirect would mean a wrong URL; never resend auth
            trust_env=False,  # no proxies or netrc picked up behind the user's back
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- the one place requests are sent ------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        """The answer (2xx) to one request, after as many attempts as the retry policy
        allows; otherwise an `ApiError` (`OutcomeUnknown` when a POST may have been
        processed)."""
        self.stats.by_method[method] += 1
        kwargs: dict[str, Any] = {} if json_body is None else {"json": json_body}
        call = _Call(method, path, params, kwargs, f"{method} {self.route(path)}")
        while True:
            sent = await self._attempt(call)
            if sent.final is not None:
                raise self._final_error(call, sent.final)
            if sent.response is None:
                assert sent.failure is not None
                delay = self._failure_delay(call, sent.failure, sent.reached)
                why = sent.failure
            else:
                response = sent.response
                # The path only: query conditions carry names from the APIs (data, not ours
                # to print), the path only ids. Never headers: they carry the credentials.
                log.debug(
                    "%s %s %s -> %d in %.0f ms", self.service, method, path,
                    response.status_code, (time.perf_counter() - sent.started) * 1000
                )  # fmt: skip
                if response.status_code < 300:
                    self._answered = True
                    self.throttle.answered(sent.waited)
                    return response
                if response.status_code == 429:
                    call.refusals += 1
                    self._refused(response, method, path, sent.waited, call.refusals)
                    continue  # the shared pause is waited for in the next `_paced`
                delay = self._status_delay(call, response)
                why = str(response.status_code)
            call.attempt += 1
            await self._back_off(call, why, delay)

    async def _attempt(self, call: _Call) -> _Sent:
        """One attempt in a slot: the throttle's pace, then the request itself."""
        stats = self.stats
        async with self._slots:
            waited = await self._paced(call.refusals)
            if call.url is None:
                # Built once a slot is ours: thousands of requests queued at once (the
                # additions of 10,000 agreements) would otherwise parse their URLs in one
                # burst that stalls the requests already under way.
                call.url = httpx.URL(self.base_url + call.path, params=call.params or None)
                stats.longest_url = max(stats.longest_url, len(str(call.url)))
            stats.by_kind[call.kind] += 1
            if call.sent_before:  # counted when sent: a retry cancelled in its wait never was
                stats.retries += 1
            call.sent_before = True
            started = time.perf_counter()
            sent = await self._send(call.method, call.url, call.kwargs)
            stats.request_seconds += time.perf_counter() - started
        return sent._replace(waited=waited, started=started)

    async def _send(self, method: str, url: httpx.URL, kwargs: dict[str, Any]) -> _Sent:
        """The answer, or what kept it from coming. Returned, not raised: the errors made
        of it are raised outside these `except` blocks (see the module docstring)."""
        try:
            return _Sent(response=await self._fetch(method, url, kwargs))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # nothing sent: safe to retry any method
            return _Sent(failure=_describe(exc, self._secrets))
        except httpx.TransportError as exc:
            return _Sent(failure=_describe(exc, self._secrets), reached=True)
        except TimeoutError:
            return _Sent(
                final=f"no complete answer within {self.http.deadline:g} s (the request "
                "deadline, connect through last byte)"
            )
        except _TooLarge:
            mb = self.http.max_response_bytes / 1024 / 1024
            return _Sent(final=f"answer larger than {mb:g} MB (the response size cap)")

    def _final_error(self, call: _Call, final: str) -> ApiError:
        """A failure not worth retrying (the deadline, the size cap)."""
        line = f"{self.service} on {call.method} {call.path}: {final}"
        if not call.idempotent:  # it may have been processed all the same
            return OutcomeUnknown(f"outcome unknown: {line}", method=call.method, path=call.path)
        return ApiError(line, method=call.method, path=call.path, message=final)

    def _status_delay(self, call: _Call, response: httpx.Response) -> float:
        """How long to wait before retrying an error answer (not a 429); its error when it
        may not be retried: a 4xx, a 5xx to a POST (outcome unknown), no retries left, or
        a Retry-After too far off."""
        status = response.status_code
        if status >= 500 and not call.idempotent:
            raise self._error(response, call.method, call.path, unknown=True)
        if status < 500 or call.attempt >= self.http.max_retries:
            raise self._error(response, call.method, call.path)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None and retry_after > MAX_RETRY_AFTER:
            raise self._error(response, call.method, call.path)
        return self._delay(call.attempt, retry_after)

    def _failure_delay(self, call: _Call, failure: str, reached: bool) -> float:
        """How long to wait before retrying after no answer came; the error when it may not
        be retried: a POST that may have reached the server, or no retries left."""
        method, path = call.method, call.path
        if reached and not call.idempotent:
            raise OutcomeUnknown(
                f"{self.service}: outcome of {method} {path} unknown: {failure} "
                "after the request was sent",
                method=method,
                path=path,
            )
        if call.attempt >= self.http.max_retries:
            verdict = "did not answer" if reached else "unreachable at"
            raise ApiError(
                f"{self.service} {verdict} {self._host()}: {failure} "
                f"(on {method} {path}, {call.attempt + 1} attempts)",
                method=method,
                path=path,
                message=failure,
            )
        return self._delay(call.attempt, None)

    async def _back_off(self, call: _Call, why: str, delay: float) -> None:
        log.info("%s %s %s: %s; retry %d in %.2fs", self.service, call.method, call.path, why,
                 call.attempt, delay)  # fmt: skip
        slept = time.perf_counter()
        try:
            await asyncio.sleep(delay)
        finally:  # a cancelled wait counts for what it lasted
            self.stats.wait_seconds += time.perf_counter() - slept

    async def _paced(self, refusals: int) -> float:
        """The throttle's wait before an attempt (a retry after a 429 counts it as waiting
        before a retry); the instant the attempt starts."""
        if not refusals:
            return await self.throttle.wait()
        slept = time.perf_counter()
        try:
            return await self.throttle.wait()
        finally:
            self.stats.wait_seconds += time.perf_counter() - slept

    def _refused(
        self, response: httpx.Response, method: str, path: str, sent: float, refusals: int
    ) -> None:
        """A 429: the throttle pauses every slot and lowers the rate; the request is sent
        again after the pause unless it may not wait that long (then its error is raised)."""
        self.stats.status_429 += 1
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if not self.throttle.may_retry(retry_after, refusals, MAX_RETRY_AFTER):
            raise self._error(response, method, path)
        self.throttle.refused(sent, retry_after)
        log.info("%s %s %s: 429; retry after the pause (%s s)", self.service, method, path,
                 "?" if retry_after is None else f"{retry_after:g}")  # fmt: skip

    def route(self, path: str) -> str:
        """The request's kind without its ids: `finance/agreements/{id}/additions`."""
        out = []
        previous = ""
        for part in path.strip("/").split("/"):
            out.append("{id}" if part.isdigit() or previous in self.id_after else part)
            previous = part
        return "/".join(out)

    async def _fetch(self, method: str, url: httpx.URL, kwargs: dict[str, Any]) -> httpx.Response:
        """One attempt within the deadline, its body read up to the size cap."""
        async with asyncio.timeout(self.http.deadline):
            request = self._client.build_request(method, url, **kwargs)
            self.stats.bytes_sent += len(request.content)
            response = await self._client.send(request, stream=True)
            try:
                body = await self._capped_body(response)
            finally:
                await response.aclose()
                self.stats.bytes_received += response.num_bytes_downloaded
                # httpx's streamed response and its stream refer to each other: left so,
                # every answer (~40 objects with its request and headers) waits for the
                # cycle collector, whose pauses stalled every request in flight (4.6 s of
                # pauses in a 10,000-customer apply). Its stream is spent: let it go.
                response.stream = _SPENT
        return _with_body(response, body)

    async def _capped_body(self, response: httpx.Response) -> bytes:
        """The decoded body, refused (`_TooLarge`) as soon as it is declared or grows larger
        than the cap: decoded, so a small compressed answer cannot unpack into gigabytes."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.http.max_response_bytes:
            raise _TooLarge
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self.http.max_response_bytes:
                raise _TooLarge
        return bytes(body)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        return retry_delay(attempt, retry_after, self.http.backoff_base, self.http.backoff_max)

    def _host(self) -> str:
        parts = urlsplit(self.base_url)
        return parts.netloc or self.base_url

    # --- errors -----------------------------------------------------------------------------

    def parse_error_body(self, body: Any) -> tuple[str | None, str | None, str | None]:
        """(code, message, field) from a decoded error body; overridden per service."""
        return None, None, None

    def _error(
        self, response: httpx.Response, method: str, path: str, *, unknown: bool = False
    ) -> ApiError:
        status = response.status_code
        code = message = fld = None
        with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError, IndexError):
            code, message, fld = self.parse_error_body(response.json())
        if not message and not response.text.lstrip().startswith("<"):
            # plain text is worth showing; an HTML error page (edge proxies) is not
            message = response.text if response.text.strip() else None
        # Scrub before shortening: a cut could leave the start of a credential unmatched.
        message = one_line(message, extra=self._secrets) if message else response.reason_phrase
        code = one_line(code, 80, self._secrets) if code else None
        fld = one_line(fld, 80, self._secrets) if fld else None
        where = f"on {method} {path}"
        detail = f"{status}{' ' + code if code else ''}: {message}"
        if fld:
            detail += f" (field {fld})"
        if status in (401, 403):
            line = f"{self.service} rejected the credentials ({self.credential_hint}): {detail}"
        elif status == 404 and not self._answered:
            line = (
                f"{self.service} answered {detail} {where}: check credentials and API URL "
                f"({self.url_hint}={self.base_url})"
            )
            where = ""
        elif 300 <= status < 400:
            line = f"{self.service} redirected ({status}): check API URL ({self.url_hint})"
        else:
            line = f"{self.service} {detail}"
        if where:
            line += f" {where}"
        if unknown:
            line = f"outcome unknown: {line}"
        kind = OutcomeUnknown if unknown else ApiError
        return kind(
            line, status=status, code=code, message=message, field=fld, method=method, path=path
        )

    def json_of(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except (ValueError, UnicodeDecodeError):
            raise ReconcileError(
                f"{self.service} returned a body that is not JSON on {method} {path}"
            ) from None


def _no_cookies() -> CookieJar:
    """A jar that keeps nothing: both APIs authenticate every request with headers and set
    no cookies, so there is nothing to keep; and a cookie a server (or proxy) did set is never
    replayed to it. With neither cookie protocol enabled the jar does not even parse a
    response's Set-Cookie (httpx still hands it every response)."""
    return CookieJar(policy=DefaultCookiePolicy(netscape=False, rfc2965=False))


_SPENT = httpx.ByteStream(b"")


def _with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """`response` (streamed, closed) as `send` without `stream=True` would have returned it:
    its body read. httpx has no public way to give a streamed response the body read from
    it, so this is a new response with the same status, headers, request and extensions.
    The body is decoded already: Content-Encoding goes, or `read` would decode it again."""
    headers = response.headers.copy()
    headers.pop("Content-Encoding", None)
    answer = httpx.Response(
        response.status_code,
        headers=headers,
        stream=httpx.ByteStream(body),
        request=response.request,
        extensions=response.extensions,
    )
    answer.read()
    return answer


def _describe(exc: httpx.TransportError, secrets: Iterable[str] = ()) -> str:
    """A short cause for a transport error; never the request (its headers hold secrets)."""
    kind = {
        httpx.ConnectError: "connection failed",
        httpx.ConnectTimeout: "connect timed out",
        httpx.ReadTimeout: "read timed out",
        httpx.WriteTimeout: "write timed out",
        httpx.PoolTimeout: "no free connection",
        httpx.RemoteProtocolError: "connection dropped",
        httpx.ReadError: "connection dropped",
        httpx.WriteError: "connection dropped",
    }.get(type(exc), type(exc).__name__)
    text = one_line(str(exc), 120, secrets)
    return f"{kind} ({text})" if text and text != kind else kind
