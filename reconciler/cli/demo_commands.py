"""The commands that need no accounts: `sandbox` (the loopback ConnectWise + ZeroTek
simulators, in the foreground) and `demo` (the whole job end to end on them). The work is
in cli.sandbox_command and cli.demo, imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.application import ConfigDirOption, app, config_dir_of


@app.command("sandbox")
def sandbox_command(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1; 0 = any free port.")
    ] = 0,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", min=0, help="Delay added to every request (ms).")
    ] = 0,
    fault_rate: Annotated[
        float,
        typer.Option(
            "--fault-rate",
            min=0,
            max=1,
            help="Share of requests that fail: 1/3 HTTP 500, 1/3 HTTP 429 (Retry-After), "
            "1/3 dropped connections (half of those after committing a write).",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fault generator.")] = 0,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            "--rate-limit",
            min=1,
            metavar="PER_MINUTE",
            help="Requests a minute each API answers (a hidden token bucket, one second's "
            "worth of burst); beyond it, 429 with Retry-After. Default: unlimited.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not log requests to stderr.")] = False,
    config_dir: ConfigDirOption = None,
) -> None:
    """Run the loopback ConnectWise + ZeroTek simulators (the example data) in the foreground
    and print the environment that points the CLI at them. Ctrl-C stops them."""
    from reconciler.cli.sandbox_command import serve_until_stopped
    from reconciler.sandbox import Sandbox
    from reconciler.secure.scrub import declare_public

    # Its export lines are public demo values: printed as they are, even when this shell
    # already holds them as credentials (the scrubber would otherwise redact them).
    sb = Sandbox
    declare_public(sb.company_id, sb.public_key, sb.private_key, sb.client_id, sb.zerotek_token)
    root = config_dir_of(ctx, config_dir)  # named in the hint on how to use the sandbox
    serve_until_stopped(port=port, latency_ms=latency_ms, fault_rate=fault_rate, seed=seed,
                        quiet=quiet, config_dir=root, rate_limit=rate_limit)  # fmt: skip


@app.command()
def demo(
    ctx: typer.Context,
    keep_dir: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            "--config-dir",
            help="Where to put the demo's config and run log (must not hold mappings/ yet). "
            "Default: a new temporary directory, kept afterwards. $RECONCILE_CONFIG_DIR is "
            "not used: the demo never writes into your real config.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Try it with no accounts: start the embedded sandbox, plan, apply, plan again, show the
    sync log."""
    from reconciler.cli.demo import run_demo

    if keep_dir is None and ctx.parent is not None and ctx.parent.obj:
        keep_dir = ctx.parent.obj.get("config_dir")  # `reconcile --config-dir D demo`
    raise typer.Exit(run_demo(keep_dir))
