"""Chat notifications: the three body formats, posted to a real HTTP server on 127.0.0.1;
off unless configured; a failing or unreachable webhook never fails a sync, and the URL
(the secret) never appears in any output."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from clirun import run as _cli
from runlog_samples import PERIOD, partial_result

from reconciler.notify import chat
from reconciler.records.record import RunRecord
from reconciler.sandbox import Sandbox

SECRET_PATH = "/hooks/T000/B000/s3cr3t-token-in-the-url"


class Hook:
    """An incoming-webhook endpoint: records every POST, answers `status`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.received.append(
                    {"path": self.path, "type": self.headers.get("Content-Type"),
                     "body": json.loads(raw)}
                )  # fmt: skip
                self.send_response(hook.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.received]


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


EVENT = chat.ChatEvent(
    "sync_outcome", "failed", "ConnectWise sync FAILED",
    ("zt-1 <!channel> [click](https://evil.example) *bold*",), {"run_id": "r1", "writes": 3},
)  # fmt: skip


def test_nothing_is_sent_unless_a_webhook_is_configured(hook: Hook) -> None:
    assert chat.send(EVENT, {}) is None
    assert chat.send(EVENT, {chat.URL_VAR: "  "}) is None
    assert hook.received == []


def test_generic_format_posts_the_event_as_json(hook: Hook) -> None:
    outcome = chat.send(EVENT, {chat.URL_VAR: hook.url})
    assert outcome == chat.ChatOutcome(True, "generic webhook, sync_outcome failed")
    (request,) = hook.received
    assert request["path"] == SECRET_PATH and request["type"] == "application/json"
    assert request["body"] == {
        "source": "zerotek-cw-reconciler", "event": "sync_outcome", "outcome": "failed",
        "title": "ConnectWise sync FAILED", "lines": list(EVENT.lines), "run_id": "r1",
        "writes": 3,
    }  # fmt: skip


def test_slack_format_escapes_mentions_and_links(hook: Hook) -> None:
    chat.send(EVENT, {chat.URL_VAR: hook.url, chat.FORMAT_VAR: "Slack"})
    (body,) = hook.bodies()
    assert set(body) == {"text"}
    assert body["text"].startswith("*ConnectWise sync FAILED*\n")
    assert "<!channel>" not in body["text"] and "&lt;!channel&gt;" in body["text"]


def test_teams_format_is_an_adaptive_card_with_data_rendered_literally(hook: Hook) -> None:
    chat.send(EVENT, {chat.URL_VAR: hook.url, chat.FORMAT_VAR: "teams"})
    (body,) = hook.bodies()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    texts = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    assert texts[0] == "ConnectWise sync FAILED" and card["body"][0]["color"] == "Attention"
    assert r"\[click\]\(https://evil\.example\)" in texts[1] and r"\*bold\*" in texts[1]
    (facts,) = [b for b in card["body"] if b["type"] == "FactSet"]
    assert {"title": "run_id", "value": "r1"} in facts["facts"]


@pytest.mark.parametrize(
    ("env", "detail"),
    [
        ({chat.FORMAT_VAR: "discord"}, "RECONCILE_WEBHOOK_FORMAT must be one of"),
        ({chat.URL_VAR: "http://hooks.example.com/x/s3cr3t"}, "RECONCILE_WEBHOOK_URL:"),
    ],
)
def test_bad_configuration_is_reported_not_raised(
    hook: Hook, env: dict[str, str], detail: str
) -> None:
    outcome = chat.send(EVENT, {chat.URL_VAR: hook.url, **env})
    assert outcome is not None and not outcome.sent and outcome.detail.startswith(detail)
    assert "s3cr3t" not in outcome.detail and hook.received == []


def test_a_failing_or_unreachable_webhook_is_an_outcome_without_the_url(hook: Hook) -> None:
    hook.status = 500
    failed = chat.send(EVENT, {chat.URL_VAR: hook.url})
    assert failed == chat.ChatOutcome(False, "generic webhook answered HTTP 500")
    hook.server.shutdown()
    hook.server.server_close()
    gone = chat.send(EVENT, {chat.URL_VAR: hook.url})
    assert gone is not None and not gone.sent and "unreachable" in gone.detail
    assert "s3cr3t" not in str(gone)


# --- from the commands -----------------------------------------------------------------------


