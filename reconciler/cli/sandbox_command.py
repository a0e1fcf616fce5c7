"""`reconcile sandbox`: serve the simulators in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import shlex
import signal
import threading
from pathlib import Path

import typer

from reconciler.core.errors import ReconcileError
from reconciler.sandbox.server import Sandbox


def serve_until_stopped(
    *,
    port: int,
    latency_ms: float,
    fault_rate: float,
    seed: int,
    quiet: bool,
    config_dir: Path | None = None,
    rate_limit: float | None = None,
) -> None:
    log = None if quiet else (lambda line: typer.echo(line, err=True))
    sandbox = Sandbox(
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        seed=seed,
        port=port,
        log=log,
        rate_limit=rate_limit,
    )
    try:
        sandbox.start()
    except OSError as exc:
        raise ReconcileError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    # stdout carries only the export lines, so `eval "$(reconcile sandbox)"`-style use works.
    for name, value in sandbox.env().items():
        typer.echo(f"export {name}={shlex.quote(value)}")
    where = shlex.quote(str(config_dir)) if config_dir is not None else "DIR"
    ready = config_dir is not None and (config_dir / "mappings").is_dir()
    setup = "" if ready else f" (create it with `reconcile init {where}`: the example mappings)"
    typer.echo(
        f"Sandbox listening on {sandbox.base_url} (demo credentials, not secrets). Point the "
        "CLI at it from another terminal: eval the export lines above, then run "
        f"`reconcile --config-dir {where} plan`{setup}. Ctrl-C stops the sandbox.",
        err=True,
    )
    stopped = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sandbox.stop()
        typer.echo("Sandbox stopped.", err=True)
