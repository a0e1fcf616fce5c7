"""Post the plan as ONE pull-request comment, updated in place on every push (CI helper).

The comment is found by the hidden marker it starts with (`vocabulary.PLAN_MARKER`) AND by
its author being this job's own identity (`github-actions[bot]` for GITHUB_TOKEN), so a PR
carries a single, current plan instead of one comment per push, and nobody can plant a
marked comment of their own for the job to fill with the plan and edit afterwards. Under
the marker it names the head commit planned, the workflow run and the time. GitHub REST API:
list  GET   /repos/{owner}/{repo}/issues/{n}/comments  (paginated via the Link header)
edit  PATCH /repos/{owner}/{repo}/issues/comments/{id}
new   POST  /repos/{owner}/{repo}/issues/{n}/comments

The token comes only from GITHUB_TOKEN and is never part of a message: errors are built from
the method, the path and GitHub's own `message` (scrubbed of the token all the same).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from reconciler.config.env import check_api_url
from reconciler.core.errors import ReconcileError
from reconciler.core.vocabulary import PLAN_MARKER
from reconciler.net.deadline import within
from reconciler.net.retry import parse_retry_after, retry_delay
from reconciler.secure.scrub import Scrubber, check_credentials

DEFAULT_API_URL = "https://api.github.com"
DEADLINE_SECONDS = 30.0  # a request in all, connect through last byte (DESIGN 13.5)
# GitHub rejects comment bodies above 65,536 characters with a 422; leave room for the note.
MAX_BODY_CHARS = 65_000
_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
_RETRY_STATUSES = frozenset({502, 503, 504})
_SHA = re.compile(r"^[0-9a-f]{7,64}$")
# Who GITHUB_TOKEN writes as. Logins ending in [bot] belong to apps: no person can take it.
ACTIONS_BOT = "github-actions[bot]"


@dataclass(frozen=True)
class CommentResult:
    action: Literal["created", "updated"]
    comment_id: int
    url: str


class GitHubClient:
    """A small synchronous GitHub REST client for one repository."""

    def __init__(
        self,
        repo: str,
        token: str,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 1.0,
        deadline: float = DEADLINE_SECONDS,
    ) -> None:
        if not _REPO.match(repo):
            raise ReconcileError(f"--repo: {repo!r} is not OWNER/REPO")
        if not token.strip():
            raise ReconcileError("GITHUB_TOKEN is empty: pass ${{ github.token }} to this step")
        check_credentials(("GITHUB_TOKEN",), {"GITHUB_TOKEN": token})
        self.repo = repo
        self._token = token.strip()
        self._scrubber = Scrubber((token, self._token))
        self._retries = retries
        self._backoff = backoff
        self._deadline = deadline  # a request's total, connect through last byte (13.5)
        self._http = httpx.Client(
            base_url=check_api_url(api_url, "GITHUB_API_URL"),
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self._token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "zerotek-cw-reconciler",
            },
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"GitHubClient(repo={self.repo!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, json: Any = None) -> httpx.Response:
        # POST is never retried: a lost response to a committed POST would mean two comments.
        attempts = 1 if method == "POST" else 1 + self._retries
        label = f"GitHub API {method} {httpx.URL(url).path}"
        for attempt in range(attempts):
            failure: str | None = None
            try:
                response = within(
                    self._deadline, lambda: self._http.request(method, url, json=json), self.close
                )
            except TimeoutError:
                # The client is closed (a stuck connection): no retry on it.
                raise ReconcileError(
                    f"{label}: no complete answer within {self._deadline:g} s (the request "
                    "deadline)"
                ) from None
            except httpx.HTTPError as exc:
                response = None
                failure = f"{label}: {type(exc).__name__}: {self._scrubber(str(exc))}"
            if response is not None and response.status_code not in _RETRY_STATUSES:
                break
            if attempt + 1 < attempts:
                time.sleep(self._delay(attempt, response))
        if response is None:
            raise ReconcileError(failure or label)
        if response.is_success:
            return response
        raise ReconcileError(f"{label}: {response.status_code} {self._message(response)}")

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        # GitHub's secondary rate limits answer with Retry-After; a wait beyond the request
        # deadline is not worth it (the comment is refreshed on the next push).
        after = parse_retry_after(response.headers.get("Retry-After")) if response else None
        if after is not None and after > self._deadline:
            after = self._deadline
        return retry_delay(attempt, after, self._backoff, self._deadline)

    def _message(self, response: httpx.Response) -> str:
        try:
            message = self._scrubber(str(response.json().get("message", "")))
        except (ValueError, AttributeError):
            message = self._scrubber(response.text)[:200]  # scrub first: a cut hides nothing
        hint = ""
        if response.status_code in (401, 403, 404):
            hint = " (does the job have `permissions: pull-requests: write` and GITHUB_TOKEN?)"
        return self._scrubber(message.strip() or response.reason_phrase) + hint

    def issue_comments(self, number: int) -> Iterator[dict[str, Any]]:
        """Every comment on issue/PR `number`, oldest first, following the Link header."""
        url: str | None = f"/repos/{self.repo}/issues/{number}/comments?per_page=100"
        while url is not None:
            response = self._request("GET", url)
            page = response.json()
            if not isinstance(page, list):
                raise ReconcileError(f"GitHub API GET {url}: expected a list of comments")
            yield from page
            match = _NEXT.search(response.headers.get("link", ""))
            url = self._same_origin(match.group(1)) if match else None

    def _same_origin(self, url: str) -> str:
        # The token goes wherever the Link header points: only ever back to the API root.
        target, base = httpx.URL(url), self._http.base_url
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise ReconcileError(f"GitHub API: refusing to follow a next-page link to {url}")
        return url

    def create_comment(self, number: int, body: str) -> dict[str, Any]:
        url = f"/repos/{self.repo}/issues/{number}/comments"
        answer: dict[str, Any] = self._request(
            "POST", url, json={"body": self._scrubber(body)}
        ).json()
        return answer

    def update_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        url = f"/repos/{self.repo}/issues/comments/{comment_id}"
        answer: dict[str, Any] = self._request(
            "PATCH", url, json={"body": self._scrubber(body)}
        ).json()
        return answer


def is_plan_comment(
    comment: Mapping[str, Any], marker: str = PLAN_MARKER, author: str = ACTIONS_BOT
) -> bool:
    # Starts with, not contains: a human quoting the plan in a reply must not be overwritten.
    # And written by us: a marked comment anyone else wrote is theirs, never ours to edit.
    body, user = comment.get("body"), comment.get("user")
    login = user.get("login") if isinstance(user, Mapping) else None
    return (
        isinstance(body, str)
        and body.lstrip().startswith(marker)
        and isinstance(login, str)
        and login.casefold() == author.casefold()
    )


def upsert_comment(
    client: GitHubClient,
    number: int,
    body: str,
    marker: str = PLAN_MARKER,
    author: str = ACTIONS_BOT,
) -> CommentResult:
    """PATCH the first comment `author` wrote starting with `marker`, else POST a new one."""
    for comment in client.issue_comments(number):
        if is_plan_comment(comment, marker, author):
            updated = client.update_comment(int(comment["id"]), body)
            return CommentResult("updated", int(comment["id"]), str(updated.get("html_url", "")))
    created = client.create_comment(number, body)
    return CommentResult("created", int(created["id"]), str(created.get("html_url", "")))


def provenance(head_sha: str | None, run_url: str | None, when: dt.datetime) -> str:
    """The line under the marker: which commit was planned, by which run, when (a reader
    of an old comment sees it is old; a reviewer sees it is of the commit they review)."""
    parts = [f"Plan of commit `{head_sha[:12]}`" if head_sha else "Plan"]
    if run_url:
        parts.append(f"[workflow run]({run_url})")
    parts.append(when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return f"<sub>{' · '.join(parts)}</sub>"


def comment_body(
    text: str,
    run_url: str | None = None,
    marker: str = PLAN_MARKER,
    *,
    head_sha: str | None = None,
    when: dt.datetime | None = None,
) -> str:
    """The comment for a plan's Markdown: marker first, then where it comes from, within
    GitHub's size limit, and a pointer to the run log when the plan produced nothing (it
    failed before rendering)."""
    text = text.strip()
    where = f"the [workflow run]({run_url})" if run_url else "the workflow run"
    if not text.replace(marker, "").strip():
        text = f"**No plan was produced.** See {where} for the error."
    text = text.removeprefix(marker).lstrip("\n")
    stamp = provenance(head_sha, run_url, when or dt.datetime.now(dt.UTC))
    text = f"{marker}\n{stamp}\n\n{text}"
    if len(text) > MAX_BODY_CHARS:
        note = f"\n\n… the plan is too long for a comment: the whole plan is in {where}'s summary."
        cut = text.rfind("\n", 0, MAX_BODY_CHARS - len(note))
        text = text[: cut if cut > len(marker) else MAX_BODY_CHARS - len(note)] + note
    return text + "\n"


def run_url_from_env(environ: Mapping[str, str]) -> str | None:
    server, repo, run = (
        environ.get(k, "").strip()
        for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def post_plan_comment(
    file: Path,
    repo: str,
    pr: int,
    environ: Mapping[str, str] | None = None,
    *,
    head_sha: str | None = None,
    author: str = ACTIONS_BOT,
) -> CommentResult:
    """`reconcile pr-comment`: upsert `file`'s Markdown as the PR's plan comment."""
    env = os.environ if environ is None else environ
    if pr < 1:
        raise ReconcileError(f"--pr: {pr} is not a pull-request number")
    head_sha = (head_sha or "").strip().lower() or None
    if head_sha is not None and not _SHA.match(head_sha):
        raise ReconcileError(f"--head-sha: {head_sha!r} is not a commit id (hex)")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReconcileError(f"{file}: cannot read the plan: {exc}") from None
    token = env.get("GITHUB_TOKEN", "")
    if not token.strip():
        raise ReconcileError("GITHUB_TOKEN is not set: pass ${{ github.token }} to this step")
    check_credentials(("GITHUB_TOKEN",), env)
    api_url = env.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL
    body = comment_body(text, run_url_from_env(env), head_sha=head_sha)
    with GitHubClient(repo, token, api_url) as client:
        return upsert_comment(client, pr, body, author=author)
