"""Optional chat notifications beside the e-mails: the sync outcome and missed syncs, posted
to one incoming webhook (Microsoft Teams, Slack, or any endpoint taking JSON).

Off unless RECONCILE_WEBHOOK_URL is set (a secret: the URL is the credential, so it is
never printed, logged or written anywhere). RECONCILE_WEBHOOK_FORMAT picks the body:
`generic` (default: the event as plain JSON fields), `slack` (incoming-webhook `text`), or
`teams` (a Workflows "post to a channel when a webhook request is received" Adaptive Card).
A chat message never fails a sync: every problem becomes a one-line outcome for stderr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from reconciler.config.env import check_api_url
from reconciler.core.errors import ReconcileError
from reconciler.core.periods import Period
from reconciler.net.deadline import within
from reconciler.records.record import RunRecord
from reconciler.secure.scrub import Scrubber, scrub
from reconciler.secure.untrusted import card_text, slack_text

URL_VAR = "RECONCILE_WEBHOOK_URL"
FORMAT_VAR = "RECONCILE_WEBHOOK_FORMAT"
FORMATS = ("generic", "slack", "teams")
TIMEOUT_SECONDS = 10.0  # per read
DEADLINE_SECONDS = 15.0  # the whole post, connect through last byte (DESIGN 13.5)
MAX_LINES = 20  # a chat message summarises; the run log has the rest

Kind = Literal["sync_outcome", "missed_sync"]


@dataclass(frozen=True)
class ChatEvent:
    kind: Kind
    outcome: str  # success | failed | refused | interrupted | catching_up | missed
    title: str
    lines: tuple[str, ...] = ()
    facts: dict[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatOutcome:
    sent: bool
    detail: str

    def __str__(self) -> str:
        return f"chat notification {'sent' if self.sent else 'not sent'}: {self.detail}"


def payload(event: ChatEvent, fmt: str) -> dict[str, Any]:
    lines = list(event.lines[:MAX_LINES])
    if len(event.lines) > MAX_LINES:
        lines.append(f"... and {len(event.lines) - MAX_LINES} more (see the run log)")
    if fmt == "slack":
        body = "\n".join([f"*{slack_text(event.title)}*", *map(slack_text, lines)])
        return {"text": body}
    if fmt == "teams":
        blocks: list[dict[str, Any]] = [
            {"type": "TextBlock", "text": card_text(event.title), "weight": "Bolder",
             "wrap": True, "color": "Good" if event.outcome == "success" else "Attention"},
            *({"type": "TextBlock", "text": card_text(x), "wrap": True} for x in lines),
        ]  # fmt: skip
        if event.facts:
            facts = [{"title": k, "value": card_text(str(v))} for k, v in event.facts.items()]
            blocks.append({"type": "FactSet", "facts": facts})
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": blocks,
        }
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        }
    return {
        "source": "zerotek-cw-reconciler",
        "event": event.kind,
        "outcome": event.outcome,
        "title": event.title,
        "lines": list(event.lines),
        **event.facts,
    }


def send(
    event: ChatEvent,
    environ: Mapping[str, str],
    *,
    transport: httpx.BaseTransport | None = None,
    deadline: float = DEADLINE_SECONDS,
) -> ChatOutcome | None:
    """Post `event`; None when no webhook is configured. Never raises."""
    url = environ.get(URL_VAR, "").strip()
    if not url:
        return None
    fmt = environ.get(FORMAT_VAR, "").strip().lower() or "generic"
    if fmt not in FORMATS:
        return ChatOutcome(False, f"{FORMAT_VAR} must be one of {', '.join(FORMATS)}")
    try:
        check_api_url(url, URL_VAR)
    except ReconcileError as exc:
        return ChatOutcome(False, scrub(str(exc), (url,), environ))
    body = payload(_scrubbed(event, url, environ), fmt)
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, transport=transport) as client:
            response = within(deadline, lambda: client.post(url, json=body), client.close)
    except TimeoutError:
        return ChatOutcome(False, f"{fmt} webhook did not answer within {deadline:g} s")
    except httpx.HTTPError as exc:
        # httpx puts the URL in some messages: the URL is the secret.
        return ChatOutcome(False, f"{fmt} webhook unreachable ({type(exc).__name__})")
    if not response.is_success:
        return ChatOutcome(False, f"{fmt} webhook answered HTTP {response.status_code}")
    return ChatOutcome(True, f"{fmt} webhook, {event.kind} {event.outcome}")


def _scrubbed(event: ChatEvent, url: str, environ: Mapping[str, str]) -> ChatEvent:
    """The event without credentials: it is built from the in-memory run record (whose
    file is scrubbed, not the object), and names and error texts come from the APIs.
    Scrubbed raw, before the format escapes it (an escaped form would not match)."""
    clean = Scrubber((url,), environ)
    return ChatEvent(
        event.kind,
        event.outcome,
        clean(event.title),
        tuple(clean(line) for line in event.lines),
        {k: clean(v) if isinstance(v, str) else v for k, v in event.facts.items()},
    )


# --- the events ------------------------------------------------------------------------------


def sync_outcome_event(record: RunRecord) -> ChatEvent:
    """The outcome of an apply that ran, from its finished run record, as the e-mail is
    (never from the apply result): the record's outcome (success, partial, failed,
    interrupted), the writes its journal says were committed and their revenue."""
    totals, window = record.totals, _window(record)
    failed = [c for c in record.customers if not c.ok]
    verdict = {
        "success": "succeeded",
        "partial": f"PARTIAL, failed for {len(failed)} customer(s)",
        "failed": f"FAILED for {len(failed)} customer(s)",
        "interrupted": f"INTERRUPTED by {record.interrupted_by or 'a stop signal'}",
    }.get(record.outcome, record.outcome.upper())
    title = f"ConnectWise sync {verdict}: {totals.writes} write(s), period {window}"
    lines = tuple(
        f"{c.id} {c.name}: {'; '.join(c.all_errors()) or 'a write failed'}" for c in failed
    )
    facts: dict[str, str | int] = {
        "run_id": record.run_id,
        "period": window,
        "writes": totals.writes,
        "customers_ok": len(record.customers) - len(failed),
        "customers_failed": len(failed),
        "revenue_delta": totals.revenue_delta,
    }
    return ChatEvent("sync_outcome", record.outcome, title, lines, facts)


def sync_failed_event(record: RunRecord) -> ChatEvent:
    """A sync that did not happen (refused: stale or unsafe plan; the API failed; a stop
    signal before the first write), from the run record that says so."""
    window = _window(record)
    first = record.error.splitlines()[0] if record.error else "unknown error"
    return ChatEvent(
        "sync_outcome",
        record.outcome,
        f"ConnectWise sync {record.outcome.upper()}: period {window}",
        (first,),
        {"run_id": record.run_id, "period": window},
    )


def _window(record: RunRecord) -> str:
    return f"{record.period.start}..{record.period.end}"


def missed_sync_event(period: Period, today: str, late: int, catching_up: bool) -> ChatEvent:
    window = f"{period.start}..{period.end}"
    if catching_up:
        title = f"Scheduled sync missed on the sync day: catching up period {window} today"
        line = (
            f"No successful scheduled sync for {window} since its sync day {period.end} "
            f"({late} day(s) ago); today's scheduled run ({today}) bills it."
        )
    else:
        title = f"Scheduled sync MISSED: period {window} was never synced by the schedule"
        line = (
            f"The catch-up week after the sync day {period.end} has passed with no successful "
            "scheduled sync. Review the failed runs and sync it by hand (Actions > sync > "
            "Run workflow, period last-billing-period, as_of the sync day)."
        )
    return ChatEvent(
        "missed_sync",
        "catching_up" if catching_up else "missed",
        title,
        (line,),
        {"period": window, "today": today, "days_after_sync_day": late},
    )
