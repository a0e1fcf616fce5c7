"""The HTTP transport (`reconciler.net.transport`: httpx's, its pool on a backend with a cheaper
health check) against real servers on loopback: plain HTTP and TLS (certificates from a
throwaway CA made by `trustme`), keep-alive reuse, a server closing an idle connection
(what the health check is for), large bodies both ways, broken and refused connections,
timeouts and cancellation. The backend counts the connections it opens, so a test can tell
requests really go through it and not through httpx's default pool."""

from __future__ import annotations

import asyncio
import gc
import http.server
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import trustme
from waiting import until_async

from reconciler.net.http import HttpApi
from reconciler.net.transport import Transport

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)
BIG = 3_000_017  # more than the socket buffers hold


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    # /slow: arrived is set when it comes in, answered once its answer is out; it answers
    # when released or after 2 s (a test replaces the events to watch them)
    slow_arrived, slow_release, slow_answered = (threading.Event() for _ in range(3))

    def do_GET(self) -> None:
        if self.path.startswith("/big"):
            body = bytes(i % 251 for i in range(BIG))
        elif self.path.startswith("/slow"):
            self.slow_arrived.set()
            self.slow_release.wait(2)
            self._send(b"late")
            self.slow_answered.set()
            return
        else:
            body = b'{"path": "%s"}' % self.path.encode()
        self._send(body)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        received = bytearray()
        while len(received) < length:
            time.sleep(0.001)  # a slow reader: the client's writes must wait for it
            received += self.rfile.read(min(65536, length - len(received)))
        self._send(b"%d %d" % (len(received), sum(received) % 1_000_003))

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]
        # else: a client that went away (the cancelled and refused requests): expected


@contextmanager
def server(tls: ssl.SSLContext | None = None) -> Iterator[int]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def server_side(conn: socket.socket, server_tls: ssl.SSLContext | None) -> socket.socket:
    """The accepted connection as the server speaks on it: over TLS when `server_tls`."""
    return conn if server_tls is None else server_tls.wrap_socket(conn, server_side=True)


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def run(work: Callable[[], object]) -> object:
    return asyncio.run(work())  # type: ignore[arg-type]


def test_plain_http_reuses_one_connection() -> None:
    transport = Transport(limits=LIMITS)

    async def work() -> list[str]:
        async with httpx.AsyncClient(transport=transport) as client:
            return [(await client.get(f"http://127.0.0.1:{port}/{i}")).text for i in range(5)]

    with server() as port:
        texts = run(work)
    assert texts == [f'{{"path": "/{i}"}}' for i in range(5)]
    assert transport.connections == 1  # keep-alive: one connection for all five


def test_http_api_sends_through_the_health_checked_backend() -> None:
    async def work(port: int) -> tuple[object, int]:
        async with HttpApi(f"http://127.0.0.1:{port}", headers={}, secrets=()) as api:
            answer = await api.request("GET", "/x")
            return answer.json(), api._transport.connections  # type: ignore[attr-defined]

    with server() as port:
        data, connections = asyncio.run(work(port))
    assert data == {"path": "/x"}
    assert connections == 1


def test_tls_with_a_trusted_certificate(ca: trustme.CA) -> None:
    transport = Transport(limits=LIMITS, ssl_context=client_context(ca))

    async def work(port: int) -> tuple[str, str | None, int]:
        async with httpx.AsyncClient(transport=transport) as client:
            first = await client.get(f"https://localhost:{port}/tls")
            again = await client.get(f"https://localhost:{port}/tls")
            stream = first.extensions["network_stream"]
            version = stream.get_extra_info("ssl_object").version()
            return first.text + again.text, version, len(first.content)

    with server(tls_server_context(ca, "localhost")) as port:
        text, version, _ = asyncio.run(work(port))
    assert text == '{"path": "/tls"}' * 2
    assert version is not None and version.startswith("TLS")
    assert transport.connections == 1


