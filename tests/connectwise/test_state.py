"""read_state / read_additions against the sandbox: what is read, how few requests it
takes, and how malformed payloads are reported."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import world_edits

from reconciler.config.env import cw_credentials_from_env
from reconciler.config.loader import load_config
from reconciler.connectwise.client import ConnectWiseClient
from reconciler.connectwise.state import read_additions, read_state
from reconciler.core.errors import ReconcileError
from reconciler.core.model import Config, CustomerMap
from reconciler.core.state import ActualState, Addition
from reconciler.engine.clients import Clients
from reconciler.sandbox import Sandbox, generate_fixture

REPO = Path(__file__).resolve().parents[2]
D = dt.date


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(REPO)  # the example mappings/, which match the default fixture


def read(
    sb: Sandbox, config: Config, customers: tuple[CustomerMap, ...] | None = None
) -> tuple[ActualState, int]:
    async def go() -> tuple[ActualState, int]:
        async with Clients(sb.env()).connectwise(config) as cw:
            state = await read_state(
                cw, config, config.customers if customers is None else customers
            )
            return state, cw.stats.requests

    return asyncio.run(go())


def test_reads_companies_agreements_catalog_and_mapped_additions(
    sb: Sandbox, config: Config
) -> None:
    state, requests = read(sb, config)
    assert sorted(state.companies) == [
        "ACME", "BIGQUOTE", "CONTOSO", "GLOBEX", "INITECH", "NORTHWIND", "OBRIEN",
    ]  # fmt: skip
    assert state.companies["BIGQUOTE"].name == 'Big "Quote" Ltd'
    # every agreement of the mapped companies, the old expired ACME one included
    assert sorted(state.agreements) == [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011]
    globex = state.agreements[1006]
    assert (globex.company_id, globex.bill_start_date) == (255, D(2026, 12, 1))
    assert state.agreements[1011].status == "Expired"
    assert state.agreements[1004].end_date == D(2026, 12, 10)
    assert sorted(state.catalog) == [
        "ZT-OKTA-LCM", "ZT-OKTA-MFA", "ZT-OKTA-SSO", "ZT-OKTA-UD", "ZT-OKTA-WF",
    ]  # fmt: skip
    assert state.catalog["ZT-OKTA-SSO"].price == Decimal("4.0")
    # additions only for the seven resolved mapped agreements (by id and by name)
    assert sorted(state.additions) == [1001, 1002, 1003, 1004, 1005, 1006, 1007]
    acme = {(a.product_identifier, a.quantity, a.cancelled_date) for a in state.additions[1001]}
    assert acme == {
        ("ZT-OKTA-SSO", 40, None),
        ("ZT-OKTA-MFA", 42, None),
        ("MSP-HELPDESK", 42, None),
        ("ZT-OKTA-LCM", 5, D(2026, 3, 31)),
    }
    assert state.additions[1003] == ()
    assert requests == 3 + 7
    assert sb.stats["GET additions"] == 7


def test_read_additions_parses_every_field(sb: Sandbox) -> None:
    async def go() -> tuple[Addition, ...]:
        async with ConnectWiseClient(sb.cw_url, cw_credentials_from_env(sb.env())) as cw:
            return await read_additions(cw, 1004)

    (sso,) = asyncio.run(go())
    assert sso.agreement_id == 1004 and sso.product_identifier == "ZT-OKTA-SSO"
    assert sso.quantity == 25 and isinstance(sso.quantity, int)
    assert sso.unit_price == Decimal("4.0") and sso.unit_cost == Decimal("2.5")
    assert sso.effective_date == D(2024, 12, 11) and sso.cancelled_date is None
    assert sso.bill_customer == "Billable" and sso.last_updated


def test_agreement_of_another_company_is_read_but_not_its_additions(
    sb: Sandbox, config: Config
) -> None:
    customers = (
        CustomerMap("zt-0001", "Acme Corp", "ACME", 1002),  # 1002 belongs to OBRIEN
        CustomerMap("zt-0005", "Northwind", "NORTHWIND", "No Such Agreement"),
        CustomerMap("zt-0404", "Ghost", "NOSUCHCO", 1005),
    )
    state, requests = read(sb, config, customers)
    assert sorted(state.companies) == ["ACME", "NORTHWIND"]
    assert state.agreements[1002].company_id == 251  # so the planner can say whose it is
    assert 1005 in state.agreements
    assert state.additions == {}  # nothing resolved, nothing fetched
    assert requests == 4  # companies, catalog, agreements, the stray agreement by id


def test_ambiguous_agreement_name_is_not_resolved(sb: Sandbox, config: Config) -> None:
    world_edits.update_agreement(sb, 1011, name="Acme Managed Services")
    state, _ = read(sb, config, (CustomerMap("zt-0001", "Acme", "ACME", "Acme Managed Services"),))
    assert state.additions == {}


def test_request_count_for_50_customers_is_one_per_agreement_plus_list_pages(
    tmp_path: Path,
) -> None:
    fixture, skus_yaml, customers_yaml = generate_fixture(50, seed=4)
    (tmp_path / "mappings").mkdir()
    shutil.copy(REPO / "mappings" / "settings.yaml", tmp_path / "mappings" / "settings.yaml")
    (tmp_path / "mappings" / "skus.yaml").write_text(skus_yaml)
    (tmp_path / "mappings" / "customers.yaml").write_text(customers_yaml)
    config = load_config(tmp_path)
    assert len(config.customers) == 50
    with Sandbox(fixture) as sb:
        state, requests = read(sb, config)
        assert len(state.additions) == 50
        assert sb.stats["GET additions"] == 50
        assert requests == sb.stats.total
    assert requests <= 50 + 4


def test_malformed_payload_is_one_error_naming_endpoint_and_field(
    sb: Sandbox, config: Config
) -> None:
    world_edits.update_agreement(sb, 1003, startDate="next tuesday")
    with pytest.raises(ReconcileError) as err:
        read(sb, config)
    assert str(err.value) == (
        "ConnectWise returned a malformed item on GET /finance/agreements (id 1003): "
        "startDate is 'next tuesday', expected a date YYYY-MM-DDTHH:MM:SSZ"
    )


@pytest.mark.parametrize(
    ("quantity", "problem"),
    [
        ("12", "quantity '12'"),
        (2.5, "quantity 2.5"),
        (-5, "quantity -5"),
        (None, "quantity missing"),
    ],
)
def test_odd_quantity_on_a_managed_addition_is_its_problem_not_the_plans(
    sb: Sandbox, config: Config, quantity: object, problem: str
) -> None:
    # DESIGN 12.3: an error for that customer (the planner reports it), never a failed read
    addition = next(a for a in sb.additions(1004) if a["product"]["identifier"] == "ZT-OKTA-SSO")
    world_edits.update_addition(sb, addition["id"], quantity=quantity)
    state, _ = read(sb, config)
    (sso,) = state.additions[1004]
    assert sso.problem == problem and sso.product_identifier == "ZT-OKTA-SSO"


def test_unmanaged_additions_are_read_leniently(sb: Sandbox, config: Config) -> None:
    # Found: an unmanaged addition with a null identifier or quantity stopped the whole plan.
    world_edits.add_addition(sb, 1001, "MSP-HELPDESK", 3)
    rows = [a for a in sb.additions(1001) if a["product"]["identifier"] == "MSP-HELPDESK"]
    world_edits.update_addition(sb, rows[0]["id"], quantity=None, unitPrice=None)
    world_edits.update_addition(sb, rows[1]["id"], product={"id": 999, "identifier": None})
    state, _ = read(sb, config)
    assert len(state.additions[1001]) == 5
    assert all(a.problem is None for a in state.additions[1001])


def test_fractional_quantity_on_a_product_we_do_not_manage_is_fine(
    sb: Sandbox, config: Config
) -> None:
    helpdesk = next(a for a in sb.additions(1001) if a["product"]["identifier"] == "MSP-HELPDESK")
    world_edits.update_addition(sb, helpdesk["id"], quantity=41.5)
    state, _ = read(sb, config)
    assert len(state.additions[1001]) == 4
