"""The sandbox's own CPU per request, in-process (no HTTP, no injected latency).

    python benchmarks/sandbox_cpu.py [--customers 10000] [--seed 1]

The scale benchmarks measure the reconciler's latency against the sandbox, whose handler
threads share one GIL: CPU the sandbox spends on a request is latency added to every
concurrent request, which the real ConnectWise would not add. This prints that CPU for
the requests a plan makes in bulk: the chunked `identifier in (...)` and
`company/id in (...)` list queries exactly as the client chunks them (MAX_URL, the plan's
`fields=`), the first of each kind separately (it builds the table's lookup index),
ZeroTek's usage count of a window (computed once per window, under the world's lock) and
one page of ZeroTek customers. Times are CPU time of this process (time.process_time).
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Callable
from email.message import Message
from urllib.parse import quote_plus

from reconciler.connectwise.client import MAX_URL, PAGE_SIZE
from reconciler.connectwise.conditions import in_chunks
from reconciler.connectwise.state import AGREEMENT_FIELDS, AGREEMENTS, COMPANIES, COMPANY_FIELDS
from reconciler.sandbox import Sandbox, generate_fixture, usage_counts
from reconciler.sandbox.connectwise import PREFIX
from reconciler.sandbox.fixtures import CURRENT_END, CURRENT_START
from reconciler.sandbox.wire import Request


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    fixture, _, _ = generate_fixture(args.customers, seed=args.seed)
    sb = Sandbox(fixture)
    base = f"http://127.0.0.1:54321{PREFIX}"  # what the client's URLs start with
    basic = f"{sb.company_id}+{sb.public_key}:{sb.private_key}".encode()
    cw_headers = Message()
    cw_headers["Authorization"] = "Basic " + base64.b64encode(basic).decode()
    cw_headers["clientId"] = sb.client_id
    print(
        f"{args.customers} customers: {len(sb.companies)} companies, "
        f"{len(sb.agreements)} agreements, {len(fixture.assignments)} ZeroTek assignments"
    )

    identifiers = sorted(c["identifier"] for c in sb.companies.values())
    company_ids = sorted(c["id"] for c in sb.companies.values())
    for path, field, values, fields in [
        (COMPANIES, "identifier", identifiers, COMPANY_FIELDS),
        (AGREEMENTS, "company/id", company_ids, AGREEMENT_FIELDS),
    ]:
        fixed = len(base) + len(path) + len("?conditions=") + len(f"&fields={quote_plus(fields)}")
        fixed += len(f"&page=9999&pageSize={PAGE_SIZE}")
        chunks = in_chunks(field, values, max(MAX_URL - fixed, 200))
        times, records = [], 0
        for chunk in chunks:
            query = [("conditions", chunk), ("fields", fields), ("pageSize", str(PAGE_SIZE))]
            req = Request("GET", PREFIX + path, query, cw_headers, b"", "127.0.0.1:54321")
            started = time.process_time()
            resp = sb._dispatch(req, 100)
            times.append(time.process_time() - started)
            assert resp is not None and resp.status == 200, resp
            records += len(json.loads(resp.body))
        rest = times[1:] or times
        print(
            f"GET {path} ({field} in ...): {len(chunks)} requests of ~{len(values) // len(chunks)}"
            f" values, {records} records; first {times[0] * 1000:.1f} ms, then "
            f"{sum(rest) / len(rest) * 1000:.2f} ms CPU per request"
        )

    best = min(
        _cpu(lambda: usage_counts(fixture.assignments, CURRENT_START, CURRENT_END))
        for _ in range(3)
    )
    print(f"ZeroTek usage_counts of one window: {best * 1000:.0f} ms CPU (best of 3)")

    zt_headers = Message()
    zt_headers["Authorization"] = f"Bearer {sb.zerotek_token}"
    cursor, pages, spent = None, 0, 0.0
    while True:
        query = [("cursor", cursor)] if cursor else []
        req = Request("GET", "/zerotek/v1/customers", query, zt_headers, b"", "127.0.0.1:54321")
        started = time.process_time()
        resp = sb._dispatch(req, 100)
        spent += time.process_time() - started
        assert resp is not None and resp.status == 200, resp
        pages += 1
        cursor = json.loads(resp.body)["next_cursor"]
        if not cursor:
            break
    print(f"ZeroTek GET /v1/customers: {pages} pages, {spent / pages * 1000:.2f} ms CPU per page")


def _cpu(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


if __name__ == "__main__":
    main()
