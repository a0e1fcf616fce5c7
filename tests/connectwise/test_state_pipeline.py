"""read_state's pipeline (companies -> agreements -> additions, each step started as soon as
the one before has answered enough): it must read exactly what three separate steps read,
with no more requests, and leave nothing running when a step fails."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import world_edits

from reconciler.config.env import cw_credentials_from_env
from reconciler.config.loader import load_config
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.conditions import chunk_values
from reconciler.connectwise.payload import (
    AGREEMENT_FIELDS,
    AGREEMENTS,
    CATALOG,
    CATALOG_FIELDS,
    COMPANIES,
    COMPANY_FIELDS,
    agreement,
    catalog_item,
    company,
)
from reconciler.connectwise.state import read_additions, read_state
from reconciler.core.errors import ReconcileError
from reconciler.core.mapping import agreements_by_company, companies_by_key, resolve_agreement
from reconciler.core.model import Config, CustomerMap
from reconciler.core.state import ActualState
from reconciler.net.settings import HttpSettings
from reconciler.sandbox import Sandbox, generate_fixture
from reconciler.sandbox.connectwise import PREFIX as CW_PREFIX
from reconciler.sandbox.wire import Request, Response, cw_error

REPO = Path(__file__).resolve().parents[2]


def short_urls(sb: Sandbox) -> ConnectWiseClient:
    """Short URLs: a few hundred customers then take dozens of company and agreement
    chunks; three requests in flight at once."""
    creds = cw_credentials_from_env(sb.env())
    return ConnectWiseClient(sb.cw_url, creds, http=HttpSettings(max_concurrency=3), max_url=420)


async def reference(
    cw: ConnectWiseClient, config: Config, customers: tuple[CustomerMap, ...]
) -> ActualState:
    """The same reading as three steps, each waiting for the one before (the algorithm the
    pipeline replaced), from the public parts only."""
    products = config.managed_products
    spelling = {c.company.casefold(): c.company for c in customers}
    identifiers = sorted(spelling.values())
    company_rows = await cw.get_chunked(COMPANIES, "identifier", identifiers, fields=COMPANY_FIELDS)
    catalog_rows = await cw.get_chunked(
        CATALOG, "identifier", list(products), fields=CATALOG_FIELDS
    )
    companies = {}
    for row in company_rows:
        found = company(row)
        name = spelling.get(found.identifier.casefold(), found.identifier)
        companies[name] = dataclasses.replace(found, identifier=name)
    ids = sorted({c.id for c in companies.values()})
    rows = await cw.get_chunked(AGREEMENTS, "company/id", ids, fields=AGREEMENT_FIELDS)
    agreements = {a.id: a for a in (agreement(r, AGREEMENTS) for r in rows)}
    by_key, by_company = (
        companies_by_key(companies.values()),
        agreements_by_company(agreements.values()),
    )
    resolved = sorted(
        {
            a.id
            for c in customers
            if (a := resolve_agreement(c, by_key, agreements, by_company).agreement) is not None
        }
    )
    strays = sorted(
        {c.agreement for c in customers if isinstance(c.agreement, int)} - set(agreements)
    )
    for row in await cw.get_chunked(AGREEMENTS, "id", strays, fields=AGREEMENT_FIELDS):
        stray = agreement(row, AGREEMENTS)
        agreements.setdefault(stray.id, stray)
    additions = {i: await read_additions(cw, i, managed=products) for i in resolved}
    catalog = {}
    for row in catalog_rows:
        item = catalog_item(row)
        item = dataclasses.replace(
            item, identifier=products.spelling(item.identifier) or item.identifier
        )
        catalog[item.identifier] = item
    return ActualState(
        companies=companies, agreements=agreements, catalog=catalog, additions=additions
    )


def world(tmp_path: Path, n: int, latency_ms: float = 0) -> tuple[Sandbox, Config]:
    fixture, skus_yaml, customers_yaml = generate_fixture(n, seed=7)
    (tmp_path / "mappings").mkdir()
    shutil.copy(REPO / "mappings" / "settings.yaml", tmp_path / "mappings" / "settings.yaml")
    (tmp_path / "mappings" / "skus.yaml").write_text(skus_yaml)
    (tmp_path / "mappings" / "customers.yaml").write_text(customers_yaml)
    return Sandbox(fixture, latency_ms=latency_ms), load_config(tmp_path)


def read_both(
    sb: Sandbox, config: Config, customers: tuple[CustomerMap, ...]
) -> tuple[ActualState, ActualState, dict[str, int], dict[str, int]]:
    async def go() -> tuple[ActualState, ActualState, dict[str, int], dict[str, int]]:
        sb.stats.reset()
        async with short_urls(sb) as cw:
            piped = await read_state(cw, config, customers)
        piped_counts = dict(sb.stats.requests)
        sb.stats.reset()
        async with short_urls(sb) as cw:
            ref = await reference(cw, config, customers)
        return piped, ref, piped_counts, dict(sb.stats.requests)

    return asyncio.run(go())


def test_the_pipeline_reads_what_three_separate_steps_read_with_as_few_requests(
    tmp_path: Path,
) -> None:
    sb, config = world(tmp_path, 240)
    with sb:
        by_id = [c for c in config.customers if isinstance(c.agreement, int)]
        by_name = [c for c in config.customers if isinstance(c.agreement, str)]
        name_of = {a["id"]: a["name"] for a in sb.agreements.values()}
        other = int(by_id[2].agreement)
        # Odd mappings the resolution must still get right: an agreement named by name, one
        # of another company named by id (a stray), an unknown company, a company spelled
        # in another case than ConnectWise's, and a name two agreements share.
        odd = {
            c.id: c
            for c in (
                dataclasses.replace(by_id[0], agreement=name_of[int(by_id[0].agreement)]),
                dataclasses.replace(by_id[1], agreement=other),
                dataclasses.replace(by_name[0], company="NO-SUCH-COMPANY"),
                dataclasses.replace(by_name[1], company=by_name[1].company.lower()),
            )
        }
        customers = [odd.get(c.id, c) for c in config.customers]
        by_company: dict[str, list[int]] = {}
        for a in sb.agreements.values():
            by_company.setdefault(a["company"]["identifier"], []).append(a["id"])
        shared, twins = next((k, ids) for k, ids in by_company.items() if len(ids) > 1)
        world_edits.update_agreement(sb, twins[1], name=name_of[twins[0]])
        ambiguous = next(i for i, c in enumerate(customers) if c.company == shared)
        customers[ambiguous] = dataclasses.replace(
            customers[ambiguous], agreement=name_of[twins[0]]
        )
        piped, ref, piped_counts, ref_counts = read_both(sb, config, tuple(customers))
    assert piped == ref
    assert piped.agreements[other].name == name_of[other]  # read, to say whose it is
    assert by_id[1].agreement not in piped.additions
    assert int(by_id[0].agreement) in piped.additions
    assert len(piped.additions) == len(customers) - 3  # not: stray, unknown, ambiguous
    assert piped_counts["GET companies"] == ref_counts["GET companies"] > 10
    assert piped_counts["GET additions"] == ref_counts["GET additions"]
    # Agreements are asked for in full chunks as company ids arrive: at most one more
    # (the last, partial one) than one query over all ids.
    assert ref_counts["GET agreements"] <= piped_counts["GET agreements"]
    assert piped_counts["GET agreements"] <= ref_counts["GET agreements"] + 1


def test_agreements_are_asked_for_while_companies_are_still_being_read(
    tmp_path: Path,
) -> None:
    order: list[str] = []
    sb, config = world(tmp_path, 240)
    sb.log = order.append
    with sb:

        async def go() -> None:
            async with short_urls(sb) as cw:
                await read_state(cw, config, config.customers)

        asyncio.run(go())
    companies = [
        i for i, line in enumerate(order) if line.startswith(f"GET {CW_PREFIX}/company/companies")
    ]
    agreements = [i for i, line in enumerate(order) if "/finance/agreements?" in line]
    additions = [i for i, line in enumerate(order) if line.split("?")[0].endswith("/additions")]
    assert len(companies) > 10
    assert agreements[0] < companies[-1]  # no barrier between companies and agreements
    assert additions and additions[0] > agreements[0]  # never before their agreements


def test_a_failing_step_fails_the_read_and_leaves_no_request_running(tmp_path: Path) -> None:
    sb, config = world(tmp_path, 120, latency_ms=100)  # the others are still in flight
    agreements_answered = 0

    def fail_third_agreements_chunk(req: Request, resp: Response) -> Response:
        nonlocal agreements_answered
        if req.path.endswith("/finance/agreements"):
            agreements_answered += 1
            if agreements_answered == 3:
                return cw_error(400, "InvalidQuery", "injected")
        return resp

    sb.on_response = fail_third_agreements_chunk
    with sb:

        async def go() -> list[asyncio.Task[object]]:
            async with short_urls(sb) as cw:
                with pytest.raises(ReconcileError, match="injected"):
                    await read_state(cw, config, config.customers)
                # Nothing still running the moment the error arrives (issue 25: no sleep).
                return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

        left = asyncio.run(go())
    assert agreements_answered >= 3
    assert left == []


def test_chunk_values_partitions_in_order_and_matches_in_chunks() -> None:
    from reconciler.connectwise.conditions import in_chunks, in_list

    values = [*range(1, 400), 5, 7]  # duplicates dropped
    groups = chunk_values("company/id", values, 300)
    assert [v for g in groups for v in g] == list(range(1, 400))
    assert [in_list("company/id", g) for g in groups] == in_chunks("company/id", values, 300)


def test_twin_companies_equal_up_to_case_read_as_three_steps_read_them(tmp_path: Path) -> None:
    """ConnectWise compares identifiers case-insensitively, so one mapped identifier can
    match two companies (`acme`/`ACME`, `Straße`/`STRASSE`). The later row is the company,
    as in one chunked query: only its agreements are asked for, never the other's."""
    from reconciler.sandbox.records import company_record

    sb, config = world(tmp_path, 120)
    with sb:
        customer = next(c for c in config.customers if isinstance(c.agreement, str))
        original = next(
            r
            for r in sb.companies.values()
            if r["identifier"].casefold() == customer.company.casefold()
        )
        twin = original["identifier"].lower()
        assert twin != original["identifier"]
        world_edits.add_company(sb, company_record(99001, twin, "Twin Ltd"))
        by_id = {c.agreement for c in config.customers if isinstance(c.agreement, int)}
        theirs = {
            a["id"] for a in sb.agreements.values() if a["company"]["id"] == original["id"]
        } - by_id  # (one named by id is read all the same, to say whose it is)
        assert theirs
        piped, ref, piped_counts, ref_counts = read_both(sb, config, config.customers)
    assert piped.companies[customer.company].id == 99001  # the later row, as before
    assert piped == ref
    assert not theirs & piped.agreements.keys()
    assert piped_counts["GET additions"] == ref_counts["GET additions"]


