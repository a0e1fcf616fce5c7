"""Issue 25 / DESIGN 13.5: control characters from data are shown escaped in every text,
CSV and GitHub-annotation output; JSON keeps the exact strings.

Names carrying an OSC 52 clipboard write, a screen clear, a hidden OSC 8 hyperlink, a
right-to-left override and C1 controls come from ZeroTek and the mappings;
`report --format csv` runs as a real process on a pty (what a terminal would receive),
`validate --format github` annotates a mapping value carrying them. (JSON's exact strings
are test_hostile_text's.)"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.sandbox import Sandbox, default_fixture
from reconciler.secure.untrusted import escape_controls

OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
CLEAR = "\x1b[2J\x1b[H"
LINK = "\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07"
HOSTILE = f"Acme{OSC52}{CLEAR}{LINK} \u202eevil\u202c \u2066iso\u2069 \x85nel\x9bc1 \x7fdel"
# DESIGN 13.5's set: C0 but tab/newline, DEL, C1, U+202A-E, U+2066-9
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_escape_controls_keeps_tab_and_newline() -> None:
    assert escape_controls("a\tb\nc") == "a\tb\nc"
    assert escape_controls("\x1b[2J\u202e\x9b") == "<U+001B>[2J<U+202E><U+009B>"
    assert not FORBIDDEN.search(escape_controls(HOSTILE))


def _pty_output(command: list[str], env: dict[str, str]) -> str:
    """What a terminal receives on `command`'s stdout (a pty; our own line ends, CR LF,
    as the CSV writes them, are taken off: a CR from data is escaped)."""
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        command, env=env, stdout=follower, stderr=subprocess.DEVNULL, close_fds=True
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert child.wait(60) is not None
    return re.sub("\r+\n", "\n", b"".join(chunks).decode("utf-8", errors="replace"))


def test_report_csv_on_a_terminal_carries_no_control_character(config_dir: Path) -> None:
    fx = default_fixture()
    fx.zerotek_customers = [
        {**c, "name": HOSTILE if c["id"] == "zt-0099" else c["name"]} for c in fx.zerotek_customers
    ]
    path = config_dir / "mappings" / "customers.yaml"
    customers = yaml.safe_load(path.read_text(encoding="utf-8"))
    customers[1]["name"] = HOSTILE
    path.write_text(json.dumps(customers, indent=2), encoding="utf-8")  # JSON is YAML
    with Sandbox(fx) as sb:
        env = {**os.environ, **sb.env(), "PYTHONPATH": os.getcwd(), "TERM": "xterm"}
        command = [sys.executable, "-m", "reconciler", "--config-dir", str(config_dir)]
        shown = _pty_output([*command, "report", "--as-of", "2026-11-24", "--format", "csv"], env)
        assert "customer_id" in shown, shown
        assert "<U+001B>]52;c;" in shown  # visible, inert
        assert not FORBIDDEN.search(shown), repr(FORBIDDEN.findall(shown)[:5])


def test_validate_github_annotations_escape_control_characters(config_dir: Path) -> None:
    path = config_dir / "mappings" / "skus.yaml"
    path.write_text(path.read_text() + f'\n- sku: "{json.dumps(HOSTILE)[1:-1]}"\n  product: 7\n')
    result = CliRunner().invoke(
        app, ["--config-dir", str(config_dir), "validate", "--format", "github"]
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("::error")]
    assert lines, result.output
    assert "<U+001B>" in result.output  # the value was shown, escaped
    assert not FORBIDDEN.search(result.output), repr(FORBIDDEN.findall(result.output)[:5])