def test_apply_posts_the_sync_outcome(
    sandbox: Sandbox, config_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(chat.URL_VAR, hook.url)
    result = _cli(config_dir, "apply", "--yes", "--as-of", "2026-11-24", "--no-email")
    assert result.exit_code == 0, result.output
    (body,) = hook.bodies()
    assert body["event"] == "sync_outcome" and body["outcome"] == "success"
    assert body["writes"] == sandbox.stats.writes > 0
    assert body["customers_failed"] == 0 and body["period"] == "2026-10-16..2026-11-15"
    run = json.loads(next((config_dir / "runs").rglob("*.json")).read_text(encoding="utf-8"))
    assert body["run_id"] == run["run_id"]
    assert "chat notification sent" in result.stderr and hook.url not in result.output


def test_a_broken_webhook_never_fails_the_sync(
    sandbox: Sandbox, config_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook.status = 503
    monkeypatch.setenv(chat.URL_VAR, hook.url)
    result = _cli(config_dir, "apply", "--yes", "--as-of", "2026-11-24", "--no-email")
    assert result.exit_code == 0, result.output
    assert sandbox.stats.writes > 0
    assert "chat notification not sent: generic webhook answered HTTP 503" in result.stderr
    assert SECRET_PATH not in result.output


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("2026-11-15", None),  # the sync day itself: nothing missed yet
        ("2026-11-18", "catching_up"),  # 3 days late, still due
        ("2026-11-21", "catching_up"),  # the last catch-up day
        ("2026-11-22", "missed"),  # the first day after the catch-up week: once
        ("2026-11-23", None),
    ],
)
def test_plan_if_due_reports_a_missed_scheduled_sync(
    sandbox: Sandbox, config_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch,
    as_of: str, expected: str | None,
) -> None:  # fmt: skip
    monkeypatch.setenv(chat.URL_VAR, hook.url)
    result = _cli(config_dir, "plan", "--if-due", "--as-of", as_of)
    assert result.exit_code == 0, result.output
    outcomes = [b["outcome"] for b in hook.bodies()]
    assert outcomes == ([expected] if expected else [])
    if expected:
        assert hook.bodies()[0]["event"] == "missed_sync"
        assert hook.bodies()[0]["period"] == "2026-10-16..2026-11-15"


def test_a_refused_url_is_scrubbed_in_every_form() -> None:
    """The refusal quotes the URL with repr(), which doubles a backslash: a plain
    `str.replace(url, ...)` missed that form; the one scrubber (reconciler.secure.scrub)
    does not."""
    url = "https:///hooks\\s3cr3t-path"  # no host: refused before any request
    outcome = chat.send(EVENT, {chat.URL_VAR: url})
    assert outcome is not None and not outcome.sent and "has no host" in outcome.detail
    assert "s3cr3t" not in outcome.detail, outcome.detail
    assert "[RECONCILE_WEBHOOK_URL redacted]" in outcome.detail


# --- built from the finished run record, like the e-mail ----------------------------------


def test_the_outcome_is_the_run_records_not_the_apply_results() -> None:
    """Acme's two writes committed, Beta's removal failed: the record says `partial` and
    +21.00 committed; the plan's revenue (+6.00, the failed removal included) is not what
    happened, and `failed` would hide the writes that were made."""
    record = RunRecord.of_result(partial_result(), "2026-11-24T101500Z-ab12")
    event = chat.sync_outcome_event(record)
    assert event.outcome == record.outcome == "partial"
    assert event.facts["writes"] == record.totals.writes == 2
    assert event.facts["revenue_delta"] == record.totals.revenue_delta == "21.00"
    assert (event.facts["customers_ok"], event.facts["customers_failed"]) == (2, 2)
    assert event.title.startswith("ConnectWise sync PARTIAL, failed for 2 customer(s): 2 write")
    assert any("quantity: must not be negative" in line for line in event.lines)


def test_a_sync_stopped_before_its_first_write_says_interrupted() -> None:
    record = RunRecord.start("r2", "scheduled", dt.datetime.now(dt.UTC), PERIOD, None)
    message = "interrupted by SIGTERM: stopped before any write; nothing was written"
    record.end(dt.datetime.now(dt.UTC), outcome="interrupted", error=message,
               interrupted_by="SIGTERM")  # fmt: skip
    event = chat.sync_failed_event(record)
    assert (event.outcome, event.lines) == ("interrupted", (message,))
    assert event.facts == {"run_id": "r2", "period": "2026-10-16..2026-11-15"}


@pytest.mark.parametrize("fmt", chat.FORMATS)
def test_credentials_in_the_event_never_reach_the_webhook(hook: Hook, fmt: str) -> None:
    """The event is built from the in-memory run record (its file is scrubbed, the object
    is not): an agreement name or error text from the APIs holding a credential must not
    be posted, raw or in the escaped form the format gives it."""
    secret = "Zt#Tok[en]_<9>*x"
    env = {chat.URL_VAR: hook.url, chat.FORMAT_VAR: fmt, "ZEROTEK_API_TOKEN": secret}
    event = chat.ChatEvent(
        "sync_outcome", "failed", f"sync FAILED {secret}",
        (f"zt-1 Acme: agreement 5 ('{secret}') is cancelled",),
        {"run_id": "r1", "note": f"key={secret}"},
    )  # fmt: skip
    outcome = chat.send(event, env)
    assert outcome is not None and outcome.sent, outcome
    (body,) = hook.bodies()
    text = json.dumps(body, ensure_ascii=False)
    assert "Tok" not in text.replace("\\", ""), text
    assert "[ZEROTEK_API_TOKEN redacted]" in text.replace("\\", "")
