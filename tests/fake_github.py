"""A fake GitHub REST API (issue comments only) on 127.0.0.1, for the PR-comment tests.

It behaves like GitHub where our client depends on it: bearer-token auth (401 otherwise),
`per_page`/`page` pagination capped at `max_per_page` with a `Link: <...>; rel="next"`
header carrying absolute URLs, 201 on create, 200 on edit, 404 for unknown comments.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_LIST = re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$")
_ONE = re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$")


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    authorization: str
    body: Any


@dataclass
class FakeGitHub:
    token: str = "ghs_fake_token_0123456789"
    repo: str = "msp/billing-config"
    max_per_page: int = 100
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before real ones
    link_base: str | None = None  # where Link headers point (default: this server)
    _next_id: int = 1000

    def add_comment(self, number: int, body: str, user: str = "someone") -> dict[str, Any]:
        self._next_id += 1
        comment = {
            "id": self._next_id,
            "body": body,
            "user": {"login": user},
            "html_url": f"https://github.example/{self.repo}/pull/{number}#c{self._next_id}",
        }
        self.comments.setdefault(number, []).append(comment)
        return comment

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method]

    # --- server ------------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                auth = self.headers.get("Authorization", "")
                fake.requests.append(Recorded(self.command, parts.path, parts.query, auth, body))
                if fake.fail_next:
                    self._send(fake.fail_next.pop(0), {"message": "Server Error"})
                    return
                if auth != f"Bearer {fake.token}":
                    self._send(401, {"message": "Bad credentials"})
                    return
                status, payload, headers = fake.route(self.command, parts.path, parts.query, body)
                self._send(status, payload, headers)

            do_GET = do_POST = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(
        self, method: str, path: str, query: str, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if m := _LIST.match(path):
            if m.group(1) != self.repo:
                return 404, {"message": "Not Found"}, {}
            number = int(m.group(2))
            if method == "GET":
                return self._page(path, number, parse_qs(query))
            if method == "POST":
                if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                    return 422, {"message": "Validation Failed"}, {}
                return 201, self.add_comment(number, body["body"], "github-actions[bot]"), {}
        if (m := _ONE.match(path)) and method == "PATCH" and m.group(1) == self.repo:
            for comments in self.comments.values():
                for comment in comments:
                    if comment["id"] == int(m.group(2)):
                        comment["body"] = body["body"]
                        return 200, comment, {}
        return 404, {"message": "Not Found"}, {}

    def _page(
        self, path: str, number: int, params: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = min(int(params.get("per_page", ["30"])[0]), self.max_per_page)
        page = int(params.get("page", ["1"])[0])
        comments = self.comments.get(number, [])
        chunk = comments[(page - 1) * per_page : page * per_page]
        headers = {}
        base = self.link_base or self.url
        if page * per_page < len(comments):
            headers["Link"] = (
                f'<{base}{path}?per_page={per_page}&page={page + 1}>; rel="next", '
                f"<{base}{path}?per_page={per_page}&page={-(-len(comments) // per_page)}>; "
                'rel="last"'
            )
        return 200, chunk, headers