@pytest.mark.parametrize(
    ("issuer", "name"),
    [("another CA", "localhost"), ("the trusted CA", "api.example.com")],
    ids=["untrusted-ca", "other-host"],
)
def test_tls_refuses_a_certificate_it_must_not_trust(
    ca: trustme.CA, issuer: str, name: str
) -> None:
    """A certificate from a CA the client does not trust, or one for another host."""
    server_ca = trustme.CA() if issuer == "another CA" else ca
    transport = Transport(limits=LIMITS, ssl_context=client_context(ca))

    async def work(port: int) -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(f"https://localhost:{port}/")

    with (
        server(tls_server_context(server_ca, name)) as port,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        asyncio.run(work(port))


def test_default_context_verifies_certificates() -> None:
    context = Transport(limits=LIMITS).ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    # Built once per process (loading the CA bundle takes ~40 ms), shared by both clients.
    assert Transport(limits=LIMITS).ssl_context is context


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_large_bodies_both_ways(ca: trustme.CA, tls: bool) -> None:
    """Bodies larger than the socket buffers, read from a fast writer and written to a
    slow reader, arrive whole."""
    transport = Transport(limits=LIMITS, ssl_context=client_context(ca) if tls else None)
    upload = bytes((i * 7) % 256 for i in range(2_000_000))
    scheme = "https" if tls else "http"

    async def work(port: int) -> tuple[bytes, str]:
        async with httpx.AsyncClient(transport=transport) as client:
            big = await client.get(f"{scheme}://localhost:{port}/big")
            echoed = await client.post(f"{scheme}://localhost:{port}/up", content=upload)
            return big.content, echoed.text

    with server(tls_server_context(ca, "localhost") if tls else None) as port:
        big, echoed = asyncio.run(work(port))
    assert big == bytes(i % 251 for i in range(BIG))
    assert echoed == f"{len(upload)} {sum(upload) % 1_000_003}"


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    """Accepts connections; `answer(conn)` handles each (TLS wrapping, if any, is its
    job: unlike test_http_limits.raw_server, nothing is read first), then it is closed."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_handle, args=(answer, conn), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _handle(answer: Callable[[socket.socket], None], conn: socket.socket) -> None:
    try:
        answer(conn)
    except OSError:
        pass
    finally:
        conn.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_connection_the_server_closed_while_idle_is_not_reused(ca: trustme.CA, tls: bool) -> None:
    """The server closes a keep-alive connection after one answer (no `Connection: close`):
    the pool must see the idle connection is dead and open another, not fail the request.
    Over TLS too (both APIs are HTTPS): there the check polls the socket under the TLS
    stream, which the server's FIN makes readable."""
    server_tls = tls_server_context(ca, "localhost") if tls else None

    closed = threading.Event()

    def answer(conn: socket.socket) -> None:
        with server_side(conn, server_tls) as conn:
            conn.recv(65536)
            conn.sendall(OK)
        closed.set()

    transport = Transport(limits=LIMITS, ssl_context=client_context(ca) if tls else None)
    scheme = "https" if tls else "http"

    async def work(port: int) -> list[str]:
        async with httpx.AsyncClient(transport=transport) as client:
            first = await client.get(f"{scheme}://localhost:{port}/")
            await until_async(closed.is_set, "the server closing the connection")
            second = await client.get(f"{scheme}://localhost:{port}/")
            return [first.text, second.text]

    with raw_server(answer) as port:
        assert asyncio.run(work(port)) == ["ok", "ok"]
    assert transport.connections == 2


def test_a_body_cut_short_is_an_error_not_a_short_answer() -> None:
    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")

    async def work(port: int) -> None:
        async with httpx.AsyncClient(transport=Transport(limits=LIMITS)) as client:
            await client.get(f"http://127.0.0.1:{port}/")

    with (
        raw_server(answer) as port,
        pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|closed"),
    ):
        asyncio.run(work(port))


def test_a_reset_connection_is_a_read_error() -> None:
    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    async def work(port: int) -> None:
        async with httpx.AsyncClient(transport=Transport(limits=LIMITS)) as client:
            await client.get(f"http://127.0.0.1:{port}/")

    with raw_server(answer) as port, pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        asyncio.run(work(port))


def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again below: nothing listens there

    async def work() -> None:
        async with httpx.AsyncClient(transport=Transport(limits=LIMITS)) as client:
            await client.get(f"http://127.0.0.1:{port}/")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(work())


def test_read_timeout_then_the_pool_still_works() -> None:
    transport = Transport(limits=LIMITS)

    async def work(port: int) -> str:
        async with httpx.AsyncClient(transport=transport, timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://127.0.0.1:{port}/slow")
            return (await client.get(f"http://127.0.0.1:{port}/after")).text

    with server() as port:
        assert asyncio.run(work(port)) == '{"path": "/after"}'


def test_a_cancelled_request_leaves_the_pool_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = Transport(limits=httpx.Limits(max_connections=1))
    arrived, answered = threading.Event(), threading.Event()
    monkeypatch.setattr(_Handler, "slow_arrived", arrived)
    monkeypatch.setattr(_Handler, "slow_answered", answered)
    monkeypatch.setattr(_Handler, "slow_release", threading.Event())  # held the full 2 s

    async def work(port: int) -> tuple[str, bool]:
        async with httpx.AsyncClient(transport=transport) as client:
            task = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/slow"))
            await until_async(arrived.is_set, "the slow request at the server")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            text = (await client.get(f"http://127.0.0.1:{port}/next")).text
            return text, answered.is_set()

    with server() as port:
        # the one connection's slot was free again before the cancelled answer came
        assert asyncio.run(work(port)) == ('{"path": "/next"}', False)


def test_answers_leave_nothing_for_the_cycle_collector() -> None:
    """httpx ties a streamed response and its stream into a reference cycle; an answer that
    kept it would leave ~40 objects per request for the cycle collector, whose pauses stall
    every request in flight (issue 29). Each answer is freed as soon as it is dropped."""

    async def work(port: int) -> int:
        async with HttpApi(f"http://127.0.0.1:{port}", headers={}, secrets=()) as api:
            for _ in range(5):  # the pool's connection and first-use caches
                (await api.request("GET", "/warm")).json()
            gc.collect()
            gc.disable()
            try:
                for i in range(50):
                    assert (await api.request("GET", f"/x{i}")).json() == {"path": f"/x{i}"}
                return gc.collect()
            finally:
                gc.enable()

    with server() as port:
        unreachable = asyncio.run(work(port))
    assert unreachable < 50  # under one object per request (about 2,000 with the cycle)


def test_an_idle_connection_past_its_keep_alive_expiry_is_not_reused() -> None:
    transport = Transport(limits=httpx.Limits(max_connections=2, keepalive_expiry=0.2))

    async def work(port: int) -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(f"http://127.0.0.1:{port}/a")
            await client.get(f"http://127.0.0.1:{port}/b")  # within the expiry: reused
            assert transport.connections == 1
            await asyncio.sleep(0.3)
            await client.get(f"http://127.0.0.1:{port}/c")

    with server() as port:
        asyncio.run(work(port))
    assert transport.connections == 2


def test_idle_connections_beyond_the_keep_alive_limit_are_closed() -> None:
    transport = Transport(limits=httpx.Limits(max_connections=4, max_keepalive_connections=1))

    async def work(port: int) -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            # four at once need four connections; only one of them is kept afterwards
            urls = [f"http://127.0.0.1:{port}/slow{i}" for i in range(4)]
            await asyncio.gather(*(client.get(url) for url in urls))
            assert transport.connections == 4
            await client.get(f"http://127.0.0.1:{port}/x")
            await client.get(f"http://127.0.0.1:{port}/y")

    released = threading.Event()
    released.set()  # the /slow answers come at once
    with server() as port:
        _Handler.slow_release, saved = released, _Handler.slow_release
        try:
            asyncio.run(work(port))
        finally:
            _Handler.slow_release = saved
    assert transport.connections == 4  # /x and /y went over the one connection kept


def test_an_answer_with_connection_close_is_not_reused() -> None:
    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")

    transport = Transport(limits=LIMITS)

    async def work(port: int) -> list[str]:
        async with httpx.AsyncClient(transport=transport) as client:
            return [(await client.get(f"http://127.0.0.1:{port}/")).text for _ in range(2)]

    with raw_server(answer) as port:
        assert asyncio.run(work(port)) == ["ok", "ok"]
    assert transport.connections == 2


def test_no_free_connection_within_the_pool_timeout_is_a_pool_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transport = Transport(limits=httpx.Limits(max_connections=1))
    arrived = threading.Event()
    monkeypatch.setattr(_Handler, "slow_arrived", arrived)
    monkeypatch.setattr(_Handler, "slow_release", threading.Event())  # held the full 2 s

    async def work(port: int) -> None:
        timeout = httpx.Timeout(5.0, pool=0.2)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            slow = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/slow"))
            await until_async(arrived.is_set, "the slow request at the server")
            with pytest.raises(httpx.PoolTimeout):
                await client.get(f"http://127.0.0.1:{port}/next")
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow

    with server() as port:
        asyncio.run(work(port))


def test_a_transport_used_again_under_a_new_event_loop_starts_afresh() -> None:
    """The engine reads and writes in separate `asyncio.run` calls: connections opened
    under the first loop are not reused (nor awaited) under the second."""
    transport = Transport(limits=LIMITS)
    client = httpx.AsyncClient(transport=transport)  # not closed between the two loops

    async def one(port: int) -> str:
        return (await client.get(f"http://127.0.0.1:{port}/n")).text

    with server() as port:
        assert asyncio.run(one(port)) == '{"path": "/n"}'
        assert transport.connections == 1
        assert asyncio.run(one(port)) == '{"path": "/n"}'
        asyncio.run(client.aclose())
    assert transport.connections == 2


def test_an_unsupported_scheme_is_refused_before_connecting() -> None:
    async def work() -> None:
        async with httpx.AsyncClient(transport=Transport(limits=LIMITS)) as client:
            await client.get("ftp://127.0.0.1/x")

    with pytest.raises(httpx.UnsupportedProtocol):
        asyncio.run(work())
