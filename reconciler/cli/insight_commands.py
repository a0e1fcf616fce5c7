"""The insight commands, all read-only towards ConnectWise and ZeroTek: `activity` (the
sync log under runs/), `check-unmapped` (ZeroTek SKUs and customers in use but not mapped),
`discover` (onboarding proposals) and `report` (revenue assurance, DESIGN 12.8).

Parsing and rendering only; history, the engine's reads, `insight`, `discover` and `report`
do the work, imported inside each command so `reconcile --help` stays fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from reconciler.cli.application import (
    ConfigDirOption,
    app,
    command_for,
    config_dir_of,
    lock_command,
    verbose_of,
)
from reconciler.cli.options import AsOfOption, OutputFormat, PeriodOption, parse_as_of
from reconciler.core.errors import ReconcileError
from reconciler.core.vocabulary import PeriodKind
from reconciler.secure.untrusted import plain


class ActivityFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command()
def activity(
    ctx: typer.Context,
    run_id: Annotated[
        str | None,
        typer.Argument(
            metavar="RUN_ID",
            help="Show this run in detail (an id from the list, or a unique prefix of one).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="List at most this many runs, newest first.")
    ] = 20,
    fmt: Annotated[
        ActivityFormat, typer.Option("--format", help="text, or json (the run records).")
    ] = ActivityFormat.TEXT,
    rebuild_index: Annotated[
        bool,
        typer.Option(
            "--rebuild-index",
            help="Regenerate runs/INDEX.md from the run files (under the config directory's "
            "lock) and exit; the sync workflow does this instead of merging INDEX.md.",
        ),
    ] = False,
    config_dir: ConfigDirOption = None,
) -> None:
    """The sync log: past runs newest first (outcome, changes, revenue delta, errors), or
    one run's details. Reads runs/ in the config directory; runs/INDEX.md is the same list."""
    from reconciler.engine import history
    from reconciler.records import runview
    from reconciler.secure.untrusted import json_dumps

    root = config_dir_of(ctx, config_dir)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise ReconcileError(f"config directory {root} {what} (pass --config-dir)")
    if not (root / "mappings").is_dir() and not history.runs_dir(root).is_dir():
        raise ReconcileError(
            f"{root} is not a config directory: it has neither mappings/ nor runs/ "
            "(pass --config-dir, or run `reconcile init`)"
        )
    if rebuild_index:
        typer.echo(f"rebuilt {history.rebuild_index(root, command=lock_command())}")
        return
    if run_id is not None:
        run = history.load_run(root, run_id)
        as_json = fmt is ActivityFormat.JSON
        typer.echo(json_dumps(run.to_json(), indent=2) if as_json else runview.render_run_text(run))
        return
    runs = history.list_runs(root, limit)
    if fmt is ActivityFormat.JSON:
        typer.echo(json_dumps({"runs": [r.as_json() for r in runs]}, indent=2))
    elif not runs:
        typer.echo(f"No runs yet under {history.runs_dir(root)}")
    else:
        typer.echo(runview.render_runs_text(runs))


@app.command("check-unmapped")
def check_unmapped(
    ctx: typer.Context,
    no_email: Annotated[
        bool, typer.Option("--no-email", help="List only; send no e-mail.")
    ] = False,
    as_of: AsOfOption = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="text, or json: the lists valued, alone on stdout (schemas/unmapped.schema.json).",
        ),
    ] = OutputFormat.TEXT,
    summary: Annotated[
        Path | None,
        typer.Option(
            "--summary",
            metavar="FILE",
            help="Also append the list as Markdown to FILE (the workflow passes "
            "$GITHUB_STEP_SUMMARY).",
            show_default=False,
        ),
    ] = None,
    config_dir: ConfigDirOption = None,
) -> None:
    """Daily: list mapped customers whose current-period usage includes a ZeroTek SKU with
    no mapping (customer, SKU, users) and e-mail administrators + billing while any remain.
    Silent when none. Exit 0 either way; 1 on errors (including a failed e-mail)."""
    from reconciler.cli.progress import requests_shown
    from reconciler.config.loader import load_config
    from reconciler.engine.manager import SyncEngine
    from reconciler.plan import render
    from reconciler.secure.scrub import scrub

    engine = SyncEngine(load_config(config_dir_of(ctx, config_dir)))
    with requests_shown(engine, verbose_of(ctx)):
        found = engine.check_unmapped(parse_as_of(as_of), send_email=not no_email)
    if summary is not None:
        with summary.open("a", encoding="utf-8") as fh:
            fh.write(scrub(render.unmapped_markdown(found.rows, found.period)))
    if fmt is OutputFormat.JSON:
        from reconciler.cli.json_output import unmapped_json
        from reconciler.secure.untrusted import json_dumps

        currency = engine.config.settings.currency
        doc = unmapped_json(found.period, currency, found.valued_skus, found.customers,
                            found.price_note, found.email)  # fmt: skip
        typer.echo(json_dumps(doc, indent=2))
    elif not found.any:
        typer.echo("No unmapped SKUs in use.")
    else:
        _show_unmapped(engine.config.settings.currency, found)
    if found.email is not None:
        typer.echo(f"e-mail {found.email.kind}: {plain(found.email.detail)}", err=True)
        if found.email_failed:
            raise typer.Exit(1)


def _show_unmapped(currency: str, found: Any) -> None:
    from reconciler.core.money import display
    from reconciler.plan import render

    if found.rows:
        typer.echo(f"Customers using unmapped ZeroTek SKUs ({found.period}):")
        typer.echo(render.unmapped_text(found.rows))
    if found.customers:
        if found.rows:
            typer.echo("")
        typer.echo(f"ZeroTek customers with usage but no mapping ({found.period}):")
        table = [
            (r.customer_name, r.customer_id, r.sku, str(r.zerotek_users),
             "not priced" if r.amount is None else display(r.amount, currency=currency))
            for r in found.customers
        ]  # fmt: skip
        header = ("Customer", "Customer id", "SKU", "Users", "Per month")
        typer.echo("\n".join(render.text_table([header, *table])))


# discover.DEFAULT_MIN_CONFIDENCE; not imported from there, which would load rapidfuzz for
# every `reconcile --help` (tests/cli/test_cli_conventions.py checks the two agree).
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

    from reconciler.cli.progress import busy
    from reconciler.config.loader import load_config
    from reconciler.engine import collector
    from reconciler.engine import insight_reads as insight
    from reconciler.engine.interface import READING
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

    from reconciler.cli.progress import busy
    from reconciler.config.loader import load_config
    from reconciler.core.periods import period_for
    from reconciler.engine import collector
    from reconciler.engine import insight_reads as insight
    from reconciler.engine.interface import READING
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