def test_a_400_on_the_identifier_query_is_bisected_to_that_customer(
    sandbox: Sandbox, config_dir: Path
) -> None:
    """Issue 25: one identifier ConnectWise will not take in a condition fails that
    customer alone (its error names it); every other customer is still compared."""
    from typer.testing import CliRunner

    from reconciler.cli import app

    path = config_dir / "mappings" / "customers.yaml"
    path.write_text(path.read_text().replace("company: GLOBEX", "company: GLOB'EX;--", 1))

    def refuse_hostile(req: Request, resp: Response) -> Response:
        if req.path.endswith("/company/companies") and "GLOB'EX" in (req.arg("conditions") or ""):
            return cw_error(400, "InvalidQuery", "the condition could not be parsed")
        return resp

    sandbox.on_response = refuse_hostile
    result = CliRunner().invoke(
        app, ["--config-dir", str(config_dir), "plan", "--as-of", "2026-11-24", "--format", "json"]
    )
    assert "Traceback" not in result.output
    assert result.exit_code == 1  # that customer's error
    doc = json.loads(result.stdout)
    errors = {c["id"]: c["errors"] for c in doc["customers"] if c["errors"]}
    assert list(errors) == ["zt-0006"], errors
    assert "refused the query for company 'GLOB'EX;--'" in errors["zt-0006"][0]
    assert "could not be parsed" in errors["zt-0006"][0]
    assert sum(1 for c in doc["customers"] if c["changes"]) >= 5  # the others compared
