"""respx routes for the clients' own HTTP pool (`reconciler.net.transport.Transport`).

respx patches httpcore by default, which the clients no longer go through; this mocker
patches the pool's `handle_async_request` instead, so `respx.mock(using=POOL)` routes
work as before. For transport faults no server produces on demand (a refused connection
for one request, a timeout after sending), nothing else.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from respx.mocks import AbstractRequestMocker

POOL = "reconciler-pool"


class PoolMocker(AbstractRequestMocker):
    name = POOL
    targets: ClassVar[list[str]] = ["reconciler.net.transport.Transport"]
    target_methods: ClassVar[list[str]] = ["handle_async_request"]

    @classmethod
    def to_httpx_request(cls, **kwargs: Any) -> httpx.Request:
        request: httpx.Request = kwargs["request"]
        return request

    @classmethod
    async def from_async_httpx_response(
        cls, httpx_response: httpx.Response, target: Any, **kwargs: Any
    ) -> httpx.Response:
        return httpx_response
