"""Plan, apply and re-plan N generated customers against the sandbox with injected latency.

    python benchmarks/plan_scale.py [--customers 2000] [--latency-ms 40] [--concurrency 8]
                                    [--sequential-sample K | --skip-sequential] [--seed 1]
                                    [--repeat N]

The sandbox runs in a child process (multiprocessing, spawn), so the wall times are not
distorted by the simulator competing for this interpreter's GIL, and the memory figures
(ru_maxrss, tracemalloc) are the reconciler's own. The reconciler runs in-process through
the same engine calls `reconcile plan` / `reconcile apply` make.

Steps: 1. full plan (timed; with --repeat N, N plans of the same world, each timed, the
median judged: one run on a shared 2-core VM can be 20% off); 2. converging apply
(timed); 3. no-op re-plan under tracemalloc (must write nothing and plan nothing); 4. the
same plan at max_concurrency 1, in full or on a K-customer sample extrapolated per request.
Targets: DESIGN.md section 10. Exit 1 when a correctness check fails (apply not converged,
duplicates, re-plan not empty); a missed performance target is reported, not fatal.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import math
import multiprocessing as mp
import os
import re
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

AS_OF = dt.date(2026, 11, 24)  # the generated usage history is built around this day
LIST_PAGE = 1000  # ConnectWise's page cap
ADDITIONS_READ = "GET additions"
WRITE_KINDS = ("POST additions", "PATCH additions/{id}", "DELETE additions/{id}")


def request_floor(requests: dict[str, int], changed: int) -> int:
    """DESIGN 13.7's floor for an apply: usage pages + list pages + changed agreements +
    writes, from a request log by kind (every kind but the additions reads and the writes
    is a usage or list page)."""
    writes = sum(requests.get(k, 0) for k in WRITE_KINDS)
    pages = sum(v for k, v in requests.items() if k != ADDITIONS_READ and k not in WRITE_KINDS)
    return pages + changed + writes


def by_kind(requests: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(requests.items()))


# --- the sandbox child -------------------------------------------------------------------


def _active_on(record: dict[str, Any], day: dt.date) -> bool:
    cancelled = record.get("cancelledDate")
    return not cancelled or dt.date.fromisoformat(cancelled[:10]) > day


def _sandbox_child(
    conn: Connection,
    n: int,
    seed: int,
    latency_ms: float,
    root: str,
    rate_limit: float | None = None,
) -> None:
    """Generate the world, write its mapping files, serve it; answer commands on `conn`."""
    from reconciler.sandbox import Sandbox, generate_fixture

    fixture, skus_yaml, customers_yaml = generate_fixture(n, seed=seed)
    mappings = Path(root) / "mappings"
    (mappings / "skus.yaml").write_text(skus_yaml, encoding="utf-8")
    (mappings / "customers.yaml").write_text(customers_yaml, encoding="utf-8")
    managed = {line.split(": ", 1)[1] for line in skus_yaml.splitlines() if "product:" in line}
    with Sandbox(fixture, latency_ms=latency_ms, rate_limit=rate_limit) as sb:
        del fixture
        conn.send(sb.env())
        while True:
            command, _arg = conn.recv()
            if command == "stats":
                conn.send((dict(sb.stats.requests), sb.stats.writes))
            elif command == "faults":
                conn.send(dict(sb.stats.faults))
            elif command == "reset":
                sb.stats.reset()
                conn.send(None)
            elif command == "duplicates":
                seen: dict[tuple[int, str], int] = {}
                for a in sb.all_additions():
                    product = a["product"]["identifier"]
                    if product in managed and _active_on(a, AS_OF) and a["quantity"] > 0:
                        key = (a["agreementId"], product)
                        seen[key] = seen.get(key, 0) + 1
                conn.send(sum(1 for count in seen.values() if count > 1))
            elif command == "rss":
                conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
            else:
                conn.send(None)
                return


class SandboxProcess:
    def __init__(
        self, n: int, seed: int, latency_ms: float, root: Path, rate_limit: float | None = None
    ) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_sandbox_child,
            args=(child, n, seed, latency_ms, str(root), rate_limit),
            daemon=True,
        )
        self._proc.start()
        self.env: dict[str, str] = self._conn.recv()

    def ask(self, command: str, arg: Any = None) -> Any:
        self._conn.send((command, arg))
        return self._conn.recv()

    def stop(self) -> None:
        if self._proc.is_alive():
            self.ask("stop")
        self._proc.join(timeout=10)


# --- the reconciler side -------------------------------------------------------------------


def write_settings(root: Path, concurrency: int) -> None:
    """The example settings, with the concurrency asked for and the safety limits opened:
    a generated world changes a large share of its additions on the first apply."""
    from reconciler.config.resources import example_dir

    text = (example_dir() / "settings.yaml").read_text(encoding="utf-8")
    text = re.sub(r"max_concurrency: \d+", f"max_concurrency: {concurrency}", text)
    text = re.sub(r"max_removal_percent: \d+", "max_removal_percent: 100", text)
    text = re.sub(r"max_quantity_change_percent: \d+", "max_quantity_change_percent: 100", text)
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    (root / "mappings" / "settings.yaml").write_text(text, encoding="utf-8")


@dataclasses.dataclass
class Step:
    seconds: float
    requests: dict[str, int]
    writes: int
    result: Any = None
    max_rss: int = 0  # ru_maxrss of this process when the step ended, bytes
    repeats: list[float] = dataclasses.field(default_factory=list)  # more runs' seconds

    @property
    def median(self) -> float:
        return statistics.median([self.seconds, *self.repeats])

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def timed(sandbox: SandboxProcess, work: Callable[[], Any]) -> Step:
    sandbox.ask("reset")
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    requests, writes = sandbox.ask("stats")
    return Step(seconds, requests, writes, result, max_rss())


def max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="time the full plan N times (before the apply) and judge the median",
    )
    parser.add_argument(
        "--sequential-sample",
        type=int,
        metavar="K",
        help="time the max_concurrency 1 plan on K customers and extrapolate per request",
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    from reconciler.config.loader import load_config
    from reconciler.connectwise.apply import apply_plan
    from reconciler.core.model import PeriodKind
    from reconciler.core.periods import period_for
    from reconciler.engine.clients import Clients
    from reconciler.engine.planning import make_plan

    with tempfile.TemporaryDirectory(prefix="plan-scale-") as tmp:
        root = Path(tmp)
        write_settings(root, args.concurrency)
        sandbox = SandboxProcess(args.customers, args.seed, args.latency_ms, root)
        try:
            os.environ.update(sandbox.env)
            config = load_config(root)
            period = period_for(PeriodKind.LAST_BILLING_PERIOD, config.settings, AS_OF)
            rss_base = rss_now()
            clients = Clients()

            def plan_with(cfg: Any) -> Any:
                async def go() -> Any:
                    async with clients.connectwise(cfg) as cw:
                        return await make_plan(cfg, period, None, cw, clients)

                return asyncio.run(go())

            def apply(planned: Any) -> Any:
                # As `reconcile apply --yes`: the plan's reads, each changed agreement read
                # again just before its first write, writes verified by their answers.
                async def go() -> Any:
                    async with clients.connectwise(config) as cw:
                        return await apply_plan(
                            planned.plan,
                            config,
                            cw,
                            max_concurrency=config.settings.max_concurrency,
                            expected=planned.state,
                        )

                return asyncio.run(go())

            plan_step = timed(sandbox, lambda: plan_with(config))
            plan = plan_step.result.plan
            for _ in range(args.repeat - 1):  # the same reads and planning; results dropped
                plan_step.repeats.append(timed(sandbox, lambda: plan_with(config)).seconds)
            apply_step = timed(sandbox, lambda: apply(plan_step.result))
            # Traced, so its time is inflated; its peak is what one full plan allocates.
            tracemalloc.start()
            replan_step = timed(sandbox, lambda: plan_with(config))
            _, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            duplicates = sandbox.ask("duplicates")
            sandbox_rss = sandbox.ask("rss")
            sequential = sequential_run(args, config, sandbox, plan_with, plan_step)
        finally:
            sandbox.stop()
    peak_rss = max_rss()
    return report(
        args, config, plan, plan_step, apply_step, replan_step, sequential, duplicates,
        rss_base, peak_rss, traced_peak, sandbox_rss,
    )  # fmt: skip


def sequential_run(
    args: argparse.Namespace,
    config: Any,
    sandbox: SandboxProcess,
    plan_with: Callable[[Any], Any],
    full: Step,
) -> tuple[float, str] | None:
    """(seconds for the full plan at max_concurrency 1, how it was obtained)."""
    if args.skip_sequential:
        return None
    settings = dataclasses.replace(config.settings, max_concurrency=1)
    sample = args.sequential_sample
    if sample is None or sample >= len(config.customers):
        step = timed(sandbox, lambda: plan_with(dataclasses.replace(config, settings=settings)))
        return step.seconds, f"measured, {step.total} requests"
    subset = dataclasses.replace(config, settings=settings, customers=config.customers[:sample])
    step = timed(sandbox, lambda: plan_with(subset))
    per_request = step.seconds / step.total
    return (
        per_request * full.total,
        f"extrapolated: {sample} customers took {step.seconds:.2f} s for {step.total} "
        f"requests = {per_request * 1000:.1f} ms/request, x {full.total} requests",
    )


def report(
    args: argparse.Namespace,
    config: Any,
    plan: Any,
    plan_step: Step,
    apply_step: Step,
    replan_step: Step,
    sequential: tuple[float, str] | None,
    duplicates: int,
    rss_base: int,
    peak_rss: int,
    traced_peak: int,
    sandbox_rss: int,
) -> int:
    mb = 1e6
    n = len(config.customers)
    agreements = len({cp.agreement_id for cp in plan.customers if cp.agreement_id is not None})
    conc = config.settings.max_concurrency
    lower = plan_step.total * args.latency_ms / 1000 / conc
    ratio = plan_step.median / lower if lower else math.inf
    lists = {k: v for k, v in plan_step.requests.items() if k != "GET additions"}
    ideal_lists = (
        math.ceil(n / LIST_PAGE) * 2  # companies, agreements (the generator adds 10%)
        + 1  # catalog
        + plan_step.requests.get("GET zt-usage", 0)
        + plan_step.requests.get("GET zt-customers", 0)
    )
    result = apply_step.result
    failed = sum(1 for c in result.customers if not c.ok)
    changed = len({cp.agreement_id for cp in plan.customers if cp.changes})
    floor = request_floor(apply_step.requests, changed)
    replan = replan_step.result.plan

    def ok(good: bool) -> str:
        return "OK" if good else "MISSED"

    rows: list[tuple[str, str, str]] = [
        ("customers / mapped agreements", f"{n} / {agreements}", ""),
        ("latency, max_concurrency", f"{args.latency_ms:g} ms, {conc}", ""),
        *[
            (f"  plan: {kind}", str(count), "")
            for kind, count in sorted(plan_step.requests.items())
        ],
        (
            "plan requests",
            f"{plan_step.total} = {plan_step.requests.get('GET additions', 0)} additions "
            f"+ {sum(lists.values())} list requests",
            f"<= {agreements} + list pages: "
            + ok(plan_step.requests.get("GET additions", 0) <= agreements),
        ),
        ("  list requests vs 1000-item pages", f"{sum(lists.values())} vs {ideal_lists}", ""),
        ("lower bound (req x latency / conc)", f"{lower:.2f} s", ""),
        ("plan wall time", f"{plan_step.seconds:.2f} s", ""),
        *(
            [
                (
                    f"  all {1 + len(plan_step.repeats)} runs",
                    ", ".join(f"{s:.2f}" for s in [plan_step.seconds, *plan_step.repeats]),
                    f"median {plan_step.median:.2f} s",
                ),
                (
                    "  ratio of each run",
                    ", ".join(
                        f"{s / lower:.2f}x" if lower else "-"
                        for s in [plan_step.seconds, *plan_step.repeats]
                    ),
                    "",
                ),
            ]
            if plan_step.repeats
            else []
        ),
        (
            "  ratio to lower bound" + (" (median)" if plan_step.repeats else ""),
            f"{ratio:.2f}x",
            f"<= 1.3x: {ok(ratio <= 1.3)}",
        ),
    ]
    if sequential is not None:
        seconds, how = sequential
        speedup = seconds / plan_step.seconds
        rows += [
            ("sequential plan (max_concurrency 1)", f"{seconds:.1f} s", how),
            ("  speed-up", f"{speedup:.1f}x", f">= 10x: {ok(speedup >= 10)}"),
        ]
    rows += [
        (
            "apply",
            f"{len(plan.changes)} changes, {apply_step.writes} writes, "
            f"{apply_step.total} requests, {apply_step.seconds:.1f} s",
            f"{failed} customers failed",
        ),
        ("  apply requests by kind", by_kind(apply_step.requests), ""),
        (
            "  apply requests vs floor",
            f"{apply_step.total} vs {floor}",
            f"floor = {changed} changed agreements + {apply_step.writes} writes (the plan's "
            f"reads are reused); <= floor + 1%: {ok(apply_step.total <= floor * 1.01)}",
        ),
        ("duplicate active additions", str(duplicates), ok(duplicates == 0)),
        (
            "re-plan",
            f"{len(replan.changes)} changes, {replan_step.writes} writes, "
            f"{replan_step.total} requests, {replan_step.seconds:.2f} s (traced)",
            f"0 writes: {ok(replan_step.writes == 0 and not replan.changes)}",
        ),
        ("RSS after imports + config", f"{rss_base / mb:.0f} MB", ""),
        (
            "peak RSS over plan + apply",
            f"{apply_step.max_rss / mb:.0f} MB",
            f"< 200 MB: {ok(apply_step.max_rss < 200 * mb)}; reconciler only (ru_maxrss)"
            + ("; with --repeat, while a second plan was built" if plan_step.repeats else ""),
        ),
        ("  ru_maxrss after the plan", f"{plan_step.max_rss / mb:.0f} MB", ""),
        ("  ru_maxrss at the end", f"{peak_rss / mb:.0f} MB", "incl. tracemalloc's own tables"),
        ("tracemalloc peak (one full re-plan)", f"{traced_peak / mb:.0f} MB", ""),
        ("sandbox child process RSS", f"{sandbox_rss / mb:.0f} MB", "not counted above"),
    ]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:<{value_width}}  {note}".rstrip())
    correct = not failed and duplicates == 0 and replan_step.writes == 0 and not replan.changes
    if not correct:
        print("FAILED: apply did not converge cleanly", file=sys.stderr)
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
