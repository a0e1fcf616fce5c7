"""`discover` against the sandbox's onboarding world: precision and recall.

    python benchmarks/discover_quality.py [--min-confidence 0.9]

Runs `reconcile discover --format json` as a user would (a real process against the
loopback sandbox seeded with `reconciler.sandbox.discovery`): ZeroTek customers whose
ConnectWise company is spelled differently (legal suffixes, punctuation, case, accents,
abbreviations, spacing, a typo), decoys with a confusable company but no real match, and
ambiguous ones (a tie between companies or agreements, only an expired agreement).

Prints, against the targets of issue 16:
- recall: true matches whose proposal is the right company AND agreement (target >= 90%),
  and the share of them at or above --min-confidence (what `--write` appends);
- precision of the proposals at or above --min-confidence (every one must be right);
- decoys and ambiguous customers proposed at or above --min-confidence (target: none).
Exits 1 when a target is missed. `--scale N` also times the pure matching of N unmapped
customers (half spelled like their company, half matching nothing) against 2.5 N companies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconciler.core.model import Config, Settings
from reconciler.core.state import Agreement, Company, Directory
from reconciler.insight.discover import discover
from reconciler.sandbox import Sandbox
from reconciler.sandbox.discovery import Expected, discovery_fixture

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-24"


def run(min_confidence: float) -> tuple[dict, dict[str, Expected]]:
    fixture, expected = discovery_fixture()
    with tempfile.TemporaryDirectory() as tmp, Sandbox(fixture) as sb:
        shutil.copytree(ROOT / "mappings", Path(tmp) / "mappings")
        env = {**os.environ, **sb.env(), "RECONCILE_CONFIG_DIR": tmp}
        out = subprocess.run(
            [sys.executable, "-m", "reconciler", "discover", "--format", "json",
             "--as-of", AS_OF, "--min-confidence", str(min_confidence)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    return json.loads(out.stdout), expected


def score(result: dict, expected: dict[str, Expected], threshold: float) -> dict[str, float]:
    rows = {c["id"]: c for c in result["customers"]}
    matches = [cid for cid, e in expected.items() if e.kind == "match"]
    others = [cid for cid, e in expected.items() if e.kind != "match"]

    def right(cid: str) -> bool:
        row, e = rows.get(cid), expected[cid]
        return bool(
            row
            and row["company"]
            and row["agreement"]
            and row["company"]["identifier"] == e.company
            and row["agreement"]["id"] == e.agreement
        )

    confident = [c for c in rows.values() if c["agreement"] and c["confidence"] >= threshold]
    correct_confident = [c for c in confident if c["id"] in expected and right(c["id"])]
    return {
        "true_matches": len(matches),
        "recall_proposed": sum(right(c) for c in matches) / len(matches),
        "recall_confident": sum(right(c) and rows[c]["confidence"] >= threshold for c in matches)
        / len(matches),
        "confident": len(confident),
        "precision_confident": len(correct_confident) / len(confident) if confident else 1.0,
        "false_confident": sum(
            1 for c in others if rows.get(c, {}).get("confidence", 0) >= threshold
        ),
        "others": len(others),
    }


def scale(n: int) -> None:
    rng = random.Random(1)
    words = [
        "Alpha",
        "Blue",
        "Cedar",
        "Delta",
        "Eagle",
        "Falcon",
        "Granite",
        "Harbor",
        "Iron",
        "Juniper",
        "Keystone",
        "Lake",
    ]
    kinds = [
        "Dental",
        "Legal",
        "Logistics",
        "Clinic",
        "Schools",
        "Bakery",
        "Realty",
        "Partners",
        "Consulting",
    ]
    companies, agreements, zerotek = [], [], {}
    for i in range(n * 5 // 2):
        name = f"{rng.choice(words)} {rng.choice(words)} {rng.choice(kinds)} {i}"
        companies.append(Company(i + 1, f"C{i:06d}", f"{name} LLC"))
        agreements.append(Agreement(10**6 + i, f"{name} IT", i + 1, "Active", no_ending_date=True))
        if i < n:
            spelled = f"{name}, Inc." if i % 2 else f"Other {rng.choice(kinds)} {i * 7}"
            zerotek[f"zt-{i:06d}"] = (spelled, "active")
    config = Config(Path("."), Settings(), (), (), "")
    directory = Directory(tuple(companies), tuple(agreements), {}, ())
    today = dt.date(2026, 11, 24)
    started = time.perf_counter()
    found = discover(config, zerotek, {}, directory, today, (today, today))
    wall = time.perf_counter() - started
    right = sum(
        1
        for p in found.customers
        if p.company is not None and p.company.id == int(p.customer_id[3:]) + 1
    )
    print(f"scale: {n} customers x {len(companies)} companies matched in {wall:.2f} s "
          f"({right} of {n // 2} spelled-alike found)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-confidence", type=float, default=0.9)
    parser.add_argument("--scale", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.scale:
        scale(args.scale)
    result, expected = run(args.min_confidence)
    expected.setdefault("zt-0099", Expected("decoy"))  # the example data's unmapped startup
    s = score(result, expected, args.min_confidence)
    t = args.min_confidence
    print(f"true matches:                  {s['true_matches']}")
    print(f"recall (right company+agreement proposed): {s['recall_proposed']:.1%}  (target >= 90%)")
    print(f"recall at confidence >= {t:.2f}:        {s['recall_confident']:.1%}")
    print(f"precision at confidence >= {t:.2f}:     {s['precision_confident']:.1%} "
          f"of {s['confident']} proposals  (target 100%)")  # fmt: skip
    print(f"decoys/ambiguous at >= {t:.2f}:         {s['false_confident']} of {s['others']}"
          "  (target 0)")  # fmt: skip
    for row in result["customers"]:
        e = expected.get(row["id"])
        print(f"  {row['id']} {e.kind if e else '?':12} {row['confidence']:.2f}  {row['reason']}")
    ok = s["recall_proposed"] >= 0.9 and s["precision_confident"] == 1.0
    ok = ok and s["false_confident"] == 0
    print("verdict:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
