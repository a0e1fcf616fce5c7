"""One HTTP/1.1 connection: h11's state machine over an asyncio protocol.

`Wire` is the socket as asyncio hands it over (plain or TLS): bytes in a queue, with
backpressure both ways, and whether the peer has gone. It also answers the pool's health
check: an idle connection that received anything (data or EOF) is done, whether the event
loop has handed it over already or it is still waiting on the socket.

`Connection` sends one request at a time through h11 and maps every failure onto httpx's
exception classes, the way httpcore does, so callers see what httpx's own transport raises:
`ConnectError`/`ConnectTimeout` when nothing was sent, `WriteError`/`ReadError`/
`RemoteProtocolError`/`ReadTimeout` once it may have been.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import ssl
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import h11
import httpx

HIGH_WATER = 256 * 1024  # bytes read ahead of the reader before the socket is paused
MAX_HEAD = 100 * 1024  # the largest response head h11 may buffer (httpcore's figure)
READ_SIZE = 65536


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


class Wire(asyncio.Protocol):
    """The byte stream of one connection, fed by the event loop."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self.ended = False  # EOF or connection lost: nothing more will arrive
        self.error: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # HTTP/1.1 has no use for a half-closed connection: close it

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    @property
    def dirty(self) -> bool:
        """Anything arrived (or the peer left): an idle connection like this is done."""
        return self.ended or bool(self._chunks)

    def take(self) -> bytes | None:
        """The next bytes if some are here already (b"" once the peer has closed)."""
        if self._chunks or (self.ended and self.error is None):
            return self._pop()
        return None

    async def read(self) -> bytes:
        """The next bytes; b"" once the peer has closed."""
        while not self._chunks:
            if self.ended:
                if self.error is not None:
                    raise self.error
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._pop()

    def _pop(self) -> bytes:
        if not self._chunks:
            return b""
        data = self._chunks.popleft()
        self._size -= len(data)
        if self._paused and self._size <= HIGH_WATER // 4 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Hands `data` to the socket; waits (up to `timeout`) only while the socket's
        buffer is full, the one time a write can take time."""
        if self.ended or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        self.transport.write(data)
        if self._drained is not None:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._drained)
            if self.ended:
                raise self.error or ConnectionResetError("the connection is closed")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # nothing half-sent is worth flushing on a dropped request

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


@contextlib.contextmanager
def _mapped(
    kind: type[httpx.TransportError], timeout: type[httpx.TransportError]
) -> Iterator[None]:
    """OS and protocol failures as httpx's exceptions (each created from the bare message:
    nothing of the request, whose headers hold credentials, goes into them)."""
    try:
        yield
    except TimeoutError:
        raise timeout("timed out") from None
    except h11.RemoteProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc)) from None
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc)) from None
    except OSError as exc:  # ssl.SSLError included
        raise kind(str(exc) or type(exc).__name__) from None


async def open_wire(
    host: str, port: int, ssl_context: ssl.SSLContext | None, timeout: float | None
) -> tuple[Wire, asyncio.Transport]:
    """A connected `Wire` (TLS handshake done when `ssl_context` is given)."""
    loop = asyncio.get_running_loop()
    with _mapped(httpx.ConnectError, httpx.ConnectTimeout):
        async with asyncio.timeout(timeout):
            transport, wire = await loop.create_connection(
                Wire, host, port, ssl=ssl_context, server_hostname=host if ssl_context else None
            )
    assert isinstance(transport, asyncio.Transport)
    return wire, transport


class Connection:
    """One keep-alive HTTP/1.1 connection to one origin, one request at a time."""

    def __init__(self, wire: Wire, transport: asyncio.Transport) -> None:
        self.wire = wire
        self.transport = transport
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.idle_since = 0.0

    @property
    def reusable(self) -> bool:
        """Idle, and the server has neither sent anything nor gone since its last answer:
        neither as the event loop has seen it, nor waiting on the socket for the loop's
        next turn (a close that came just now)."""
        if self._h11.our_state is not h11.IDLE or self.wire.dirty:
            return False
        return not _readable(self.transport.get_extra_info("socket"))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The socket's details (`ssl_object`, `peername`, ...): httpx's network_stream."""
        return self.transport.get_extra_info(name, default)

    async def send(self, request: httpx.Request, timeouts: dict[str, float | None]) -> h11.Response:
        """Writes the request and reads the answer's head."""
        # h11 validates the head as it is built; its error quotes an illegal header value
        # (a credential), so it must come out mapped, to be scrubbed like any other.
        timeout = timeouts.get("write")
        with _mapped(httpx.WriteError, httpx.WriteTimeout):
            head = h11.Request(
                method=request.method.encode(),
                target=request.url.raw_path,
                headers=list(request.headers.raw),
            )
            out = self._h11.send(head) or b""
            async for chunk in request.stream:  # type: ignore[union-attr]
                out += self._h11.send(h11.Data(data=chunk)) or b""
                if len(out) >= READ_SIZE:
                    await self.wire.write(out, timeout)
                    out = b""
            out += self._h11.send(h11.EndOfMessage()) or b""
            await self.wire.write(out, timeout)
        while True:
            event = await self._next_event(timeouts.get("read"))
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):
                unexpected = type(event).__name__
                raise httpx.RemoteProtocolError(f"unexpected {unexpected} before the answer")

    async def body(self, timeout: float | None) -> AsyncIterator[bytes]:
        """The answer's body as it arrives."""
        while True:
            event = await self._next_event(timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__} in the body")

    def finish(self) -> bool:
        """After the answer was read (or dropped): ready for the next request?"""
        h = self._h11
        if h.our_state is h11.DONE and h.their_state is h11.DONE:
            with contextlib.suppress(h11.LocalProtocolError):
                h.start_next_cycle()
                # Bytes after the answer (a body longer than its Content-Length, a body on
                # a 204, garbage) wait in h11's buffer: the next request would take them
                # for its own answer.
                return not self.wire.dirty and not h.trailing_data[0]
        return False

    def close(self) -> None:
        self.wire.close()

    async def _next_event(self, timeout: float | None) -> Any:
        with _mapped(httpx.ReadError, httpx.ReadTimeout):
            while True:
                event = self._h11.next_event()
                if event is not h11.NEED_DATA:
                    return event
                data = self.wire.take()
                if data is None:  # a timer only when there is something to wait for
                    async with asyncio.timeout(timeout):
                        data = await self.wire.read()
                if not data and self._h11.their_state is h11.SEND_RESPONSE:
                    # httpcore's words: h11's own ("can't handle event type ConnectionClosed
                    # when role=SERVER ...") would reach the user's error message.
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    )
                # b"" tells h11 the peer closed: mid-body, that is its "incomplete" error.
                self._h11.receive_data(data)
