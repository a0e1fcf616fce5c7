"""Plan and apply N generated customers against a rate-limited sandbox (issue 31).

    python benchmarks/throttle_scale.py [--customers 300] [--rate-limit 1000]
                                        [--latency-ms 40] [--concurrency 8] [--seed 1]

The sandbox (a child process, see plan_scale.py) answers each API from a hidden token
bucket of `--rate-limit` requests a minute (bursts of one second's worth) and 429 +
`Retry-After` when it is empty; the reconciler does not know the limit (no
max_requests_per_minute) and learns it from the 429s. The plan and the converging apply
run in-process through the engine calls `reconcile plan` / `reconcile apply` make.

Per step: requests per API (attempts, 429s included), 429 share of the attempts, wall
time vs the bound `answered requests / rate` of the busier API (the time if every token
the server hands out were used the moment it is there), the throttle's pauses and its
rate at the end. Targets (DESIGN 13.9): no customer failed, wall <= 1.2x the bound, 429s
<= 5% of attempts. Exit 1 when a customer failed or an addition was duplicated; a missed
performance target is reported, not fatal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_scale import AS_OF, SandboxProcess, write_settings


def step_rows(name: str, traffic: Any, seconds: float, per_minute: float) -> list[str]:
    rate = per_minute / 60
    apis = traffic.to_json()
    answered = {k: a["requests"] - a["status_429"] for k, a in apis.items()}
    attempts = sum(a["requests"] for a in apis.values())
    refused = sum(a["status_429"] for a in apis.values())
    bound = max(answered.values()) / rate
    ratio = seconds / bound if bound else float("nan")
    share = refused / attempts if attempts else 0.0
    cw = apis["connectwise"]["throttle"]
    return [
        f"{name}: attempts {attempts} (ConnectWise {apis['connectwise']['requests']}, "
        f"ZeroTek {apis['zerotek']['requests']}), 429s {refused} = {share:.1%} "
        f"(<= 5%: {'OK' if share <= 0.05 else 'MISSED'})",
        f"{name}: wall {seconds:.1f} s vs bound {bound:.1f} s "
        f"({max(answered.values())} answered / {rate:.2f} per s) = {ratio:.2f}x "
        f"(<= 1.2x: {'OK' if ratio <= 1.2 else 'MISSED'})",
        f"{name}: ConnectWise throttle: {cw['pauses']} pauses ({cw['paused_seconds']:.1f} s), "
        f"{cw['decreases']} decreases, lowest {cw['lowest_rate_per_second']}/s, "
        f"at the end {cw['rate_per_second']}/s (limit {rate:.2f}/s)",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--rate-limit", type=float, default=1000.0, metavar="PER_MINUTE")
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from reconciler.config.loader import load_config
    from reconciler.connectwise.apply import apply_plan
    from reconciler.core.model import PeriodKind
    from reconciler.core.periods import period_for
    from reconciler.engine.clients import Clients
    from reconciler.engine.planning import make_plan
    from reconciler.net.stats import Traffic

    notices: list[str] = []
    rows = [
        f"customers {args.customers}, limit {args.rate_limit:g}/min per API, "
        f"latency {args.latency_ms:g} ms, max_concurrency {args.concurrency}"
    ]
    with tempfile.TemporaryDirectory(prefix="throttle-scale-") as tmp:
        root = Path(tmp)
        write_settings(root, args.concurrency)
        sandbox = SandboxProcess(
            args.customers, args.seed, args.latency_ms, root, rate_limit=args.rate_limit
        )
        try:
            os.environ.update(sandbox.env)
            config = load_config(root)
            period = period_for(PeriodKind.LAST_BILLING_PERIOD, config.settings, AS_OF)

            def fresh() -> Clients:
                return Clients(traffic=Traffic(notice=notices.append))

            async def plan(clients: Clients) -> Any:
                async with clients.connectwise(config) as cw:
                    return await make_plan(config, period, None, cw, clients)

            async def apply(clients: Clients, planned: Any) -> Any:
                async with clients.connectwise(config) as cw:
                    return await apply_plan(
                        planned.plan,
                        config,
                        cw,
                        max_concurrency=config.settings.max_concurrency,
                        expected=planned.state,
                    )

            time.sleep(1.5)  # the buckets start full; let nothing else have drawn on them
            clients = fresh()
            started = time.perf_counter()
            planned = asyncio.run(plan(clients))
            rows += step_rows(
                "plan", clients.traffic, time.perf_counter() - started, args.rate_limit
            )
            time.sleep(1.5)
            clients = fresh()
            started = time.perf_counter()
            result = asyncio.run(apply(clients, planned))
            rows += step_rows(
                "apply", clients.traffic, time.perf_counter() - started, args.rate_limit
            )
            failed = sum(1 for c in result.customers if not c.ok)
            duplicates = sandbox.ask("duplicates")
            faults = sandbox.ask("faults")
        finally:
            sandbox.stop()
    rows += [
        f"apply: {len(planned.plan.changes)} changes, {result.writes} writes, "
        f"{failed} customers failed, {duplicates} duplicate active additions",
        f"sandbox: {faults.get('rate_limit', 0)} answered 429 (both steps)",
        f"progress lines: {len(notices)}; first: {notices[0] if notices else '-'}",
    ]
    print("\n".join(rows))
    return 1 if failed or duplicates else 0


if __name__ == "__main__":
    sys.exit(main())
