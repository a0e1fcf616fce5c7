"""HTTP plumbing shared by the ConnectWise and ZeroTek clients: `HttpApi`, the one place
requests are sent, and its retry loop.

One keep-alive pool per client (`transport`; httpx's request and response models, sent
straight to it), request slots bounding requests in flight, bounded retries with
exponential backoff and full jitter honouring `Retry-After` (`retry`), answers read up to
the size cap (`body`), errors that are one readable line (`errors`), and what was sent
counted (`stats`).

Secrets: every exception raised here is created outside the `except` block that caught the
httpx error, so no exception chain ever holds an httpx request (whose headers carry the
credentials); and server-supplied text is scrubbed of the secrets before it is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Self
from urllib.parse import urlsplit

import httpx

from reconciler.core.errors import ReconcileError
from reconciler.net.body import SPENT, TooLarge, read_capped, with_body
from reconciler.net.deadline import RunDeadline
from reconciler.net.errors import ApiError, OutcomeUnknown, describe, one_line
from reconciler.net.retry import MAX_RETRY_AFTER, parse_retry_after, retry_delay
from reconciler.net.settings import DEFAULT_HTTP, HttpSettings
from reconciler.net.slots import Slots
from reconciler.net.stats import RequestStats
from reconciler.net.throttle import Throttle
from reconciler.net.transport import Transport

log = logging.getLogger(__name__)

# What httpx's client sent by default, and a name of our own.
DEFAULT_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",  # decoded by httpx.Response, within the size cap
    "User-Agent": "zerotek-cw-reconciler",
}


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
        # Straight to the transport, without httpx's client: both APIs authenticate with
        # headers, set no cookies, must not be redirected (a redirect means a wrong URL;
        # never resend credentials) and use no proxies, so the client's auth, cookie,
        # redirect and proxy layers had nothing to do but cost CPU on every request.
        self._headers = httpx.Headers(DEFAULT_HEADERS)
        self._headers.update(headers)  # case-insensitively: one Accept, the client's
        self._timeouts = httpx.Timeout(http.timeout).as_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

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
            return _Sent(failure=describe(exc, self._secrets))
        except httpx.TransportError as exc:
            return _Sent(failure=describe(exc, self._secrets), reached=True)
        except TimeoutError:
            return _Sent(
                final=f"no complete answer within {self.http.deadline:g} s (the request "
                "deadline, connect through last byte)"
            )
        except TooLarge:
            mb = self.http.max_response_bytes / 1024 / 1024
            return _Sent(final=f"answer larger than {mb:g} MB (the response size cap)")
        except httpx.DecodingError:  # carries the request: never let it out
            return _Sent(final="an answer that could not be decoded (its Content-Encoding)")

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
            request = httpx.Request(
                method, url, headers=self._headers, extensions={"timeout": self._timeouts},
                **kwargs,
            )  # fmt: skip
            self.stats.bytes_sent += len(request.content)
            response = await self._transport.handle_async_request(request)
            response.request = request
            try:
                body = await read_capped(response, self.http.max_response_bytes)
            finally:
                await response.aclose()
                self.stats.bytes_received += response.num_bytes_downloaded
                # httpx's streamed response and its stream refer to each other: left so,
                # every answer (~40 objects with its request and headers) waits for the
                # cycle collector, whose pauses stalled every request in flight (4.6 s of
                # pauses in a 10,000-customer apply). Its stream is spent: let it go.
                response.stream = SPENT
        return with_body(response, body)

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
