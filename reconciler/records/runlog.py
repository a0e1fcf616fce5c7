"""The sync log: one JSON record (plus a Markdown twin) per apply attempt under runs/, and
runs/INDEX.md, the Activity page.

A run is written with outcome "incomplete" before anything touches ConnectWise, and each
write's outcome is journaled into it (atomically, fsynced) as soon as it is known, so a
process killed mid-apply leaves a record of every write it had settled. When the attempt
ends the record is finished (success, partial, failed, interrupted) and INDEX.md rebuilt
from the run files, under the config directory's lock (engine), so it can never disagree
with them. Run ids are claimed with an exclusive create: never exists-then-replace.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.core.billed import Billed
from reconciler.core.errors import ReconcileError, RunLogFailed, os_error_line
from reconciler.core.files import atomic_write, content_digest, loads_json, read_json, write_all
from reconciler.core.model import ApplyResult, ChangeResult, CustomerResult, Period, Plan
from reconciler.core.money import plain
from reconciler.records import runindex
from reconciler.records.record import EmailOutcome, RunRecord, RunSummary, customer_json
from reconciler.records.runview import render_index, render_run
from reconciler.secure.scrub import Scrubber, scrub
from reconciler.secure.untrusted import json_dumps
from reconciler.secure.untrusted import plain as plain_text

TRIGGERS = ("scheduled", "manual")
RUNS_DIR = "runs"
INDEX_NAME = "INDEX.md"
_RUN_ID = re.compile(r"^(\d{4})(\d{2})\d{2}T\d{6}Z-(?:scheduled|manual)(?:-\d+)?$")
_STALE_TEMP_SECONDS = 300


def detect_trigger(explicit: str | None, environ: Mapping[str, str] | None = None) -> str:
    """`--trigger` wins; else the GitHub Actions schedule event means scheduled; else manual."""
    if explicit is not None:
        if explicit not in TRIGGERS:
            raise ReconcileError(
                f"--trigger must be one of {', '.join(TRIGGERS)}, got {explicit!r}"
            )
        return explicit
    env = os.environ if environ is None else environ
    return "scheduled" if env.get("GITHUB_EVENT_NAME") == "schedule" else "manual"


def _sweep_temps(runs: Path, now: float) -> None:
    """Temp files left by a killed writer would otherwise get committed with runs/."""
    for tmp in runs.rglob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TEMP_SECONDS:
                tmp.unlink()
        except OSError:
            pass


# --- writing -------------------------------------------------------------------------------


def runs_dir(config_dir: Path) -> Path:
    return Path(config_dir) / RUNS_DIR


def _run_path(config_dir: Path, run_id: str) -> Path:
    match = _RUN_ID.match(run_id)
    if not match:
        raise ReconcileError(f"not a run id: {run_id!r} (expected e.g. 20261124T101500Z-manual)")
    return runs_dir(config_dir) / match[1] / match[2] / f"{run_id}.json"


def _claim_run_id(config_dir: Path, started: dt.datetime, trigger: str) -> tuple[str, Path]:
    """A run id nobody else holds: its JSON file is created exclusively (O_EXCL), so two
    runs started in the same second, even in two processes, never share one."""
    base = f"{started.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{trigger}"
    n = 1
    while True:
        run_id = base if n == 1 else f"{base}-{n}"
        path = _run_path(config_dir, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            n += 1
            continue
        return run_id, path


# Below this size the record is rewritten on every journaled write, so the file alone is
# always current. Above it the journal alone carries the outcomes until the run ends:
# rewriting megabytes per write (or even every few seconds) cost seconds per apply at
# 10,000 customers, and readers replay the journal anyway (`load_run`).
FOLD_ALWAYS_BYTES = 256 * 1024


@dataclass
class RunHandle:
    """A run being recorded. The apply journals into it (`change`, `customer`); the engine
    ends it with `finish` or `fail`, then `set_emails`.

    Journal: each outcome is appended, as one JSON line, to `<run>.journal` beside the
    record before the call returns (so it survives the process being killed at any point),
    and a small record is rewritten with it (see FOLD_ALWAYS_BYTES). Readers replay the
    journal onto an incomplete record (`load_run`), so a record of any size says exactly
    what was written; finishing writes the whole record and removes the journal."""

    config_dir: Path
    record: RunRecord
    path: Path
    _where: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)
    _journal_fd: int | None = field(default=None, repr=False)
    _record_bytes: int = field(default=0, repr=False)
    _flusher: _Flusher | None = field(default=None, repr=False)
    # The first write of the run log that failed: from then on nothing is written to it
    # and no ConnectWise write starts (DESIGN 13.5).
    broken: OSError | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def md_path(self) -> Path:
        return self.path.with_suffix(".md")

    @property
    def journal_path(self) -> Path:
        return journal_path(self.path)

    # --- the journal (called by apply as outcomes become known) -------------------------

    def change(self, result: ChangeResult) -> None:
        """One write's outcome, journaled before this returns."""
        where = self._where.get(id(result.change))
        if where is None:
            return
        change = self.record.customers[where[0]].changes[where[1]]
        change.settle(result)
        error, note = (None if t is None else scrub(t) for t in (change.error, change.note))
        self._journal({"c": where[0], "k": where[1], "ok": change.ok, "error": error, "note": note})

    def customer(self, result: CustomerResult, *, durable: bool = True) -> None:
        """A customer's end: its errors (stale, verification, an exception) and verdict.
        `durable=False` only updates the record (the engine's final pass over customers
        that wrote nothing; `finish` then writes once)."""
        cust = self.record.settle_customer(result)
        if durable and cust is not None:
            errors = [scrub(e) for e in cust.errors]
            self._journal({"id": cust.id, "errors": errors, "verified": cust.verified})

    def _journal(self, entry: dict[str, Any]) -> None:
        """Never raises: a run log that refuses a write (ENOSPC, EIO, a short write, a
        read-only disk) marks the handle `broken`, which stops every new ConnectWise write
        (the engine's stop condition); the outcomes stay in memory for the engine to print.
        """
        if self.broken is not None:
            return
        try:
            self._append(entry)
        except OSError as exc:
            self.broken = exc

    def _append(self, entry: dict[str, Any]) -> None:
        if self._journal_fd is None:
            self._journal_fd = os.open(
                self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n"
        # One write: a line or an error (a short write is one: files.write_all).
        write_all(self._journal_fd, line.encode("utf-8"), self.journal_path)
        if self._record_bytes <= FOLD_ALWAYS_BYTES:
            # The rewritten record holds every outcome so far (and is fsynced): no need
            # to fsync the journal too.
            self.record.retotal()
            self._write(index=False, summary=False)
            return
        if self._flusher is None:
            self._flusher = _Flusher(self._journal_fd)
        self._flusher.written()

    def _close_journal(self, *, remove: bool = True) -> None:
        if self._flusher is not None:
            self._flusher.close()
            self._flusher = None
        if self._journal_fd is not None:
            with contextlib.suppress(OSError):  # EIO at close: the record decides below
                os.close(self._journal_fd)
            self._journal_fd = None
        if remove:
            self.journal_path.unlink(missing_ok=True)

    def committed_lines(self) -> list[str]:
        """One line per write ConnectWise committed, or may have (outcome unknown), from
        the outcomes held in memory: what stderr shows when the run log cannot."""
        lines = []
        for c in self.record.customers:
            for ch in c.changes:
                if ch.ok is True or ch.ok == "unknown":
                    what = "committed" if ch.ok is True else "outcome unknown"
                    lines.append(
                        f"{what}: {plain_text(c.id)} {ch.action} {plain_text(ch.sku)} "
                        f"[{plain_text(ch.product)}] {ch.before} → {ch.after} on agreement "
                        f"{plain_text(c.agreement.text())}"
                    )
        return lines

    def failure(self, exc: OSError) -> RunLogFailed:
        """The one-line error for a run log that cannot be written, with every write
        committed so far (printed by the command before it)."""
        committed = self.committed_lines()
        return RunLogFailed(
            os_error_line(exc, "cannot write the run log")
            + f"; no ConnectWise write was started after it; {len(committed)} write(s) "
            "committed before it are listed above. Free the disk, then run `reconcile plan` "
            "to see ConnectWise as it is",
            committed,
        )

    # --- the end ---------------------------------------------------------------------------

    def finish(self, result: ApplyResult, *, interrupted_by: str | None = None) -> Path:
        """Record how the apply ended: every customer's result (the journal already holds
        each write's), the outcome, and INDEX.md."""
        for customer in result.customers:
            self.customer(customer, durable=False)
        error = None
        if self.broken is not None:
            error = (
                f"the run log could not be written ({os_error_line(self.broken)}): no "
                "ConnectWise write was started after it"
            )
        elif interrupted_by:
            error = (
                f"interrupted by {interrupted_by}: no new write was started after it; "
                "the writes already sent finished and are recorded here"
            )
        self.record.end(result.finished, error=error, interrupted_by=interrupted_by)
        # Everything (record, twin, summary, INDEX.md) says how it ended before the
        # e-mails go out: a process killed while they do leaves nothing that contradicts
        # the record. `set_emails` then writes it all once more, with their outcomes.
        return self._close()

    def _close(self) -> Path:
        """Write the ended record, drop the journal it now holds, rebuild INDEX.md. Raises
        RunLogFailed (the journal kept: it may hold what the record could not) when the
        disk refuses any of it, or refused a journal write earlier."""
        try:
            self._write(index=False)
            self._close_journal(remove=self.broken is None)
            rebuild_index(self.config_dir)
        except OSError as exc:
            self.broken = self.broken or exc
            self._close_journal(remove=False)
        if self.broken is not None:
            raise self.failure(self.broken)
        return self.path

    def fail(self, message: str, *, interrupted_by: str | None = None) -> Path:
        """The attempt failed as a whole (stale plan refused, API failure, an internal
        error, a signal before the first write): every write the journal settled stays
        recorded as it was."""
        outcome = "interrupted" if interrupted_by else "failed"
        now = dt.datetime.now(dt.UTC)
        self.record.end(now, outcome=outcome, error=message, interrupted_by=interrupted_by)
        return self._close()

    def discard(self) -> None:
        """Take back the record of an attempt that sent no write (issue 28: a person at a
        terminal sees the error; runs/, the audit of syncs, keeps only syncs that ran):
        the record, its twin, journal and summary go, and INDEX.md is rebuilt without it.
        Only for an attempt whose journal holds no write, sent or settled."""
        self._close_journal()
        runs = runs_dir(self.config_dir)
        for path in (self.path, self.md_path, runindex.summary_path(runs, self.run_id)):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # its month folder, when this run made it
            self.path.parent.rmdir()
        rebuild_index(self.config_dir)

    def set_emails(self, emails: Sequence[EmailOutcome]) -> Path:
        self.record.emails = list(emails)
        if self.broken is not None:
            raise self.failure(self.broken)
        try:
            return self._write()
        except OSError as exc:
            self.broken = exc
            raise self.failure(exc) from None

    def _write(self, *, twin: bool = True, index: bool = True, summary: bool = True) -> Path:
        """The record (compact JSON, streamed customer by customer: people read the
        Markdown twin), its `twin`, its `summary` (runs/index/) and INDEX.md. The tests
        hold every record to run.schema.json; checking it here, on each write, cost
        seconds per apply at 10,000 customers."""
        stream = _RecordStream(self.record)
        atomic_write(self.path, stream)
        shown = self.record
        if stream.scrubbed:  # a credential in the data: show what the file holds
            shown = RunRecord.from_json(read_json(self.path))
        if twin:
            atomic_write(self.md_path, render_run(shown))
        if summary:
            summary_of = runindex.summary_of(shown, self.path)
            runindex.write(runs_dir(self.config_dir), summary_of, stream.digest())
        self._record_bytes = stream.size
        if index:
            rebuild_index(self.config_dir)
        return self.path


class _RecordStream:
    """A record's JSON text in pieces (one per customer), scrubbed of credentials, so a
    10,000-customer record never exists whole as a dict tree, a string and bytes at once.
    After iteration: `size` in bytes, and whether any piece held a credential."""

    _HOLE = "@@customers@@"

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self.size = 0
        self.scrubbed = False
        self._scrubber = Scrubber()
        self._hash = hashlib.sha256()

    def digest(self) -> str:
        """files.content_digest of what was streamed (so no re-read of the file)."""
        return self._hash.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        head = self.record.to_json(customers=False)
        head["customers"] = self._HOLE
        before, after = self._dumps(head).split(f'"customers":"{self._HOLE}"', 1)
        yield self._bytes(before + '"customers":[')
        for i, customer in enumerate(self.record.customers):
            text = self._dumps(customer_json(customer))
            yield self._bytes(text if i == 0 else "," + text)
        yield self._bytes("]" + after + "\n")

    def _dumps(self, value: dict[str, Any]) -> str:
        text = json_dumps(value, separators=(",", ":"))
        if self._scrubber.holds_secret(text):
            self.scrubbed = True
            text = json_dumps(self._scrubber.tree(value), separators=(",", ":"))
        return text

    def _bytes(self, text: str) -> bytes:
        data = text.encode("utf-8")
        self.size += len(data)
        self._hash.update(data)
        return data


# macOS has no fdatasync; fsync is the same guarantee and a little more work.
_datasync = getattr(os, "fdatasync", os.fsync)


class _Flusher:
    """Group commit for a large run's journal (DESIGN 12.5: each outcome durably recorded
    as soon as it is known): a thread flushes the file to disk whenever lines were appended
    since its last flush, at most once per `GROUP_SECONDS`, so every line is on disk within
    about that long of being written, while the event loop never waits for the disk. One
    fdatasync per write cost milliseconds each (16,840 writes at 10,000 customers); one per
    line appended still cost ~15 s of CPU per 10,000-customer apply on 2 cores. A killed
    process loses nothing either way: the kernel holds every line `os.write` returned for;
    the flush is for a machine that loses power."""

    GROUP_SECONDS = 0.05

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._wake = threading.Condition()
        self._dirty = False
        self._closed = False
        self._last = 0.0  # monotonic time of the last flush
        self._thread = threading.Thread(target=self._run, name="journal-flush", daemon=True)
        self._thread.start()

    def written(self) -> None:
        with self._wake:
            if not self._dirty:  # one wake-up per group, not per line
                self._dirty = True
                self._wake.notify()

    def close(self) -> None:
        """After a last flush of whatever was written (at once: no waiting for the group)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._dirty or self._closed):
                    self._wake.wait()
                # Let the group fill, unless the run is finishing.
                while (
                    not self._closed
                    and (pause := self._last + self.GROUP_SECONDS - time.monotonic()) > 0
                ):
                    self._wake.wait(pause)
                if not self._dirty:
                    return
                self._dirty = False
            try:
                _datasync(self._fd)
            except OSError:
                return  # the disk refuses: the lines stay in the kernel's hands
            self._last = time.monotonic()


def journal_path(record: Path) -> Path:
    return record.with_suffix(".journal")


def replay_journal(record: RunRecord, path: Path) -> RunRecord:
    """`record` (incomplete, as read from `path`) with its journal's outcomes applied: what
    a killed process had settled after the record was last rewritten. A torn last line (a
    kill mid-append) ends the replay."""
    try:
        lines = journal_path(path).read_bytes().splitlines()
    except OSError:
        return record
    by_id = {c.id: c for c in record.customers}
    for line in lines:
        try:
            entry = loads_json(line)
            if "id" in entry:
                cust = by_id[entry["id"]]
                cust.errors, cust.verified = list(entry["errors"]), bool(entry["verified"])
            else:
                change = record.customers[entry["c"]].changes[entry["k"]]
                change.ok, change.error, change.note = entry["ok"], entry["error"], entry["note"]
        except (ValueError, KeyError, IndexError, TypeError):
            break
    record.retotal()
    return record


def start_run(
    config_dir: Path,
    plan: Plan | None,
    *,
    trigger: str,
    started: dt.datetime,
    period: Period | None = None,
    billed: Billed | None = None,
    currency: str | None = None,
) -> RunHandle:
    """Record an attempt as incomplete, before the first write. `plan` may be None for an
    attempt that failed before planning; then `period` names what it was for and `currency`
    the currency its figures are in (a plan carries its own)."""
    if trigger not in TRIGGERS:
        raise ReconcileError(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
    the_period = plan.period if plan is not None else period
    if the_period is None:
        raise ValueError("start_run needs a plan or a period")
    if started.tzinfo is None:  # the library passes aware datetimes; naive ones mean UTC
        started = started.replace(tzinfo=dt.UTC)
    run_id, path = _claim_run_id(config_dir, started, trigger)
    record = RunRecord.start(run_id, trigger, started, the_period, plan, currency)
    if billed is not None:
        record.billed_before = {
            "seats": billed.seats,
            "monthly_revenue": plain(billed.revenue),
            "currency": record.currency,
        }
    handle = RunHandle(Path(config_dir), record, path)
    if plan is not None:
        for i, cp in enumerate(plan.customers):
            for j, change in enumerate(cp.changes):
                handle._where[id(change)] = (i, j)
    handle._write()
    return handle


def start_run_or_refuse(config_dir: Path, plan: Plan | None, **kw: Any) -> RunHandle:
    """`start_run`, with a disk that refuses the record (read-only, full, EIO) as one line
    naming the path: nothing has been written to ConnectWise yet, and nothing will be."""
    try:
        return start_run(config_dir, plan, **kw)
    except OSError as exc:
        raise ReconcileError(
            os_error_line(exc, "cannot write the run record")
            + "; nothing was written to ConnectWise"
        ) from None


# --- reading -------------------------------------------------------------------------------


def _read_record(path: Path) -> RunRecord:
    """Raises OSError/ValueError/KeyError/TypeError/AttributeError on an unreadable one."""
    record = RunRecord.from_json(read_json(path))
    if record.outcome == "incomplete":
        record = replay_journal(record, path)
    return record


def _summary(path: Path, *, repair: bool = False) -> RunSummary:
    """From runs/index/ when its summary matches the record and no journal is pending
    (a killed run's); else from the record itself, and with `repair` (under the lock, so
    no process is writing that run) its twin and summary are rewritten from it: a run
    killed mid-apply (a large record is journal-only) or between `finish` and
    `set_emails` left them behind its record."""
    runs = path.parents[2]
    if not journal_path(path).exists():
        stored = runindex.read(runs, path)
        if stored is not None:
            return stored
    # read_json refuses nesting too deep to parse (ValueError); RecursionError stays listed
    # for a record that parses but is too deep for what reads it: "unreadable", never fatal.
    unreadable = (
        OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError
    )  # fmt: skip
    try:
        record = _read_record(path)
        summary = runindex.summary_of(record, path)
    except unreadable:
        # Hand-edited or foreign files still show up, flagged, rather than vanishing.
        return RunSummary(path.stem, "?", "?", None, "unreadable", "?", 0, 0, 0, "0", 0, path)
    if repair:
        # Best effort: a hand-edited record the twin cannot render is still listed.
        with contextlib.suppress(*unreadable):
            _repair(record, path, summary)
    return summary


def _repair(record: RunRecord, path: Path, summary: RunSummary) -> None:
    """The twin (and, once no journal is pending, the summary) of `record` as read."""
    twin = path.with_suffix(".md")
    text = render_run(record)
    try:
        current = twin.read_text(encoding="utf-8")
    except (OSError, ValueError):
        current = None
    if current != text:
        atomic_write(twin, text)
    if record.outcome != "incomplete":  # killed between finishing and removing it
        journal_path(path).unlink(missing_ok=True)
    if not journal_path(path).exists():
        runindex.write(path.parents[2], summary, content_digest(path))


def _run_files(config_dir: Path) -> list[Path]:
    return list(runs_dir(config_dir).glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/*.json"))


def list_runs(
    config_dir: Path, limit: int | None = None, *, repair: bool = False
) -> list[RunSummary]:
    """Newest first (by start time, then id). Only the runs listed are read (`repair`:
    see `_summary`)."""
    paths = sorted(_run_files(config_dir), key=lambda p: (p.stem[:16], p.stem), reverse=True)
    return [_summary(p, repair=repair) for p in (paths if limit is None else paths[:limit])]


def load_run(config_dir: Path, run_id: str) -> RunRecord:
    """One run by id, or by a prefix that names exactly one run: reads that run alone."""
    path = _run_path(config_dir, run_id) if _RUN_ID.match(run_id) else None
    if path is None or not path.is_file():
        files = {p.stem: p for p in _run_files(config_dir)}
        matches = sorted(stem for stem in files if stem.startswith(run_id))
        if len(matches) > 1:
            raise ReconcileError(f"run id {run_id!r} is ambiguous: {', '.join(matches[:5])}")
        if not matches:
            raise ReconcileError(f"no run {run_id!r} under {runs_dir(config_dir)}")
        path = files[matches[0]]
    try:
        return _read_record(path)
    except (OSError, ValueError) as exc:
        raise ReconcileError(f"{path}: cannot read run: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ReconcileError(f"{path}: not a run record ({type(exc).__name__}: {exc})") from None


def rebuild_index(config_dir: Path) -> Path:
    runs = runs_dir(config_dir)
    _sweep_temps(runs, dt.datetime.now().timestamp())
    path = runs / INDEX_NAME
    # Called under the lock only: no other process is writing a run, so the twins and
    # summaries left behind by a killed one can be brought up to date.
    atomic_write(path, render_index(list_runs(config_dir, repair=True)))
    return path
