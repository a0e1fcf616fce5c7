"""The sync log: one JSON record (plus a Markdown twin) per apply attempt under runs/, and
runs/INDEX.md, the Activity page.

A run is written with outcome "incomplete" before anything touches ConnectWise and rewritten
when the attempt ends, so a process killed mid-apply leaves a record saying so rather than
nothing. Every file is replaced atomically, and the index is rebuilt from the run files on
every write, so it can never disagree with them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ReconcileError
from reconciler.model import (
    Action,
    ApplyResult,
    Change,
    ChangeResult,
    CustomerPlan,
    CustomerResult,
    Period,
    Plan,
)

if TYPE_CHECKING:
    from reconciler.notify import EmailOutcome

TRIGGERS = ("scheduled", "manual")
RUNS_DIR = "runs"
INDEX_NAME = "INDEX.md"
# Values of these variables are scrubbed from every string written to runs/ or an e-mail:
# the records only hold plan/result data, but an upstream error message could echo anything.
SECRET_ENV = (
    "CW_PRIVATE_KEY",
    "CW_PUBLIC_KEY",
    "CW_CLIENT_ID",
    "ZEROTEK_API_TOKEN",
    "SMTP_PASSWORD",
)
_MIN_SECRET_LEN = 4  # shorter values would garble ordinary text and are not credentials
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


# --- secrets and atomic files --------------------------------------------------------------


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    for name in SECRET_ENV:
        value = env.get(name) or ""
        if len(value) >= _MIN_SECRET_LEN and value in text:
            text = text.replace(value, f"[{name} redacted]")
    return text


def _redact_tree(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_tree(v) for v in value]
    return value


def atomic_write(path: Path, data: str | bytes | Iterable[str | bytes]) -> None:
    """Write `data` to `path` so readers see the old file or the whole new one, never a part:
    a temp file in the same directory (same filesystem), fsync, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks: Iterable[str | bytes] = [data] if isinstance(data, str | bytes) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not every platform can open a directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _sweep_temps(runs: Path, now: float) -> None:
    """Temp files left by a killed writer would otherwise get committed with runs/."""
    for tmp in runs.rglob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TEMP_SECONDS:
                tmp.unlink()
        except OSError:
            pass


# --- the record ----------------------------------------------------------------------------


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:  # the library passes aware datetimes; naive ones mean UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _period_json(period: Period) -> dict[str, str]:
    return {
        "kind": period.kind.value,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "as_of": period.as_of.isoformat(),
    }


def _change_json(change: Change, result: ChangeResult | None) -> dict[str, Any]:
    return {
        "action": change.action.value,
        "sku": change.sku,
        "product": change.product,
        "before": change.before,
        "after": change.after,
        "unit_price": str(change.unit_price),
        "revenue_delta": str(change.revenue_delta),
        "ok": None if result is None else result.ok,
        "error": None if result is None else result.error,
        "note": None if result is None else result.note,
    }


def customer_json(cp: CustomerPlan, cr: CustomerResult | None) -> dict[str, Any]:
    results = {r.change: r for r in cr.results} if cr else {}
    changes = [_change_json(c, results.pop(c, None)) for c in cp.changes]
    changes += [_change_json(r.change, r) for r in results.values()]  # apply's extras, if any
    return {
        "id": cp.customer_id,
        "name": cp.name,
        "company": cp.company,
        "agreement": {
            "id": cp.agreement_id,
            "name": cp.agreement_name,
            "end_date": cp.agreement_end_date.isoformat() if cp.agreement_end_date else None,
        },
        "changes": changes,
        "errors": list(cr.errors if cr else cp.errors),
        "warnings": list(cp.warnings),
        "verified": bool(cr and cr.verified),
    }


def result_customers(result: ApplyResult) -> list[dict[str, Any]]:
    """Every planned customer in plan order, with what apply did for it (if anything)."""
    by_id = {cr.plan.customer_id: cr for cr in result.customers}
    customers = [customer_json(cp, by_id.pop(cp.customer_id, None)) for cp in result.plan.customers]
    return customers + [customer_json(cr.plan, cr) for cr in by_id.values()]


