"""The HTTP transport under `HttpApi`: httpx's own, with a cheaper connection health check.

Before each request, and after each response, httpcore's pool checks every idle
connection for "the server closed it" (`has_expired`: is the socket readable?). Through its
default anyio backend, each check asks anyio for the raw socket, and anyio builds the
stream's whole attribute table to answer, a `getpeername` system call included: on the
2,000-customer plan against the sandbox at 0 ms that was about a fifth of the reconciler's
CPU (the "per-request connection health checks" of issue 18's profile).

`HealthCheckedBackend` is httpcore's anyio backend with only that check changed: the
socket is looked up once, when the connection opens, and the check polls it as httpcore
itself does. Reads, writes, TLS, timeouts and errors are anyio's and httpcore's, unchanged.
httpx has no parameter for a network backend yet (encode/httpx#3749), so `Transport`
rebuilds its pool with the same settings plus the backend; a test checks requests really
go through it (an httpx that renamed its pool would be noticed; its own pool would then
serve, slower but alike), and pyproject.toml caps httpx at the versions that test passed on.
"""

from __future__ import annotations

import functools
import select
import ssl
import sys
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


def _readable(sock: Any) -> bool:
    """httpcore's own check (`httpcore._utils.is_socket_readable`): data or EOF waiting on
    an idle connection means the server is done with it; no socket means unusable."""
    fd = -1 if sock is None else sock.fileno()
    if fd == -1:
        return True
    if sys.platform == "win32" or not hasattr(select, "poll"):
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


class HealthCheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend; its streams answer the pool's health check cheaply."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        self.connections = 0  # opened so far (so a test can tell this backend is in use)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        self.connections += 1
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        self.connections += 1
        return _Stream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's CA bundle; not the environment's, as the
    clients set `trust_env=False`), built once per process: loading the bundle takes
    ~40 ms, and each API client would otherwise load it again."""
    return httpx.create_ssl_context(trust_env=False)


class Transport(httpx.AsyncHTTPTransport):
    """`httpx.AsyncHTTPTransport` with its pool on `HealthCheckedBackend`."""

    def __init__(self, *, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        context = default_ssl_context() if ssl_context is None else ssl_context
        super().__init__(verify=context, limits=limits, trust_env=False)
        self.ssl_context = context
        self.backend = HealthCheckedBackend()
        if hasattr(self, "_pool"):  # see the module docstring
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=self.backend,
            )
