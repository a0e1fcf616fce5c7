"""The transport (`reconciler.net.transport`) against servers that misbehave on purpose, raw
sockets on loopback: how each failure is classified for the retry policy (a POST that may
have reached the server must never be sent again), what its message says, and that nothing
a server sends beyond its answer is taken for the next request's answer."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable

import httpx
import pytest
import trustme
from test_transport import client_context, raw_server, server_side, tls_server_context

from reconciler.net.errors import ApiError, OutcomeUnknown
from reconciler.net.http import HttpApi
from reconciler.net.settings import HttpSettings
from reconciler.net.transport import Transport

LIMITS = httpx.Limits(max_connections=1)
REAL = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"
FAKE = b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nfake"
RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends a RST


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def keep_alive(first: bytes) -> Callable[[socket.socket], None]:
    """Answers every request it gets: the very first with `first`, all others `REAL`."""
    replies = [first]

    def answer(conn: socket.socket) -> None:
        while conn.recv(65536):
            conn.sendall(replies.pop() if replies else REAL)

    return answer


@pytest.mark.parametrize(
    "first",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + FAKE,
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n" + FAKE,
    ],
    ids=["body-longer-than-content-length", "body-after-a-204"],
)
def test_bytes_after_an_answer_are_never_taken_for_the_next_answer(first: bytes) -> None:
    """Whatever came after the first answer (in the same packet, so h11 has it buffered
    already) is not the POST's answer: the POST goes over a new connection and gets the
    server's real answer, not a 201 the server sent before the POST existed."""
    transport = Transport(limits=LIMITS)

    async def work(port: int) -> tuple[int, str]:
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(f"http://127.0.0.1:{port}/first")
            answer = await client.post(f"http://127.0.0.1:{port}/additions", content=b"{}")
            return answer.status_code, answer.text

    with raw_server(keep_alive(first)) as port:
        assert asyncio.run(work(port)) == (200, "real")
    assert transport.connections == 2


def test_an_illegal_header_value_is_an_api_error_that_never_quotes_it() -> None:
    """h11 refuses the header as it builds the request head, quoting the value. That error
    must come out as httpx's, so `HttpApi` scrubs it like any other (the environment's
    credentials are checked beforehand; a client built in code is not)."""
    secret = "s3cret-token"

    async def work(port: int) -> None:
        settings = HttpSettings(max_retries=0)
        headers = {"Authorization": f"Bearer {secret} "}  # the trailing space is illegal
        async with HttpApi(
            f"http://127.0.0.1:{port}", headers=headers, secrets=(secret,), http=settings
        ) as api:
            await api.request("GET", "/x")

    with raw_server(keep_alive(REAL)) as port, pytest.raises(ApiError) as caught:
        asyncio.run(work(port))
    assert "Illegal header value" in str(caught.value)
    chain: BaseException | None = caught.value
    while chain is not None:  # nothing in the exception or what it was raised from
        assert secret not in str(chain)
        chain = chain.__cause__ or chain.__context__


def close_before_reading(conn: socket.socket) -> None:
    pass  # closed as soon as accepted: the request may be in the server's buffers


def reset_mid_request_body(conn: socket.socket) -> None:
    conn.recv(1024)  # the head and the start of a body far larger
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)


def close_after_reading(conn: socket.socket) -> None:
    conn.recv(65536)


def reset_after_reading(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)


