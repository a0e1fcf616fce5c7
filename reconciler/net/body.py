"""An answer's body: read up to the size cap (`read_capped`, decoded, refused with `TooLarge`
as soon as it is larger), and the streamed response given back as an ordinary one with that
body (`with_body`)."""

from __future__ import annotations

import httpx


class TooLarge(Exception):
    """The answer is larger than the size cap."""


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """The decoded body, refused (`TooLarge`) as soon as it is declared or grows larger
    than the cap: decoded, so a small compressed answer cannot unpack into gigabytes."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise TooLarge
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > cap:
            raise TooLarge
    return bytes(body)


SPENT = httpx.ByteStream(b"")


def with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """`response` (streamed, closed) as `send` without `stream=True` would have returned it:
    its body read. httpx has no public way to give a streamed response the body read from
    it, so this is a new response with the same status, headers, request and extensions.
    The body is decoded already: Content-Encoding goes, or `read` would decode it again, and
    a Content-Length then says the decoded length, the length of what is handed on."""
    headers = response.headers.copy()
    if headers.pop("Content-Encoding", None) is not None and "Content-Length" in headers:
        headers["Content-Length"] = str(len(body))
    answer = httpx.Response(
        response.status_code,
        headers=headers,
        stream=httpx.ByteStream(body),
        request=response.request,
        extensions=response.extensions,
    )
    answer.read()
    return answer
