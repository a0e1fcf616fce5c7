"""The loopback HTTP server: one stdlib ThreadingHTTPServer serving both simulated APIs,
with injected latency and faults and per-kind request counters.

Faults are drawn per request (restricted to `methods` when given) from one seeded RNG:
- drop: the connection closes without a response, before anything is processed;
- error_500 / error_429: an error instead of processing (429 carries Retry-After; from
  ConnectWise it is an HTML page, as an edge rate limiter sends, not a JSON error);
- lost_write: a write is committed (and counted, and `on_write` called), then the
  connection closes without a response, so the client cannot know it happened.

A rate limit (`rate_limit` requests a minute, `set_rate_limit`) is a hidden token bucket
per API, checked before the faults: a request finding it empty is answered 429 with
`Retry-After` (whole seconds until the next token, at least 1) and counted in
`stats.faults["rate_limit"]`.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from reconciler.sandbox.connectwise import PREFIX as CW_PREFIX
from reconciler.sandbox.connectwise import ConnectWiseApi
from reconciler.sandbox.connectwise import classify as cw_classify
from reconciler.sandbox.faults import Faults, RateLimit, Stats
from reconciler.sandbox.fixtures import default_fixture
from reconciler.sandbox.records import Fixture
from reconciler.sandbox.state import World
from reconciler.sandbox.wire import Request, Response, cw_error, json_response, zt_error
from reconciler.sandbox.zerotek import PREFIX as ZT_PREFIX
from reconciler.sandbox.zerotek import ZeroTekApi
from reconciler.sandbox.zerotek import classify as zt_classify

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response has a Content-Length
    server_version = "ZeroTekSandbox/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections end eventually, as on real servers
    # an error page before the body is read goes out in two writes: with Nagle on, delayed
    # ACKs would add ~40 ms to it
    disable_nagle_algorithm = True
    server: _Server

    def parse_request(self) -> bool:
        # The request line is in: from here the answer takes the injected latency.
        self.arrived = time.monotonic()
        return super().parse_request()

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0 or "chunked" in (self.headers.get("Transfer-Encoding") or ""):
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._send(cw_error(411, "LengthRequired", "A valid Content-Length is required"))
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=unquote(parts.path),
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            host=self.headers.get("Host")
            or f"{self.server.sandbox.host}:{self.server.sandbox.port}",
        )
        sandbox = self.server.sandbox
        resp = sandbox._answer(req, len(self.path))
        # The whole answer is made before the latency is waited out, and goes out in one
        # write after it: the client sees the latency, not the sandbox's own CPU on top.
        data = None if resp is None else self._encoded(resp)
        sandbox._hold(self.arrived)
        if resp is None or data is None:
            self.close_connection = True  # the client sees the connection end, no response
            return
        self._send(resp, data)

    def _send(self, resp: Response, data: bytes | None = None) -> None:
        # counted before it goes out: a client that has read it finds it counted
        self.server.sandbox.stats._sent(len(resp.body))
        self.wfile.write(self._encoded(resp) if data is None else data)

    def _encoded(self, resp: Response) -> bytes:
        """Status line, headers (Server and Date as `send_response` adds them) and body."""
        reason = self.responses.get(resp.status, ("",))[0]
        lines = [
            f"{self.protocol_version} {resp.status} {reason}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            *(f"{name}: {value}" for name, value in resp.headers),
            f"Content-Length: {len(resp.body)}",
        ]
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("latin-1", "strict") + resp.body

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the sandbox logs requests itself, without headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of concurrent connects must not wait for SYN retries

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # skips HTTPServer's reverse-DNS lookup of the host
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-response are part of the job


class Sandbox(World):
    """ConnectWise PSA + ZeroTek usage API on one loopback port (see the package docstring).

    `fault_rate` R is split into 500s R/3, 429s R/3, drops R/6 and lost writes R/6;
    `configure_faults` sets each kind exactly."""

    company_id = "zerotek_demo"
    public_key = "SandboxPublicKey01"
    private_key = "SandboxPrivateKey01"
    client_id = "5a4db0c5-0000-4000-8000-000000000001"
    zerotek_token = "zt_sandbox_demo_token"

    def __init__(
        self,
        fixture: Fixture | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        fault_rate: float = 0,
        seed: int = 0,
        log: Callable[[str], None] | None = None,
        rate_limit: float | None = None,
    ) -> None:
        super().__init__(fixture if fixture is not None else default_fixture())
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.stats = Stats()
        # Every write request as received (method, path, raw body), in arrival order: tests
        # check what was really sent on the wire, e.g. the exact unitPrice of a POST.
        self.write_requests: list[tuple[str, str, bytes]] = []
        self.on_write: Callable[[int], None] | None = None
        # Replaces the answer to a request after it was processed (a proxy's login page in
        # answer to a committed POST, say): called with the request and the real response.
        self.on_response: Callable[[Request, Response], Response] | None = None
        self.log = log
        self.max_url_length = 8192  # bytes of request target, like common proxies' limit
        self._faults = Faults()
        self._limit = RateLimit()
        self._limit.configure(rate_limit)
        if fault_rate:
            self.configure_faults(
                error_500=fault_rate / 3,
                error_429=fault_rate / 3,
                drop=fault_rate / 6,
                lost_write=fault_rate / 6,
                seed=seed,
            )
        self._cw = ConnectWiseApi(
            self, lambda: (self.company_id, self.public_key, self.private_key, self.client_id)
        )
        self._zt = ZeroTekApi(self, lambda: self.zerotek_token)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Sandbox(http://{self.host}:{self.port}, running={self._server is not None})"

    # --- settings ----------------------------------------------------------------------

    def configure_faults(
        self,
        *,
        error_500: float = 0.0,
        error_429: float = 0.0,
        drop: float = 0.0,
        lost_write: float = 0.0,
        retry_after: int = 1,
        seed: int = 0,
        methods: set[str] | frozenset[str] | list[str] | None = None,
    ) -> None:
        """Per-request fault probabilities (they replace the previous configuration)."""
        self._faults.configure(
            error_500=error_500,
            error_429=error_429,
            drop=drop,
            lost_write=lost_write,
            retry_after=retry_after,
            seed=seed,
            methods=methods,
        )

    def set_rate_limit(self, per_minute: float | None, *, burst: float | None = None) -> None:
        """Requests a minute each API answers before 429 (None: unlimited); `burst`: the
        bucket's size (default one second's worth). May change while serving, as when
        another integration starts sharing the tenant's limit."""
        self._limit.configure(per_minute, burst=burst)

    @property
    def rate_limit(self) -> float | None:
        return self._limit.per_minute

    @property
    def auth_failure_status(self) -> int:
        """What ConnectWise answers to bad keys: 401, or 404 as some cloud servers do."""
        return self._cw.auth_failure_status

    @auth_failure_status.setter
    def auth_failure_status(self, status: int) -> None:
        self._cw.auth_failure_status = status

    @property
    def zerotek_page_sizes(self) -> tuple[int, int]:
        return self._zt.customers_page_size, self._zt.usage_page_size

    @zerotek_page_sizes.setter
    def zerotek_page_sizes(self, sizes: tuple[int, int]) -> None:
        self._zt.customers_page_size, self._zt.usage_page_size = sizes

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sandbox:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def cw_url(self) -> str:
        return self.base_url + CW_PREFIX

    @property
    def zerotek_url(self) -> str:
        return self.base_url + ZT_PREFIX

    def env(self) -> dict[str, str]:
        """The environment that points the reconciler at this sandbox (demo credentials)."""
        return {
            "CW_API_URL": self.cw_url,
            "CW_COMPANY_ID": self.company_id,
            "CW_PUBLIC_KEY": self.public_key,
            "CW_PRIVATE_KEY": self.private_key,
            "CW_CLIENT_ID": self.client_id,
            "ZEROTEK_API_URL": self.zerotek_url,
            "ZEROTEK_API_TOKEN": self.zerotek_token,
        }

    # --- one request -------------------------------------------------------------------

    def _dispatch(
        self, req: Request, target_length: int, arrived: float | None = None
    ) -> Response | None:
        """Process `req`, then answer `latency_ms` after it `arrived` (monotonic): the
        latency is the server's whole response time, its own processing included, as a
        real server's is. Sleeping the latency and then processing made every answer
        latency + the sandbox's CPU (under 8 threads and one GIL, ~1 ms and more), which
        the benchmarks then counted against the reconciler's lower bound."""
        arrived = time.monotonic() if arrived is None else arrived
        resp = self._answer(req, target_length)
        self._hold(arrived)
        return resp

    def _hold(self, arrived: float) -> None:
        """Wait until `latency_ms` after `arrived` (monotonic)."""
        if self.latency_ms > 0:
            time.sleep(max(0.0, arrived + self.latency_ms / 1000 - time.monotonic()))

    def _answer(self, req: Request, target_length: int) -> Response | None:
        is_zt = req.path == ZT_PREFIX or req.path.startswith(ZT_PREFIX + "/")
        kind = (zt_classify if is_zt else cw_classify)(req.method, req.path)
        self.stats._count(kind, len(req.body))
        if req.method != "GET":
            with self.lock:
                self.write_requests.append((req.method, req.path, req.body))
        wait = self._limit.take("zerotek" if is_zt else "connectwise")
        fault = "rate_limit" if wait is not None else self._faults.draw(req.method)
        resp: Response | None
        if wait is not None:
            self.stats._fault("rate_limit")
            resp = self._too_many(is_zt, max(1, math.ceil(wait)))
        elif fault == "drop":
            self.stats._fault("drop")
            resp = None
        elif fault == "500":
            self.stats._fault("500")
            resp = (
                zt_error(500, "internal_error", "injected fault")
                if is_zt
                else cw_error(500, "UnexpectedServerError", "An unexpected error occurred")
            )
        elif fault == "429":
            self.stats._fault("429")
            resp = self._too_many(is_zt, self._faults.retry_after)
        elif target_length > self.max_url_length:
            resp = cw_error(
                414,
                "UriTooLong",
                f"The request URL exceeds {self.max_url_length} bytes; shorten the conditions",
            )
        else:
            resp = (self._zt if is_zt else self._cw).handle(req)
            if resp.wrote:
                count = self.stats._write()
                if self.on_write is not None:
                    self.on_write(count)
                if fault == "lost_write":
                    self.stats._fault("lost_write")
                    resp = None
            if resp is not None and self.on_response is not None:
                resp = self.on_response(req, resp)
        if self.log is not None:
            query = f"?{'&'.join(f'{k}={v}' for k, v in req.query)}" if req.query else ""
            outcome = "dropped" if resp is None else str(resp.status)
            self.log(f"{req.method} {req.path}{query} -> {outcome}")
        return resp

    def _too_many(self, is_zt: bool, retry_after: int) -> Response:
        retry = [("Retry-After", str(retry_after))]
        if is_zt:
            resp = zt_error(429, "rate_limited", "too many requests")
            resp.headers += retry
            return resp
        page = (
            b"<html><head><title>429 Too Many Requests</title></head><body>"
            b"<h1>Too Many Requests</h1></body></html>"
        )
        return Response(429, page, [("Content-Type", "text/html"), *retry])


__all__ = ["Faults", "Sandbox", "Stats", "json_response"]
