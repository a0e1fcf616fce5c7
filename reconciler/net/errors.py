"""What a failed API call reads as: `ApiError` (one readable line, the server's message
apart), `OutcomeUnknown` (a POST that may have been processed), the short cause of a transport
error, and server text made fit for a message (scrubbed, one line, cut).

Secrets: nothing here ever holds an httpx request (its headers carry the credentials); text
from servers and exceptions is scrubbed of the secrets before it is shown.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from reconciler.core.errors import ReconcileError
from reconciler.secure.scrub import shorten


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


def one_line(text: str, limit: int = 300, extra: Iterable[str] = ()) -> str:
    """Server or exception text for a message: scrubbed, then one line, then cut."""
    return shorten(text, limit, extra)


def describe(exc: httpx.TransportError, secrets: Iterable[str] = ()) -> str:
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