def close_mid_head(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Le")


def close_after_head(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\n")


def close_mid_body(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\n01234")


def close_before_end_of_chunks(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")


@pytest.mark.parametrize(
    "answer",
    [
        close_before_reading,
        reset_mid_request_body,
        close_after_reading,
        reset_after_reading,
        close_mid_head,
        close_after_head,
        close_mid_body,
        close_before_end_of_chunks,
    ],
)
def test_a_post_that_reached_the_server_is_never_sent_again(
    answer: Callable[[socket.socket], None],
) -> None:
    """Whenever the server dropped the connection, the POST's outcome is unknown (the
    caller re-reads before any resend): no error of the transport may look like "nothing
    was sent", which would be retried, a possible duplicate addition."""
    connections: list[socket.socket] = []

    def counted(conn: socket.socket) -> None:
        connections.append(conn)
        answer(conn)

    async def work(port: int) -> None:
        # A short timeout: a write left waiting for a drain that never comes ends in it.
        settings = HttpSettings(backoff_base=0.01, timeout=5)
        async with HttpApi(
            f"http://127.0.0.1:{port}", headers={}, secrets=(), http=settings
        ) as api:
            # `reset_mid_request_body`: a body more than the socket buffers hold
            size = 4_000_000 if answer is reset_mid_request_body else 10
            body = {"quantity": 1, "notes": "x" * size}
            await api.request("POST", "/agreements/1/additions", json_body=body)

    with raw_server(counted) as port, pytest.raises(OutcomeUnknown) as caught:
        asyncio.run(work(port))
    assert len(connections) == 1
    assert "after the request was sent" in str(caught.value)
    assert "timed out" not in str(caught.value)  # seen as it happened, not waited out


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_server_closing_without_an_answer_is_named_so(ca: trustme.CA, tls: bool) -> None:
    """The message says what happened in httpcore's words, not h11's state machine's."""
    server_tls = tls_server_context(ca, "localhost") if tls else None
    read = threading.Event()

    def answer(conn: socket.socket) -> None:
        with server_side(conn, server_tls) as conn:
            conn.recv(65536)
        read.set()

    transport = Transport(limits=LIMITS, ssl_context=client_context(ca) if tls else None)
    scheme = "https" if tls else "http"

    async def work(port: int) -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await client.post(f"{scheme}://localhost:{port}/", content=b"{}")

    with (
        raw_server(answer) as port,
        pytest.raises(httpx.RemoteProtocolError, match=r"^Server disconnected without sending"),
    ):
        asyncio.run(work(port))
    assert read.is_set()


def test_a_tls_handshake_cut_off_is_a_connect_error(ca: trustme.CA) -> None:
    """Nothing of the request was sent: a connect error, which may be retried for a POST."""

    def answer(conn: socket.socket) -> None:
        conn.recv(16)  # the start of the ClientHello
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)

    async def work(port: int) -> None:
        transport = Transport(limits=LIMITS, ssl_context=client_context(ca))
        async with httpx.AsyncClient(transport=transport) as client:
            await client.post(f"https://localhost:{port}/", content=b"{}")

    with raw_server(answer) as port, pytest.raises(httpx.ConnectError):
        asyncio.run(work(port))


@pytest.mark.parametrize(
    ("names", "verified"), [(("127.0.0.1",), True), (("127.0.0.2",), False)], ids=["same", "other"]
)
def test_tls_to_an_ip_address_checks_the_certificate_names_it(
    ca: trustme.CA, names: tuple[str, ...], verified: bool
) -> None:
    server_tls = tls_server_context(ca, *names)

    def answer(conn: socket.socket) -> None:
        with server_tls.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(REAL)

    async def work(port: int) -> str:
        transport = Transport(limits=LIMITS, ssl_context=client_context(ca))
        async with httpx.AsyncClient(transport=transport) as client:
            return (await client.get(f"https://127.0.0.1:{port}/")).text

    with raw_server(answer) as port:
        if verified:
            assert asyncio.run(work(port)) == "real"
        else:
            with pytest.raises(httpx.ConnectError, match="IP address mismatch"):
                asyncio.run(work(port))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_keep_alive_connection_dropped_as_the_next_request_arrives(method: str) -> None:
    """The server answers once, then closes the connection when the next request comes
    (an idle timeout racing the request: the health check saw nothing yet). A GET is sent
    again over a new connection; a POST's outcome is unknown, and it is not resent."""
    requests: list[bytes] = []

    def answer(conn: socket.socket) -> None:
        while data := conn.recv(65536):
            requests.append(data.split(b" ", 1)[0])
            if len(requests) == 2:
                return  # the second request: closed unanswered
            conn.sendall(REAL)

    async def work(port: int) -> str:
        settings = HttpSettings(backoff_base=0.01)
        url = f"http://127.0.0.1:{port}"
        async with HttpApi(url, headers={}, secrets=(), http=settings) as api:
            await api.request("GET", "/first")
            json_body = {"quantity": 1} if method == "POST" else None
            return (await api.request(method, "/next", json_body=json_body)).text

    with raw_server(answer) as port:
        if method == "GET":
            assert asyncio.run(work(port)) == "real"
            assert requests == [b"GET", b"GET", b"GET"]
        else:
            with pytest.raises(OutcomeUnknown):
                asyncio.run(work(port))
            assert requests == [b"GET", b"POST"]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_an_international_host_name_is_the_one_httpx_encodes(
    ca: trustme.CA, tls: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`faß.localhost` is `xn--fa-hia.localhost` for httpx (IDNA 2008), but `fass.localhost`
    by Python's own codec (IDNA 2003): a different host, whose certificate would be checked
    for that other name. The resolver knows only httpx's name (loopback)."""
    real = socket.getaddrinfo

    def resolve(host: str | bytes | None, *args: object, **kwargs: object) -> object:
        if host not in ("xn--fa-hia.localhost", b"xn--fa-hia.localhost"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real("127.0.0.1", *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    server_tls = tls_server_context(ca, "xn--fa-hia.localhost") if tls else None

    def answer(conn: socket.socket) -> None:
        with server_side(conn, server_tls) as conn:
            conn.recv(65536)
            conn.sendall(REAL)

    transport = Transport(limits=LIMITS, ssl_context=client_context(ca) if tls else None)
    scheme = "https" if tls else "http"

    async def work(port: int) -> str:
        async with httpx.AsyncClient(transport=transport) as client:
            return (await client.get(f"{scheme}://faß.localhost:{port}/")).text

    with raw_server(answer) as port:
        assert asyncio.run(work(port)) == "real"
