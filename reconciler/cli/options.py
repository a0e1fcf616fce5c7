"""Option types shared by the commands, kept free of heavy imports: `reconcile --help`
imports this module, not the engine, HTTP client or schema validators behind the commands
(benchmarks/import_time.py)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

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
