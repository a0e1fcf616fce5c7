"""Requests and responses as the simulated APIs see them, independent of the HTTP server."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    wrote: bool = False  # a committed write: counted, reported to on_write, lost_write-able


def json_response(
    status: int, obj: Any, headers: list[tuple[str, str]] | None = None, *, wrote: bool = False
) -> Response:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(
        status,
        body,
        [("Content-Type", "application/json; charset=utf-8"), *(headers or [])],
        wrote=wrote,
    )


def cw_error(status: int, code: str, message: str, *errors: dict[str, str]) -> Response:
    """ConnectWise's error shape: {"code","message","errors":[{code,message,resource,field}]}."""
    body: dict[str, Any] = {"code": code, "message": message}
    if errors:
        body["errors"] = list(errors)
    return json_response(status, body)


def zt_error(status: int, code: str, message: str) -> Response:
    """ZeroTek's error shape: {"error":{"code","message"}}."""
    return json_response(status, {"error": {"code": code, "message": message}})


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query
    query: list[tuple[str, str]]  # decoded pairs, original order and spelling
    headers: Message
    body: bytes
    host: str  # the Host header, for absolute links

    def arg(self, name: str) -> str | None:
        """A query parameter, matched case-insensitively (ASP.NET binds that way); last wins."""
        found = None
        for key, value in self.query:
            if key.lower() == name.lower():
                found = value
        return found

    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = (
                base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None

    def bearer(self) -> str | None:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def json(self) -> tuple[Any, Response | None]:
        """The JSON body, or a ConnectWise-shaped 415/400 to return instead."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in ("application/json", "application/vnd.connectwise.com+json"):
            return None, cw_error(
                415,
                "UnsupportedMediaType",
                f"Content-Type must be application/json, not {ctype or 'none'}",
            )
        try:
            return json.loads(self.body.decode("utf-8")), None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return None, cw_error(
                400, "InvalidObject", f"The request body is not valid JSON: {exc}"
            )
