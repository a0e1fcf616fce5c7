"""Every request has a total deadline and every answer a size cap (DESIGN 12.5), against
real misbehaving servers on loopback: a slow-loris trickling one byte at a time, one that
never answers, and ones answering far more than asked."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from reconciler.config.env import CWCredentials
from reconciler.connectwise.client import ApiError, ConnectWiseClient, OutcomeUnknown
from reconciler.net.http import HttpApi
from reconciler.net.settings import HttpSettings

CREDS = CWCredentials("acme", "PublicKey01", "PrivateKey01", "client-id-0001")


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that reads a request and hands the socket to `answer`."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            threading.Thread(target=_answer_then_close, args=(answer, conn), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v4_6_release/apis/3.0"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _answer_then_close(answer: Callable[[socket.socket], None], conn: socket.socket) -> None:
    try:
        answer(conn)
    except OSError:
        pass  # the client gave up on us: the point of the test
    finally:
        conn.close()


def slow_loris(conn: socket.socket) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    )
    for _ in range(400):
        conn.sendall(b" ")
        time.sleep(0.2)


def silent(conn: socket.socket) -> None:
    conn.settimeout(60)
    conn.recv(1)  # nothing comes: it returns when the client gives up and closes


def huge(declared: bool) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        size = 3 * 1024 * 1024
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if declared:
            conn.sendall(head + f"Content-Length: {size}\r\n\r\n".encode())
        else:
            conn.sendall(head + b"Connection: close\r\n\r\n")
        chunk = b"[" + b"0," * 32767 + b"0"
        for _ in range(size // len(chunk) + 1):
            conn.sendall(chunk)

    return answer


def gzipped(size: int) -> Callable[[socket.socket], None]:
    """A JSON list of `size` bytes, sent gzip-compressed (a few KB on the wire)."""

    def answer(conn: socket.socket) -> None:
        body = gzip.compress(b"[" + b"0," * ((size - 3) // 2) + b"0]")
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        conn.sendall(head.encode() + body)

    return answer


def call(url: str, method: str = "GET", **http: float) -> tuple[float, BaseException]:
    async def go() -> None:
        settings = HttpSettings(max_retries=0, **http)  # type: ignore[arg-type]
        async with ConnectWiseClient(url, CREDS, http=settings) as cw:
            if method == "POST":
                await cw.post("/finance/agreements/1/additions", {"quantity": 1})
            else:
                await cw.get("/company/companies")

    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        asyncio.run(go())
    return time.monotonic() - started, caught.value


@pytest.mark.parametrize("answer", [slow_loris, silent], ids=["slow-loris", "never-answers"])
def test_the_deadline_ends_a_request_from_connect_to_last_byte(answer) -> None:
    with raw_server(answer) as url:
        took, error = call(url, deadline=1.0)
    # Not a timing test: without the deadline, httpx's own 30 s per-read timeout (silent)
    # or the 80 s trickle (slow-loris) would end it; the message says which fired.
    assert took < 20, took
    assert "no complete answer within 1 s (the request deadline" in str(error)
    assert "GET /company/companies" in str(error)


def test_a_post_past_its_deadline_is_an_unknown_outcome() -> None:
    with raw_server(slow_loris) as url:
        _, error = call(url, "POST", deadline=1.0)
    assert isinstance(error, OutcomeUnknown)  # the caller re-reads before any resend


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_an_answer_over_the_size_cap_is_refused(declared: bool) -> None:
    with raw_server(huge(declared)) as url:
        _, error = call(url, max_response_bytes=1024 * 1024)
    assert "answer larger than 1 MB (the response size cap)" in str(error)


def test_a_compressed_answer_is_decoded_once() -> None:
    """The body handed on is the decoded one, and only decoded once (the response the
    client returns must not still say Content-Encoding: gzip)."""

    async def go(url: str) -> object:
        async with ConnectWiseClient(url, CREDS, http=HttpSettings(max_retries=0)) as cw:
            return await cw.get("/company/companies")

    with raw_server(gzipped(200_001)) as url:
        body = asyncio.run(go(url))
    assert body == [0] * 100_000


def test_a_decoded_answer_says_its_decoded_length() -> None:
    """The response handed on describes its body: no Content-Encoding, and a Content-Length
    that is the decoded body's (not the few KB of gzip that came on the wire)."""

    async def go(url: str) -> httpx.Response:
        async with HttpApi(url, headers={}, secrets=()) as api:
            return await api.request("GET", "/x")

    with raw_server(gzipped(200_001)) as url:
        answer = asyncio.run(go(url))
    assert "Content-Encoding" not in answer.headers
    assert answer.headers["Content-Length"] == str(len(answer.content)) == "200001"


def test_the_size_cap_counts_the_decoded_body() -> None:
    """A few KB of gzip that unpack to 3 MB are refused at a 1 MB cap, as they unpack."""
    with raw_server(gzipped(3 * 1024 * 1024)) as url:
        _, error = call(url, max_response_bytes=1024 * 1024)
    assert "answer larger than 1 MB (the response size cap)" in str(error)


def not_gzip(conn: socket.socket) -> None:
    """An answer that says gzip and is not: it cannot be decoded."""
    body = b"this is not gzip at all"
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    conn.sendall(head.encode() + body)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_answer_that_cannot_be_decoded_is_an_api_error_without_the_request(
    method: str,
) -> None:
    """Found by the transport review: httpx's DecodingError came out raw, carrying the
    request (whose headers hold the credentials); for a POST the outcome is unknown (the
    server answered, so it may have written)."""
    with raw_server(not_gzip) as url:
        _, error = call(url, method)
    assert "could not be decoded" in str(error)
    assert isinstance(error, OutcomeUnknown) == (method == "POST")
    assert error.__context__ is None and error.__cause__ is None
    assert CREDS.private_key not in repr(vars(error))
