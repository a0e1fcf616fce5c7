"""The HTTP transport under `HttpApi`: a keep-alive pool of HTTP/1.1 connections, h11 over
asyncio, behind httpx's transport interface.

httpx's own transport goes through httpcore and anyio: a connection pool with locks,
cancel scopes and traces for HTTP/2, proxies and several async libraries, none of which
these two APIs use. At 40 ms per answer and 8 requests in flight, those layers cost about
1.4 ms of the client's one thread per request, enough to delay answers behind one another
(issue 29's last 6% above the bound). This pool keeps what the clients rely on and drops
the rest: h11 (httpcore's own HTTP/1.1 parser) frames each message; asyncio's protocol does
the socket and TLS (certificates verified by `default_ssl_context`, httpx's default); the
same httpx exceptions come out (`connection`); httpx's `Limits` bound open connections, idle
ones and their keep-alive expiry; a connection the server closed or wrote to while idle, or
with bytes left over after its last answer, is never reused.

Above it, `HttpApi` builds httpx's request model itself (headers, the `Timeout` in the
request's extensions) and reads the streamed body to the size cap; no redirect is ever
followed and no cookie kept. No HTTP/2, proxies or Unix sockets: the clients use none.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
from collections.abc import AsyncIterator, Callable

import httpx

from reconciler.net.connection import Connection, open_wire

Origin = tuple[str, str, int]
PORTS = {"http": 80, "https": 443}


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's CA bundle, not the environment's
    SSL_CERT_FILE), built once per process: loading the bundle takes ~40 ms, and each API
    client would otherwise load it again."""
    return httpx.create_ssl_context(trust_env=False)


class Transport(httpx.AsyncBaseTransport):
    """Keep-alive connections per origin, at most `limits.max_connections` in use at once."""

    def __init__(self, *, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = default_ssl_context() if ssl_context is None else ssl_context
        self._max = limits.max_connections or 100
        self._keep = limits.max_keepalive_connections
        if self._keep is None:
            self._keep = self._max
        self._expiry = limits.keepalive_expiry
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[Origin, list[Connection]] = {}
        self.connections = 0  # opened so far (a test tells reuse from reconnects by it)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {request.url.scheme!r}")
        timeouts = request.extensions.get("timeout", {})
        slots = self._slots_of_this_loop()
        if slots.locked():  # a timer only when there is something to wait for
            try:
                async with asyncio.timeout(timeouts.get("pool")):
                    await slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no connection free within the pool timeout") from None
        else:
            await slots.acquire()  # free: returns at once
        release = _Once(slots.release)
        try:
            origin = _origin(request.url)
            conn = self._reused(origin) or await self._open(origin, timeouts.get("connect"))
            try:
                head = await conn.send(request, timeouts)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            release()
            raise
        body = _Body(self, conn, origin, timeouts.get("read"), release)
        return httpx.Response(
            head.status_code,
            headers=list(head.headers),
            stream=body,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": bytes(head.reason),
                "network_stream": conn,
            },
        )

    async def aclose(self) -> None:
        self._drop_idle()

    def _drop_idle(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                # A connection of an event loop closed since (its socket goes with it).
                with contextlib.suppress(RuntimeError):
                    conn.close()
        self._idle.clear()

    def _slots_of_this_loop(self) -> asyncio.Semaphore:
        """Connections and the semaphore belong to one event loop; a client used again
        under another (a second `asyncio.run`) starts afresh."""
        loop = asyncio.get_running_loop()
        if self._slots is None or loop is not self._loop:
            self._drop_idle()
            self._slots, self._loop = asyncio.Semaphore(self._max), loop
        return self._slots

    def _reused(self, origin: Origin) -> Connection | None:
        """The most recently used live idle connection to `origin`, if any."""
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            expired = self._expiry is not None and now - conn.idle_since > self._expiry
            if conn.reusable and not expired:
                return conn
            conn.close()
        return None

    async def _open(self, origin: Origin, timeout: float | None) -> Connection:
        scheme, host, port = origin
        context = self.ssl_context if scheme == "https" else None
        wire, transport = await open_wire(host, port, context, timeout)
        self.connections += 1
        return Connection(wire, transport)

    def _put_back(self, origin: Origin, conn: Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if sum(len(c) for c in self._idle.values()) >= (self._keep or 0):
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)


class _Once:
    """The connection slot's release: by the body's close, or by the failure before it."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action: Callable[[], None] | None = action

    def __call__(self) -> None:
        action, self._action = self._action, None
        if action is not None:
            action()


class _Body(httpx.AsyncByteStream):
    """The answer's body; closing it hands the connection back (whole answer read) or
    drops it (anything else: the next request must not read this one's leftovers)."""

    def __init__(
        self, pool: Transport, conn: Connection, origin: Origin, timeout: float | None,
        release: _Once,
    ) -> None:  # fmt: skip
        self._pool, self._origin = pool, origin
        self._conn: Connection | None = conn
        self._timeout, self._release = timeout, release
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._conn is None:
            raise httpx.StreamClosed()
        async for chunk in self._conn.body(self._timeout):
            yield chunk
        self._done = True

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and conn.finish():
            self._pool._put_back(self._origin, conn)
        else:
            conn.close()
        self._release()


def _origin(url: httpx.URL) -> Origin:
    # The host as httpx encodes it (IDNA 2008, the name httpcore connected to): asyncio and
    # ssl would encode a Unicode name by IDNA 2003, another host for some ("faß" -> "fass").
    return url.scheme, url.raw_host.decode("ascii"), url.port or PORTS[url.scheme]
