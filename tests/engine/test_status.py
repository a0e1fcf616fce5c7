"""`reconcile status` against the sandbox: each verdict, the exit code, no key material."""

from __future__ import annotations

import base64
import shutil
import socket
from pathlib import Path

import clirun
import pytest

from reconciler.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
ENV_VARS = (
    "CW_API_URL",
    "CW_COMPANY_ID",
    "CW_PUBLIC_KEY",
    "CW_PRIVATE_KEY",
    "CW_CLIENT_ID",
    "ZEROTEK_API_URL",
    "ZEROTEK_API_TOKEN",
    "RECONCILE_CONFIG_DIR",
)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "mappings", tmp_path / "mappings")
    return tmp_path


def status(config_dir: Path, env: dict[str, str]) -> tuple[int, str]:
    full: dict[str, str | None] = dict.fromkeys(ENV_VARS)  # None unsets what the shell has
    full.update(env)
    result = clirun.invoke("status", "--config-dir", str(config_dir), env=full)
    return result.exit_code, result.output


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_active_when_everything_checks_out(sb: Sandbox, config_dir: Path) -> None:
    code, out = status(config_dir, sb.env())
    assert code == 0, out
    assert f"ConnectWise: ok ({sb.cw_url})" in out
    assert f"ZeroTek: ok ({sb.zerotek_url})" in out
    assert "mappings: ok (7 customers, 5 SKUs)" in out
    assert "Status: active\n" in out
    assert out.rstrip().endswith(
        f"next: `reconcile --config-dir {config_dir} plan` shows what a sync would change"
    )


def test_wrong_private_key_is_reported_without_key_material(sb: Sandbox, config_dir: Path) -> None:
    wrong = "WrongPrivateKey-a81c"
    env = sb.env() | {"CW_PRIVATE_KEY": wrong}
    code, out = status(config_dir, env)
    assert code == 1
    assert "ConnectWise: ConnectWise credentials rejected (401)" in out
    assert "ZeroTek: ok" in out
    assert "Status: inactive: procedure 1 (credentials) failed (ConnectWise)" in out
    token = base64.b64encode(f"{sb.company_id}+{sb.public_key}:{wrong}".encode()).decode()
    for secret in (wrong, sb.public_key, token, sb.private_key, sb.zerotek_token):
        assert secret not in out


def test_unreachable_host(sb: Sandbox, config_dir: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v4_6_release/apis/3.0"
    code, out = status(config_dir, sb.env() | {"CW_API_URL": url})
    assert code == 1
    assert f"ConnectWise: host unreachable: {url}: connection failed" in out


def test_wrong_url_answering_404(sb: Sandbox, config_dir: Path) -> None:
    url = sb.base_url + "/v2099_1_release/apis/3.0"
    code, out = status(config_dir, sb.env() | {"ZEROTEK_API_URL": url})
    assert code == 1
    assert f"ZeroTek: wrong URL or credentials: {url} answered 404" in out
    assert "check ZEROTEK_API_URL and the credentials" in out


def test_missing_variables_are_named(sb: Sandbox, config_dir: Path) -> None:
    env = {k: v for k, v in sb.env().items() if k not in ("CW_PUBLIC_KEY", "CW_CLIENT_ID")}
    code, out = status(config_dir, env)
    assert code == 1
    assert "set the environment variables CW_PUBLIC_KEY, CW_CLIENT_ID" in out


def test_deactivated_is_inactive_but_healthy(sb: Sandbox, config_dir: Path) -> None:
    settings = config_dir / "mappings" / "settings.yaml"
    text = settings.read_text()
    assert "enabled: true" in text
    settings.write_text(text.replace("enabled: true", "enabled: false", 1))
    code, out = status(config_dir, sb.env())
    assert code == 0
    assert "Status: inactive: integration is deactivated (reconcile activate)" in out


def test_invalid_mappings_fail_procedure_2_and_still_check_credentials(
    sb: Sandbox, config_dir: Path
) -> None:
    customers = config_dir / "mappings" / "customers.yaml"
    customers.write_text(customers.read_text() + "- id: zt-0001\n  name: Dup\n")
    code, out = status(config_dir, sb.env())
    assert code == 1
    assert "ConnectWise: ok" in out and "ZeroTek: ok" in out
    assert "mappings: invalid:" in out
    assert f"{customers}:" in out or "customers.yaml:" in out
    assert "Status: inactive: procedure 2 (mappings) failed (mappings)" in out


def test_csv_source_skips_zerotek(sb: Sandbox, config_dir: Path) -> None:
    settings = config_dir / "mappings" / "settings.yaml"
    text = settings.read_text()
    assert "source: zerotek" in text
    settings.write_text(text.replace("source: zerotek", "source: csv", 1))
    env = {k: v for k, v in sb.env().items() if not k.startswith("ZEROTEK")}
    code, out = status(config_dir, env)
    assert code == 0, out
    assert "ZeroTek: not used (usage.source: csv)" in out