def totals_json(customers: list[dict[str, Any]], error: str | None) -> dict[str, Any]:
    done = [[c for c in cust["changes"] if c["ok"]] for cust in customers]
    flat = [c for changes in done for c in changes]
    errors = sum(
        len(set(cust["errors"]) | {c["error"] for c in cust["changes"] if c["ok"] is False})
        for cust in customers
    )
    return {
        "customers": len(customers),
        "customers_changed": sum(1 for changes in done if changes),
        "adds": sum(1 for c in flat if c["action"] == Action.ADD),
        "updates": sum(1 for c in flat if c["action"] == Action.UPDATE),
        "removes": sum(1 for c in flat if c["action"] == Action.REMOVE),
        "quantity_delta": sum(c["after"] - c["before"] for c in flat),
        "revenue_delta": str(sum((Decimal(c["revenue_delta"]) for c in flat), Decimal(0))),
        "errors": errors + (1 if error else 0),
    }


def outcome_of(result: ApplyResult) -> str:
    """success: every customer synced; partial: some did; failed: none made progress."""
    if result.ok:
        return "success"
    progress = any(c.ok or any(r.ok for r in c.results) for c in result.customers)
    return "partial" if progress else "failed"


def _emails_json(emails: Sequence[EmailOutcome]) -> list[dict[str, Any]]:
    return [{"kind": e.kind, "to": list(e.to), "sent": e.sent, "detail": e.detail} for e in emails]


# --- writing -------------------------------------------------------------------------------


def runs_dir(config_dir: Path) -> Path:
    return Path(config_dir) / RUNS_DIR


def _run_path(config_dir: Path, run_id: str) -> Path:
    match = _RUN_ID.match(run_id)
    if not match:
        raise ReconcileError(f"not a run id: {run_id!r} (expected e.g. 20261124T101500Z-manual)")
    return runs_dir(config_dir) / match[1] / match[2] / f"{run_id}.json"


def _new_run_id(config_dir: Path, started: dt.datetime, trigger: str) -> str:
    base = f"{_utc(started).strftime('%Y%m%dT%H%M%SZ')}-{trigger}"
    run_id, n = base, 1
    while _run_path(config_dir, run_id).exists():  # two attempts within one second
        n += 1
        run_id = f"{base}-{n}"
    return run_id


@dataclass
class RunHandle:
    """A run recorded as incomplete; finish() or fail() records how it ended."""

    config_dir: Path
    run_id: str
    path: Path
    record: dict[str, Any]

    @property
    def md_path(self) -> Path:
        return self.path.with_suffix(".md")

    def finish(
        self,
        result: ApplyResult,
        *,
        emails: Sequence[EmailOutcome] = (),
        finished: dt.datetime | None = None,
    ) -> Path:
        customers = result_customers(result)
        self.record.update(
            finished=_stamp(finished or result.finished),
            outcome=outcome_of(result),
            period=_period_json(result.plan.period),
            customers=customers,
            totals=totals_json(customers, None),
            warnings=list(result.plan.warnings),
            emails=_emails_json(emails),
            error=None,
        )
        return self._write()

    def fail(
        self,
        message: str,
        *,
        emails: Sequence[EmailOutcome] = (),
        finished: dt.datetime | None = None,
    ) -> Path:
        """The attempt failed as a whole (stale plan refused, API failure): nothing in the
        record is marked written, since what reached ConnectWise is not known here."""
        self.record.update(
            finished=_stamp(finished or dt.datetime.now(dt.UTC)),
            outcome="failed",
            totals=totals_json(self.record["customers"], message),
            emails=_emails_json(emails),
            error=message,
        )
        return self._write()

    def _write(self) -> Path:
        from reconciler.runview import render_run

        self.record = _redact_tree(self.record)
        # Compact: a 10,000-customer record indented costs the pure-Python encoder and 3x
        # the memory; people read the Markdown twin. (The tests hold every record written
        # to run.schema.json; checking it here, on every write, cost seconds per apply.)
        record = json.dumps(self.record, separators=(",", ":"), ensure_ascii=False)
        atomic_write(self.path, record + "\n")
        atomic_write(self.md_path, render_run(self.record))
        rebuild_index(self.config_dir)
        return self.path


