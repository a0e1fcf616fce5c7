"""The plan comment upsert against a fake GitHub API on loopback (tests/fake_github.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import clirun
import pytest
from fake_github import FakeGitHub

from reconciler.core.errors import ReconcileError
from reconciler.core.vocabulary import PLAN_MARKER
from reconciler.notify import github

PR = 42
PLAN = f"{PLAN_MARKER}\n### reconcile plan\n\n| | count |\n|---|---:|\n| add | 3 |\n"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().start()
    try:
        yield fake
    finally:
        fake.stop()


def client(fake: FakeGitHub, **options: float) -> github.GitHubClient:
    return github.GitHubClient(fake.repo, fake.token, fake.url, **options)


def test_no_marker_comment_creates_one(gh: FakeGitHub) -> None:
    gh.add_comment(PR, "LGTM")
    with client(gh) as c:
        result = github.upsert_comment(c, PR, PLAN)
    assert result.action == "created"
    assert [r.method for r in gh.requests] == ["GET", "POST"]
    assert gh.calls("POST")[0].path == f"/repos/{gh.repo}/issues/{PR}/comments"
    bodies = [c["body"] for c in gh.comments[PR]]
    assert bodies == ["LGTM", PLAN]
    assert result.comment_id == gh.comments[PR][1]["id"]


def test_existing_marker_comment_is_patched_not_duplicated(gh: FakeGitHub) -> None:
    gh.add_comment(PR, "please check Contoso")
    ours = gh.add_comment(PR, f"{PLAN_MARKER}\nold plan", "github-actions[bot]")
    gh.add_comment(PR, "thanks")
    with client(gh) as c:
        result = github.upsert_comment(c, PR, PLAN)
    assert result == github.CommentResult("updated", ours["id"], ours["html_url"])
    assert gh.calls("POST") == []
    (patch,) = gh.calls("PATCH")
    assert patch.path == f"/repos/{gh.repo}/issues/comments/{ours['id']}"
    assert [c["body"] for c in gh.comments[PR]] == ["please check Contoso", PLAN, "thanks"]


def test_a_quoted_marker_in_a_human_reply_is_not_ours(gh: FakeGitHub) -> None:
    gh.add_comment(PR, f"> {PLAN_MARKER}\n> old plan\n\nwhy is Acme changing?")
    with client(gh) as c:
        assert github.upsert_comment(c, PR, PLAN).action == "created"
    assert gh.calls("PATCH") == []


def test_a_marker_comment_by_someone_else_is_never_edited(gh: FakeGitHub) -> None:
    """Issue 26, finding 4: a planted marked comment is not taken over; ours is found by
    marker AND author (github-actions[bot], or the token's identity given as `author`)."""
    planted = gh.add_comment(PR, f"{PLAN_MARKER}\nApproved plan: nothing changes.", "mallory")
    with client(gh) as c:
        first = github.upsert_comment(c, PR, PLAN)
        assert first.action == "created" and gh.calls("PATCH") == []
        second = github.upsert_comment(c, PR, PLAN + "v2\n")
    assert second == github.CommentResult("updated", first.comment_id, second.url)
    assert gh.comments[PR][0] == planted and planted["body"].endswith("nothing changes.")
    # An app token writes as its own bot: only that bot's comment is ours then.
    bot = gh.add_comment(PR, f"{PLAN_MARKER}\nold", "reconcile-app[bot]")
    with client(gh) as c:
        third = github.upsert_comment(c, PR, PLAN, author="reconcile-app[bot]")
    assert third.comment_id == bot["id"] and third.action == "updated"


def test_the_comment_names_the_commit_the_run_and_the_time() -> None:
    import datetime as dt

    when = dt.datetime(2026, 11, 24, 9, 5, tzinfo=dt.UTC)
    url = "https://github.com/msp/billing-config/actions/runs/99"
    body = github.comment_body(PLAN, url, head_sha="0123456789abcdef" * 2 + "01234567",
                               when=when)  # fmt: skip
    lines = body.splitlines()
    assert lines[0] == PLAN_MARKER
    assert lines[1] == (
        f"<sub>Plan of commit `0123456789ab` · [workflow run]({url}) · 2026-11-24 09:05 UTC</sub>"
    )
    assert body.count(PLAN_MARKER) == 1 and "### reconcile plan" in body


def test_marker_comment_on_a_later_page_is_found(gh: FakeGitHub) -> None:
    gh.max_per_page = 10
    for i in range(23):
        gh.add_comment(PR, f"comment {i}")
    ours = gh.add_comment(PR, f"{PLAN_MARKER}\nold plan", "github-actions[bot]")
    gh.add_comment(PR, "after")
    with client(gh) as c:
        result = github.upsert_comment(c, PR, PLAN)
    assert result.action == "updated" and result.comment_id == ours["id"]
    pages = [r.query for r in gh.calls("GET")]
    assert len(pages) == 3  # 25 comments at 10 a page
    assert "page=3" in pages[-1]
    assert gh.calls("POST") == []


def test_comments_on_other_pull_requests_are_ignored(gh: FakeGitHub) -> None:
    gh.add_comment(PR + 1, f"{PLAN_MARKER}\nthe other PR's plan")
    with client(gh) as c:
        assert github.upsert_comment(c, PR, PLAN).action == "created"
    assert gh.comments[PR + 1][0]["body"].endswith("the other PR's plan")


def test_a_next_link_to_another_host_is_refused(gh: FakeGitHub) -> None:
    gh.max_per_page = 1
    gh.link_base = "https://attacker.example"
    gh.add_comment(PR, "a")
    gh.add_comment(PR, "b")
    with client(gh) as c, pytest.raises(ReconcileError, match="refusing to follow"):
        list(c.issue_comments(PR))
    assert len(gh.requests) == 1  # the token never went anywhere else


def test_get_is_retried_on_a_gateway_error_post_is_not(gh: FakeGitHub) -> None:
    gh.fail_next = [502]
    with client(gh, backoff=0) as c:
        assert github.upsert_comment(c, PR, PLAN).action == "created"
    assert [r.method for r in gh.requests] == ["GET", "GET", "POST"]
    gh.requests.clear()
    gh.fail_next = [503]
    with client(gh, backoff=0) as c, pytest.raises(ReconcileError, match=r"POST .* 503"):
        c.create_comment(PR + 5, PLAN)
    assert len(gh.calls("POST")) == 1  # a second POST could leave two comments


def test_comment_body_adds_marker_fallback_and_fits_github_limit() -> None:
    plain = github.comment_body("plain text").splitlines()
    assert plain[0] == PLAN_MARKER and plain[1].startswith("<sub>Plan") and plain[3] == "plain text"
    assert github.comment_body(PLAN).endswith(PLAN.removeprefix(PLAN_MARKER + "\n"))
    empty = github.comment_body("", "https://github.example/o/r/actions/runs/9")
    assert empty.startswith(PLAN_MARKER)
    assert "No plan was produced" in empty and "actions/runs/9" in empty
    huge = PLAN + "\n".join(f"| row {i} | {'x' * 80} |" for i in range(5000))
    body = github.comment_body(huge)
    assert len(body) <= 65_536 and body.startswith(PLAN_MARKER)
    assert "too long for a comment" in body


def test_plain_http_api_url_is_refused_off_loopback() -> None:
    with pytest.raises(ReconcileError, match="GITHUB_API_URL"):
        github.GitHubClient("o/r", "t", "http://api.github.example")
    with pytest.raises(ReconcileError, match="OWNER/REPO"):
        github.GitHubClient("not a repo", "t", "https://api.github.com")


# --- the CLI command the validate workflow runs ------------------------------------------------


def _cli(gh: FakeGitHub, plan: Path, token: str, repo: str | None = None):
    env = {"GITHUB_TOKEN": token, "GITHUB_API_URL": gh.url, "GITHUB_SERVER_URL": ""}
    args = ["pr-comment", "--file", str(plan), "--repo", repo or gh.repo, "--pr", str(PR)]
    return clirun.invoke(*args, env=env)


def test_cli_creates_then_updates_in_place(gh: FakeGitHub, tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text(PLAN, encoding="utf-8")
    first = _cli(gh, plan, gh.token)
    assert first.exit_code == 0, first.output
    assert "plan comment created" in first.output
    plan.write_text(PLAN.replace("| add | 3 |", "| add | 4 |"), encoding="utf-8")
    second = _cli(gh, plan, gh.token)
    assert second.exit_code == 0, second.output
    assert "plan comment updated" in second.output
    assert len(gh.comments[PR]) == 1 and "| add | 4 |" in gh.comments[PR][0]["body"]
    assert {r.authorization for r in gh.requests} == {f"Bearer {gh.token}"}
    assert gh.token not in first.output + second.output


def test_cli_bad_token_is_one_line_without_the_token(gh: FakeGitHub, tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text(PLAN, encoding="utf-8")
    wrong = "ghs_wrong_token_9876543210"
    result = _cli(gh, plan, wrong)
    assert result.exit_code == 1
    assert "401 Bad credentials" in result.output
    assert wrong not in result.output
    assert gh.comments == {}


def test_cli_without_token_or_file_fails_before_any_request(gh: FakeGitHub, tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text(PLAN, encoding="utf-8")
    no_token = _cli(gh, plan, "")
    assert no_token.exit_code == 1 and "GITHUB_TOKEN is not set" in no_token.output
    missing = _cli(gh, tmp_path / "nope.md", gh.token)
    assert missing.exit_code == 1 and "nope.md: cannot read the plan" in missing.output
    assert gh.requests == []
