"""ZeroTek usage client and source selection against the sandbox (respx only for payloads
no honest server sends)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from example_usage import CURRENT_USAGE as EXPECTED_CURRENT
from example_usage import LAST_USAGE as EXPECTED_LAST
from respx_pool import POOL

from reconciler.config.loader import load_config
from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config, PeriodKind
from reconciler.core.periods import Period
from reconciler.core.state import Usage
from reconciler.engine.clients import Clients
from reconciler.net.errors import ApiError
from reconciler.net.settings import HttpSettings
from reconciler.sandbox import Sandbox
from reconciler.usage import fetch_usage
from reconciler.usage.zerotek import ZeroTekClient, zerotek_rows

REPO = Path(__file__).resolve().parents[2]
D = dt.date
LAST = Period(PeriodKind.LAST_BILLING_PERIOD, D(2026, 10, 16), D(2026, 11, 15), D(2026, 11, 24))
CURRENT = Period(PeriodKind.CURRENT, D(2026, 11, 16), D(2026, 11, 24), D(2026, 11, 24))


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(REPO)


def usage(config: Config, sb: Sandbox, period: Period, ids: list[str] | None = None) -> Usage:
    return asyncio.run(
        fetch_usage(config, period, ids, zerotek=lambda: Clients(sb.env()).zerotek(config))
    )


@pytest.mark.parametrize(
    ("period", "expected"), [(LAST, EXPECTED_LAST), (CURRENT, EXPECTED_CURRENT)]
)
def test_bulk_usage_over_cursor_pages_for_both_windows(
    sb: Sandbox, config: Config, period: Period, expected: dict[str, dict[str, int]]
) -> None:
    sb.zerotek_page_sizes = (3, 4)  # many small pages: the cursor must be followed
    got = usage(config, sb, period)
    assert got.users == expected
    assert got.period == period
    assert got.known_customers is not None
    assert got.known_customers["zt-0098"] == "Dormant LLC"
    assert got.known_customers["zt-0003"] == 'Big "Quote" Ltd'
    assert len(got.known_customers) == 9
    rows = sum(len(s) for s in expected.values())
    assert sb.stats["GET zt-usage"] == -(-rows // 4)
    assert sb.stats["GET zt-customers"] == 3


def test_few_customers_use_the_per_customer_call(sb: Sandbox, config: Config) -> None:
    got = usage(config, sb, LAST, ["zt-0001", "zt-0006", "zt-0098", "zt-0001"])
    assert got.users == {k: EXPECTED_LAST[k] for k in ("zt-0001", "zt-0006")}
    assert set(got.known_customers or {}) == {"zt-0001", "zt-0006", "zt-0098"}
    assert sb.stats["GET zt-customer-usage"] == 3
    assert sb.stats["GET zt-usage"] == 0


def test_unknown_customer_is_left_out_of_the_known_ones(sb: Sandbox, config: Config) -> None:
    """A ZeroTek 404 (with its error body) for one customer does not stop the others: the
    planner warns about it and leaves it untouched, as in a full sync."""
    got = usage(config, sb, LAST, ["zt-0404", "zt-0001"])
    assert got.known_customers == {"zt-0001": "zt-0001"}
    assert got.users == {"zt-0001": EXPECTED_LAST["zt-0001"]}


def test_faults_are_retried_to_the_same_answer(sb: Sandbox, config: Config) -> None:
    sb.zerotek_page_sizes = (1, 2)  # 17 pages: faults hit several of them
    sb.configure_faults(error_500=0.15, error_429=0.15, drop=0.1, retry_after=0, seed=11)

    async def go() -> Usage:
        async with ZeroTekClient(
            sb.zerotek_url, sb.zerotek_token, http=HttpSettings(max_retries=12, backoff_base=0.01)
        ) as zt:
            usage, known = await asyncio.gather(zerotek_rows(zt, LAST), zt.customers())
            assert known  # the directory's pages, under the same faults
            return usage

    assert asyncio.run(go()).users == EXPECTED_LAST
    assert sb.stats.faults.total() >= 3


def test_rejected_token_message_has_no_token(sb: Sandbox, config: Config) -> None:
    env = sb.env() | {"ZEROTEK_API_TOKEN": "zt_wrong_token_123"}
    with pytest.raises(ApiError) as err:
        asyncio.run(fetch_usage(config, LAST, zerotek=lambda: Clients(env).zerotek(config)))
    assert str(err.value).startswith(
        "ZeroTek rejected the credentials (ZEROTEK_API_TOKEN): 401 unauthorized: "
    )
    assert "zt_wrong_token_123" not in str(err.value)
    assert err.value.__context__ is None and err.value.__cause__ is None


def test_error_body_becomes_one_line(sb: Sandbox) -> None:
    async def go() -> None:
        async with ZeroTekClient(sb.zerotek_url, sb.zerotek_token) as zt:
            await zt.customers()
            await zt.usage(D(2026, 11, 15), D(2026, 10, 16))

    with pytest.raises(ApiError) as err:
        asyncio.run(go())
    assert str(err.value) == (
        "ZeroTek 400 invalid_request: start 2026-11-15 is after end 2026-10-16 on GET /v1/usage"
    )


def test_missing_token_names_the_variable(sb: Sandbox, config: Config) -> None:
    env = {k: v for k, v in sb.env().items() if k != "ZEROTEK_API_TOKEN"}
    with pytest.raises(ReconcileError, match="set the environment variable ZEROTEK_API_TOKEN"):
        asyncio.run(fetch_usage(config, LAST, zerotek=lambda: Clients(env).zerotek(config)))


# --- hostile payloads ----------------------------------------------------------------------

BASE = "https://zt.example"


def _bulk(*pages: dict[str, Any]) -> Usage:
    with respx.mock(using=POOL) as router:
        answers = [httpx.Response(200, json=p) for p in pages]
        router.get(BASE + "/v1/usage").mock(side_effect=answers)

        async def go() -> Usage:
            async with ZeroTekClient(BASE, "tok-secret") as zt:
                return await zerotek_rows(zt, LAST)

        return asyncio.run(go())


@pytest.mark.parametrize(
    ("pages", "problem"),
    [
        (
            [{"data": [{"customer_id": "a", "sku": "S", "users": "42"}], "next_cursor": None}],
            "users is '42', expected a whole number >= 0",
        ),
        (
            [{"data": [{"customer_id": "a", "users": 1}], "next_cursor": None}],
            "sku is None, expected a non-empty string",
        ),
        ([{"data": {}, "next_cursor": None}], "data is not a list"),
        (
            [{"data": [], "next_cursor": "c1"}, {"data": [], "next_cursor": "c1"}],
            "next_cursor repeats 'c1'",
        ),
    ],
)
def test_hostile_payloads_are_one_line_errors(pages: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(ReconcileError) as err:
        _bulk(*pages)
    assert str(err.value).startswith("ZeroTek returned a malformed response on GET /v1/usage: ")
    assert problem in str(err.value)


@pytest.mark.parametrize("second", ["S", "s", " S ", "s\t"], ids=["exact", "case", "spaces", "tab"])
def test_one_sku_in_two_spellings_is_that_customers_error_never_summed(second: str) -> None:
    # DESIGN 13.3: ZeroTek listing one SKU twice for a customer contradicts itself; summing
    # billed 10 for 5 users, and an exact repeat used to stop every customer's sync.
    got = _bulk(
        {
            "data": [
                {"customer_id": "a", "sku": "S", "users": 5},
                {"customer_id": "b", "sku": "S ", "users": 3},
            ],
            "next_cursor": "c",
        },
        {"data": [{"customer_id": "a", "sku": second, "users": 5}], "next_cursor": None},
    )
    assert got.users == {"a": {"S": 5}, "b": {"S": 3}}  # trimmed; never 10
    assert set(got.problems) == {"a"}
    assert "one SKU in two spellings" in got.problems["a"]


def test_zero_user_rows_are_dropped() -> None:
    got = _bulk(
        {
            "data": [
                {"customer_id": "a", "sku": "S", "users": 0},
                {"customer_id": "b", "sku": "S", "users": 3},
            ],
            "next_cursor": None,
        }
    )
    assert got.users == {"b": {"S": 3}}