def start_run(
    config_dir: Path,
    plan: Plan | None,
    *,
    trigger: str,
    started: dt.datetime,
    period: Period | None = None,
) -> RunHandle:
    """Record an attempt as incomplete, before the first write. `plan` may be None for an
    attempt that failed before planning; then `period` names what it was for."""
    if trigger not in TRIGGERS:
        raise ReconcileError(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
    the_period = plan.period if plan is not None else period
    if the_period is None:
        raise ValueError("start_run needs a plan or a period")
    run_id = _new_run_id(config_dir, started, trigger)
    customers = [customer_json(cp, None) for cp in plan.customers] if plan else []
    record: dict[str, Any] = {
        "run_id": run_id,
        "trigger": trigger,
        "started": _stamp(started),
        "finished": None,
        "outcome": "incomplete",
        "period": _period_json(the_period),
        "totals": totals_json(customers, None),
        "customers": customers,
        "warnings": list(plan.warnings) if plan else [],
        "emails": [],
        "error": None,
    }
    handle = RunHandle(Path(config_dir), run_id, _run_path(config_dir, run_id), record)
    handle._write()
    return handle


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    trigger: str
    started: str
    finished: str | None
    outcome: str  # incomplete | success | partial | failed | unreadable
    period: str
    customers: int
    customers_changed: int
    quantities_updated: int
    revenue_delta: str
    errors: int
    path: Path  # the run's JSON file

    @property
    def md_link(self) -> str:
        """The Markdown twin, relative to runs/ (for INDEX.md)."""
        return "/".join((*self.path.parent.parts[-2:], f"{self.run_id}.md"))

    def as_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "path"}
        data["path"] = self.path.as_posix()
        return data


def _summary(path: Path) -> RunSummary:
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
        totals, period = run["totals"], run["period"]
        return RunSummary(
            run_id=run["run_id"],
            trigger=run["trigger"],
            started=run["started"],
            finished=run["finished"],
            outcome=run["outcome"],
            period=f"{period['kind']} {period['start']}..{period['end']}",
            customers=totals["customers"],
            customers_changed=totals["customers_changed"],
            quantities_updated=totals["adds"] + totals["updates"] + totals["removes"],
            revenue_delta=totals["revenue_delta"],
            errors=totals["errors"],
            path=path,
        )
    except (OSError, ValueError, KeyError, TypeError):
        # Hand-edited or foreign files still show up, flagged, rather than vanishing.
        return RunSummary(path.stem, "?", "?", None, "unreadable", "?", 0, 0, 0, "0", 0, path)


def _run_files(config_dir: Path) -> list[Path]:
    return list(runs_dir(config_dir).glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/*.json"))


def list_runs(config_dir: Path, limit: int | None = None) -> list[RunSummary]:
    """Newest first (by start time, then id)."""
    runs = sorted(
        (_summary(p) for p in _run_files(config_dir)),
        key=lambda s: (s.path.stem[:16], s.path.stem),
        reverse=True,
    )
    return runs if limit is None else runs[:limit]


def load_run(config_dir: Path, run_id: str) -> dict[str, Any]:
    """One run by id, or by a prefix that names exactly one run."""
    files = {p.stem: p for p in _run_files(config_dir)}
    path = files.get(run_id)
    if path is None:
        matches = sorted(stem for stem in files if stem.startswith(run_id))
        if len(matches) > 1:
            raise ReconcileError(f"run id {run_id!r} is ambiguous: {', '.join(matches[:5])}")
        if not matches:
            raise ReconcileError(f"no run {run_id!r} under {runs_dir(config_dir)}")
        path = files[matches[0]]
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ReconcileError(f"{path}: cannot read run: {exc}") from None


def rebuild_index(config_dir: Path) -> Path:
    from reconciler.runview import render_index

    runs = runs_dir(config_dir)
    _sweep_temps(runs, dt.datetime.now().timestamp())
    path = runs / INDEX_NAME
    atomic_write(path, render_index(list_runs(config_dir)))
    return path
