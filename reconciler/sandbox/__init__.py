"""Loopback simulators of ConnectWise PSA and the ZeroTek usage API, for the demo, the
tests and the benchmarks. Imports nothing of the product (only itself and the standard
library), so it can stand in for the real services in any test.

Supported as what `reconcile demo` and `reconcile sandbox` serve; NOT a public Python API
(names here may change in any release). Test-only edits of the world (a clerk changing a
quantity...) live in tests/world_edits.py: the package changes its world only through the
API it serves.

    with Sandbox() as sb:                 # default_fixture(): the example data
        os.environ.update(sb.env())       # CW_API_URL=http://127.0.0.1:P/v4_6_release/apis/3.0 ...
        sb.configure_faults(error_500=0.1, error_429=0.1, retry_after=0)
        ...
        sb.stats["GET additions"], sb.stats.writes, sb.additions(1001)

One stdlib HTTP server on 127.0.0.1 serves ConnectWise under /v4_6_release/apis/3.0 and
ZeroTek under /zerotek/v1. It follows DESIGN.md section 4 strictly; see connectwise.py,
conditions.py, validation.py and zerotek.py for the exact behaviour and the choices made
where the real API is undocumented.
"""

from reconciler.sandbox.fixtures import default_fixture
from reconciler.sandbox.generate import generate_fixture
from reconciler.sandbox.records import Assignment, Fixture, usage_counts
from reconciler.sandbox.server import Sandbox, Stats

__all__ = [
    "Assignment",
    "Fixture",
    "Sandbox",
    "Stats",
    "default_fixture",
    "generate_fixture",
    "usage_counts",
]
