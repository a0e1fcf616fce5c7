"""Option types of the commands: those several commands share (with `parse_as_of`, the one
reading of `--as-of`), and those of `plan` and `apply`, whose option lists would otherwise
bury what the commands do. Kept free of heavy
imports: `reconcile --help` imports this module, not the engine, HTTP client or schema
validators behind the commands (benchmarks/import_time.py)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.application import check_out_path
from reconciler.core.errors import ReconcileError
from reconciler.core.vocabulary import PeriodKind


class Format(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


class OutputFormat(StrEnum):
    """apply and check-unmapped: text for people, json for scripts."""

    TEXT = "text"
    JSON = "json"


CustomerOption = Annotated[
    list[str] | None,
    typer.Option(
        "--customer",
        metavar="ID",
        help="Only this ZeroTek customer id (repeatable).",
        show_default=False,
    ),
]
PeriodOption = Annotated[
    PeriodKind,
    typer.Option(
        "--period",
        help="last-billing-period: the latest complete period (what the 15th's sync uses); "
        "current: usage since the last sync day.",
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="Pretend today is this date (default: today in billing.timezone).",
        show_default=False,
    ),
]


def parse_as_of(value: str | None) -> dt.date | None:
    """The date of `--as-of` (None: today, as the engine reckons it)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ReconcileError(f"--as-of: {value!r} is not a date, expected YYYY-MM-DD") from None


MaxDurationOption = Annotated[
    str | None,
    typer.Option(
        "--max-duration",
        metavar="DURATION",
        help="Stop the run after this long (3000, 50m, 1h; default 50m): no new write "
        'starts, the run is recorded interrupted ("time limit") with what it wrote, exit 124.',
        envvar="RECONCILE_MAX_DURATION",
        show_envvar=True,
        show_default=False,
    ),
]


# --- plan ------------------------------------------------------------------------------------

PlanOutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Save the plan (with a state snapshot) for `apply FILE`.",
        show_default=False,
        callback=check_out_path,
    ),
]
PlanFormatOption = Annotated[Format, typer.Option("--format", help="Output format.")]
DetailedExitcodeOption = Annotated[
    bool,
    typer.Option("--detailed-exitcode", help="Exit 2 when the plan has changes (0: none)."),
]
PlanIfDueOption = Annotated[
    bool,
    typer.Option(
        "--if-due",
        help="For the daily schedule: plan the last billing period only when it is due "
        "(its sync day up to 6 days after, in billing.timezone, and no successful "
        "scheduled run for it in runs/); otherwise say why on one line, write no plan "
        "file and exit 0.",
    ),
]
BaselineOption = Annotated[
    Path | None,
    typer.Option(
        "--baseline",
        metavar="DIR",
        help="A config directory with the base branch's mappings: label every change "
        "change/drift/dropped and lead the Markdown with what this pull request does.",
        show_default=False,
    ),
]

# --- apply -----------------------------------------------------------------------------------

PlanFileArgument = Annotated[
    Path | None,
    typer.Argument(
        metavar="PLANFILE",
        help="A plan saved by `plan --out`: apply exactly it, or refuse if stale.",
        show_default=False,
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation (CI).")]
ForceOption = Annotated[bool, typer.Option("--force", help="Apply even when the plan is unsafe.")]
ApplyNoEmailOption = Annotated[bool, typer.Option("--no-email", help="Do not send e-mails.")]
TriggerOption = Annotated[
    str | None,
    typer.Option(
        "--trigger",
        metavar="scheduled|manual",
        help="Record the run as scheduled|manual (default: detected).",
        show_default=False,
    ),
]
ApplyFormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        help="text, or json: only the outcome on stdout (schemas/apply.schema.json), "
        "also on failure; the plan and progress go to stderr. Needs --yes without a "
        "terminal.",
    ),
]
LockTimeoutOption = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        metavar="SECONDS",
        min=0,
        help="Wait up to this long for another apply on this config directory to end "
        "(default: refuse at once).",
    ),
]
ApplyIfDueOption = Annotated[
    bool,
    typer.Option(
        "--if-due",
        help="For the schedule: apply nothing (exit 0, one line saying why) when runs/ "
        "already holds a successful scheduled run for this period.",
    ),
]
