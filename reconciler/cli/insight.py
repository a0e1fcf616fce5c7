"""`discover` and `report`: onboarding proposals and revenue assurance (DESIGN 12.8).

Parsing and rendering only; `insight`, `discover`, `report` do the work. Both commands are
read-only towards ConnectWise and ZeroTek.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from reconciler.cli.application import ConfigDirOption, app, command_for, config_dir_of
from reconciler.cli.options import AsOfOption, PeriodOption
from reconciler.core.vocabulary import PeriodKind

# discover.DEFAULT_MIN_CONFIDENCE; not imported from there, which would load rapidfuzz for
# every `reconcile --help` (tests/test_cli_conventions.py checks the two agree).
DEFAULT_MIN_CONFIDENCE = 0.9


class DiscoverFormat(StrEnum):
    YAML = "yaml"
    JSON = "json"


@app.command()
def discover(
    ctx: typer.Context,
    fmt: Annotated[
        DiscoverFormat,
        typer.Option("--format", help="yaml: ready to paste, commented; json: for scripts."),
    ] = DiscoverFormat.YAML,
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Append the proposals at or above --min-confidence to the mapping files "
            "(existing text is kept byte for byte), then validate.",
        ),
    ] = False,
    min_confidence: Annotated[
        float,
        typer.Option("--min-confidence", min=0, max=1, help="Threshold for --write."),
    ] = DEFAULT_MIN_CONFIDENCE,
    as_of: AsOfOption = None,
    config_dir: ConfigDirOption = None,
) -> None:
    """Propose mappings for unmapped ZeroTek customers (company + agreement) and SKUs in use
    (catalog product), each with a confidence and the reason. Read-only towards both APIs;
    never changes an existing mapping."""
    import asyncio

    from reconciler.cli.options import parse_as_of
    from reconciler.cli.progress import busy
    from reconciler.config.loader import load_config
    from reconciler.engine import collector
    from reconciler.engine import insight_reads as insight
    from reconciler.engine.manager import READING
    from reconciler.insight import discover_output

    root = config_dir_of(ctx, config_dir)
    config = load_config(root)
    day = parse_as_of(as_of)
    with busy(READING), collector.quiet():
        found = asyncio.run(insight.run_discover(config, day))
    if fmt is DiscoverFormat.JSON:
        typer.echo(discover_output.render_json(found, min_confidence), nl=False)
    else:
        typer.echo(discover_output.render_yaml(found, min_confidence), nl=False)
    if write:
        today = found.window[1].isoformat()
        written = discover_output.write_proposals(root, found, min_confidence, today)
        if not written:
            typer.echo(f"nothing at confidence >= {min_confidence:.2f}: no file changed", err=True)
        for rel, count in written.items():
            typer.echo(f"appended {count} mapping(s) to {rel}", err=True)
        if written:
            again = command_for(root, "plan")
            typer.echo(f"mappings valid; review with `git diff` and `{again}`", err=True)
    elif fmt is not DiscoverFormat.JSON and _any_proposed(found):
        typer.echo(
            f"next: review the proposals, then `{command_for(root, 'discover', '--write')}` "
            "appends those at --min-confidence or above to mappings/",
            err=True,
        )


def _any_proposed(found: Any) -> bool:
    return any(p.proposed for p in found.customers) or any(p.proposed for p in found.skus)


class ReportFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    CSV = "csv"
    JSON = "json"


@app.command()
def report(
    ctx: typer.Context,
    period: PeriodOption = PeriodKind.LAST_BILLING_PERIOD,
    as_of: AsOfOption = None,
    fmt: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            help="text; markdown (with a chart of the largest discrepancies); csv (one row "
            "per customer x product discrepancy); json (schemas/report.schema.json).",
        ),
    ] = ReportFormat.TEXT,
    config_dir: ConfigDirOption = None,
) -> None:
    """Revenue assurance: per customer and product, ZeroTek users vs the quantity
    ConnectWise bills; under- and over-billed licences and money per month, usage of
    unmapped customers and SKUs valued at the catalog price, margins, totals. Read-only."""
    import asyncio

    from reconciler.cli.options import parse_as_of
    from reconciler.cli.progress import busy
    from reconciler.config.loader import load_config
    from reconciler.core.periods import period_for
    from reconciler.engine import collector
    from reconciler.engine import insight_reads as insight
    from reconciler.engine.manager import READING
    from reconciler.insight import report_render

    config = load_config(config_dir_of(ctx, config_dir))
    window = period_for(period, config.settings, parse_as_of(as_of))
    with busy(READING), collector.quiet():
        found = asyncio.run(insight.run_report(config, window))
    typer.echo(report_render.render(found, fmt.value), nl=False)
    from reconciler.insight.report import Kind

    unmapped = {Kind.UNMAPPED_CUSTOMER, Kind.UNMAPPED_SKU}
    if fmt is ReportFormat.TEXT and any(r.kind in unmapped for r in found.rows):
        root = config_dir_of(ctx, config_dir)
        typer.echo(
            f"next: `{command_for(root, 'discover')}` proposes mappings for the unmapped ones",
            err=True,
        )
