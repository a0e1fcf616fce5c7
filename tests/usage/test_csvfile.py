"""The assignment-history CSV usage source: window overlap counting and row errors."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from reconciler.core.errors import ConfigError
from reconciler.core.model import Config, PeriodKind, Settings
from reconciler.core.periods import Period
from reconciler.usage import fetch_usage
from reconciler.usage.csvfile import count_users, read_assignments
from reconciler.usage.zerotek import ZeroTekClient

HEADER = "customer_id,sku,user,assigned_on,unassigned_on\n"
D = dt.date


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "assignments.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_counts_distinct_users_overlapping_the_window_inclusive(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c1,SSO,ann,2026-01-01,\n"  # still assigned
        "c1,SSO,bob,2026-11-15,\n"  # joined on the last day: counts
        "c1,SSO,cat,2026-01-01,2026-10-16\n"  # left on the first day: counts
        "c1,SSO,dan,2026-01-01,2026-10-15\n"  # left the day before: does not
        "c1,SSO,eve,2026-11-16,\n"  # joined the day after: does not
        "c1,SSO,ann,2026-10-20,2026-10-21\n"  # ann again: still one user
        "c1,MFA,ann,2026-11-01,2026-11-02\n"
        "c2,SSO,ann,2026-10-01,\n",  # same user name, other customer
    )
    users = count_users(read_assignments(path), D(2026, 10, 16), D(2026, 11, 15))
    assert users == {"c1": {"SSO": 3, "MFA": 1}, "c2": {"SSO": 1}}
    current = count_users(read_assignments(path), D(2026, 11, 16), D(2026, 11, 24))
    assert current == {"c1": {"SSO": 3}, "c2": {"SSO": 1}}


def test_columns_in_any_order_with_bom_quotes_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "\ufeffuser,sku,customer_id,unassigned_on,assigned_on\n"
        '"O\'Brien, ""Pat""",SSO,c1,,2026-01-01\n'
        "\n"
        "zed,SSO,c1,2026-02-01,2026-01-01\n",
        encoding="utf-8",
    )
    rows = read_assignments(path)
    assert [r.user for r in rows] == ['O\'Brien, "Pat"', "zed"]
    assert rows[1].unassigned_on == D(2026, 2, 1)
    assert str(rows[1].location) == f"{path}:4:1"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # bad date: points at the assigned_on field's column
        ("c1,SSO,ann,2026-13-01,\n", ":2:12: '2026-13-01' is not a date; expected YYYY-MM-DD"),
        ("c1,SSO,ann,01/02/2026,\n", ":2:12: '01/02/2026' is not a date"),
        ("c1,SSO,ann,2026-01-01,soon\n", ":2:23: 'soon' is not a date"),
        ("c1,SSO,ann,2026-01-01\n", ":2:1: 4 fields, expected 5"),
        ("c1,SSO,,2026-01-01,\n", ":2:8: user is empty"),
        (
            "c1,SSO,ann,2026-03-01,2026-02-01\n",
            ":2:23: unassigned_on 2026-02-01 is before assigned_on 2026-03-01",
        ),
    ],
)
def test_malformed_rows_name_file_line_and_column(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        read_assignments(path)
    assert str(err.value).startswith(str(path) + expected)


def test_every_bad_row_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, "c1,SSO,ann,2026-01-01,\nc1,SSO,bob,bad,\nc1,,cat,2026-01-01,x\n")
    with pytest.raises(ConfigError) as err:
        read_assignments(path)
    lines = [str(p) for p in err.value.problems]
    assert lines == [
        f"{path}:3:12: 'bad' is not a date; expected YYYY-MM-DD",
        f"{path}:4:4: sku is empty",
        f"{path}:4:20: 'x' is not a date; expected YYYY-MM-DD",
    ]


@pytest.mark.parametrize(
    "header",
    ["customer,sku,user,assigned_on,unassigned_on\n", "customer_id,sku,user,assigned_on\n", ""],
)
def test_wrong_header_is_an_error_at_line_1(tmp_path: Path, header: str) -> None:
    path = write(tmp_path, "", header=header)
    with pytest.raises(ConfigError) as err:
        read_assignments(path)
    assert str(err.value).startswith(f"{path}:1:1: header is ")
    assert "expected the columns customer_id,sku,user,assigned_on,unassigned_on" in str(err.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="usage CSV file not found"):
        read_assignments(tmp_path / "nope.csv")


def _no_zerotek() -> ZeroTekClient:
    raise AssertionError("a CSV usage source must not reach the ZeroTek API")


def test_fetch_usage_from_csv_source_filters_customers(tmp_path: Path) -> None:
    (tmp_path / "usage").mkdir()
    (tmp_path / "usage" / "assignments.csv").write_text(
        HEADER + "c1,SSO,ann,2026-01-01,\nc2,SSO,bob,2026-01-01,\nc2,SSO,cat,2026-11-20,\n"
    )
    config = Config(tmp_path, Settings(usage_source="csv"), (), (), "")
    period = Period(PeriodKind.CURRENT, D(2026, 11, 16), D(2026, 11, 24), D(2026, 11, 24))
    usage = asyncio.run(fetch_usage(config, period, zerotek=_no_zerotek))
    assert usage.users == {"c1": {"SSO": 1}, "c2": {"SSO": 2}}
    assert usage.known_customers is None
    only = asyncio.run(fetch_usage(config, period, ["c2"], zerotek=_no_zerotek))
    assert only.users == {"c2": {"SSO": 2}}


def test_a_quoted_line_break_stays_in_the_field_and_lines_stay_counted(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        b"customer_id,sku,user,assigned_on,unassigned_on\r\n"
        b'c1,SSO,"a\r\nb",2026-01-01,\r\n'  # one record over two physical lines
        b'c1,SSO,"c\nd",2026-01-01,\n'
        b"c1,SSO,zed,bad,\r\n"
    )
    with pytest.raises(ConfigError) as err:
        read_assignments(path)
    # the bad row is on physical line 6, after two records that took two lines each
    assert [str(p) for p in err.value.problems] == [
        f"{path}:6:12: 'bad' is not a date; expected YYYY-MM-DD"
    ]
    path.write_bytes(path.read_bytes().replace(b"bad", b"2026-01-02"))
    assert [r.user for r in read_assignments(path)] == ["a\r\nb", "c\nd", "zed"]
    assert [r.location.line for r in read_assignments(path)] == [2, 4, 6]
