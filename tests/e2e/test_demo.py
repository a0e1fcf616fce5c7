"""`reconcile demo` as a new user runs it: the installed console script, in a subprocess."""

import os
import shutil
import subprocess
import sys
from pathlib import Path


def _reconcile() -> list[str]:
    exe = shutil.which("reconcile", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "reconciler"]


def test_demo_runs_plan_apply_replan_and_activity(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CW_", "ZEROTEK_", "SMTP_"))}
    keep = tmp_path / "demo"
    done = subprocess.run(
        [*_reconcile(), "demo", "--dir", str(keep)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Plan: 7 to add, 3 to update, 1 to remove across 7 of 7 customers" in out
    assert "Apply complete: 11 writes, 7 customers ok, 0 with errors." in out
    assert "No changes. ConnectWise matches ZeroTek usage." in out
    assert "success" in out.split("4. reconcile activity")[1]
    assert "Traceback" not in done.stderr
    # --dir keeps a usable config + run log
    assert (keep / "runs" / "INDEX.md").is_file()
    assert (keep / "mappings" / "settings.yaml").is_file()
