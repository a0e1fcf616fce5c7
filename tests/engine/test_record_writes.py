"""How often apply writes its run record once the writes are done (issue 29): the finished
record is written before any e-mail goes out (what a process killed while they do leaves
behind must agree with it), then once more with the e-mails' outcomes. When none can be
sent (--no-email, no SMTP server, nobody to tell) those outcomes are known beforehand, so
the record is written once, and says the same. Against the sandbox and a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import run
from conftest import SmtpServer

from reconciler.records import runlog

AS_OF = ["--as-of", "2026-11-24"]


@pytest.fixture
def writes_after_finish(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The record writes (`RunHandle._write`) from `finish` on, by the method that made them."""
    seen: list[str] = []
    finishing: list[bool] = []
    finish, set_emails, write = (
        runlog.RunHandle.finish,
        runlog.RunHandle.set_emails,
        runlog.RunHandle._write,
    )

    def traced_finish(self: runlog.RunHandle, *args: object, **kw: object) -> Path:
        finishing.append(True)
        return finish(self, *args, **kw)  # type: ignore[arg-type]

    def traced_write(self: runlog.RunHandle, **kw: bool) -> Path:
        if finishing:
            seen.append("write")
        return write(self, **kw)

    monkeypatch.setattr(runlog.RunHandle, "finish", traced_finish)
    monkeypatch.setattr(runlog.RunHandle, "_write", traced_write)
    monkeypatch.setattr(runlog.RunHandle, "set_emails", set_emails)
    yield seen


def _emails(config_dir: Path) -> list[dict[str, object]]:
    (record,) = (config_dir / "runs").rglob("*-manual.json")
    emails: list[dict[str, object]] = json.loads(record.read_text())["emails"]
    twin = record.with_suffix(".md").read_text()
    section = twin.split("## E-mails", 1)[1]
    assert "None recorded." not in section  # the twin was written with them too
    assert all(f"| {e['kind']} |" in section for e in emails), section
    return emails


def test_no_email_writes_the_finished_record_once(
    sandbox: object, config_dir: Path, writes_after_finish: list[str]
) -> None:
    assert run(config_dir, "apply", "--yes", "--no-email", *AS_OF).exit_code == 0
    assert writes_after_finish == ["write"]
    assert [(e["kind"], e["sent"], e["detail"]) for e in _emails(config_dir)] == [
        ("sync-outcome", False, "not sent: --no-email"),
        ("agreement-ending", False, "not sent: --no-email"),  # the demo has one ending
    ]


def test_no_smtp_server_writes_the_finished_record_once(
    sandbox: object, config_dir: Path, writes_after_finish: list[str]
) -> None:
    assert run(config_dir, "apply", "--yes", *AS_OF, env={"SMTP_HOST": None}).exit_code == 0
    assert writes_after_finish == ["write"]
    emails = _emails(config_dir)
    assert emails and not any(e["sent"] for e in emails)


def test_a_sent_email_is_recorded_by_a_second_write(
    sandbox: object, config_dir: Path, smtp_server: SmtpServer, writes_after_finish: list[str]
) -> None:
    env: dict[str, str | None] = {**smtp_server.env()}
    assert run(config_dir, "apply", "--yes", *AS_OF, env=env).exit_code == 0
    assert writes_after_finish == ["write", "write"]  # finished, then with the outcomes
    emails = _emails(config_dir)
    assert emails and all(e["sent"] for e in emails)
    assert len(smtp_server.sink.received) == len(emails)
