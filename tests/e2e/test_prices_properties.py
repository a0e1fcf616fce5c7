"""Property tests of prices as desired state (DESIGN 13.4): whatever the prices in
ConnectWise, skus.yaml and the customers' overrides, applying the plan with
`reprice: true` leaves every managed line at its mapped price (where one exists) and a
re-plan changes nothing; with `reprice: false` no existing line's price ever changes.
First on the planner with a simulated apply (many examples), then through the real
`apply` against the sandbox (fewer: each starts a server)."""

import dataclasses
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import world_edits
from clirun import run
from conftest import examples, set_setting
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_builders import CATALOG, config, customer, state, usage
from test_prices import give_prices

from reconciler.config.resources import example_dir
from reconciler.core.model import Settings, SkuMap
from reconciler.core.plan import Action
from reconciler.core.state import Addition, Agreement, Company
from reconciler.plan.planner import plan
from reconciler.sandbox import Sandbox, default_fixture

PRODUCT_OF = {"OKTA-SSO": "ZT-OKTA-SSO", "OKTA-MFA": "ZT-OKTA-MFA", "OKTA-WF": "ZT-OKTA-WF"}
CUSTOMERS = {"zt-1": 1001, "zt-2": 1002, "zt-3": 1003}
PRICES = [Decimal("0"), Decimal("3.00"), Decimal("4.00"), Decimal("4.25"), Decimal("6.5")]

prices = st.sampled_from(PRICES)
lines = st.lists(
    st.tuples(
        st.sampled_from(sorted(CUSTOMERS.values())),
        st.sampled_from([*PRODUCT_OF.values(), "MSP-HELPDESK"]),
        st.integers(min_value=1, max_value=30),
        st.one_of(st.none(), prices),
    ),
    max_size=10,
)
unit_prices = st.fixed_dictionaries({sku: st.one_of(st.none(), prices) for sku in PRODUCT_OF})
overrides = st.fixed_dictionaries(
    {cid: st.dictionaries(st.sampled_from(sorted(PRODUCT_OF)), prices, max_size=2)
     for cid in CUSTOMERS}
)  # fmt: skip
usages = st.fixed_dictionaries(
    {cid: st.dictionaries(st.sampled_from(sorted(PRODUCT_OF)), st.integers(0, 30), max_size=3)
     for cid in CUSTOMERS}
)  # fmt: skip


def _world(raw):
    adds = tuple(
        Addition(i + 1, agreement, CATALOG[p].id, p, qty, unit_price=price)
        for i, (agreement, p, qty, price) in enumerate(raw)
    )
    agreements = tuple(Agreement(a, c, 250, "Active") for c, a in CUSTOMERS.items())
    return state(*adds, agreements=agreements, companies=(Company(250, "ACME", "Acme"),))


def _apply(actual, p):
    """ConnectWise after the plan: adds at the plan's price, updates of quantity and (when
    repriced) unitPrice, removals cancelled."""
    by_id = {a.id: a for adds in actual.additions.values() for a in adds}
    next_id = max(by_id, default=0) + 1
    for c in p.changes:
        if c.action is Action.ADD:
            by_id[next_id] = Addition(
                next_id, c.agreement_id, c.product_id, c.product, c.after, unit_price=c.unit_price
            )
            next_id += 1
        elif c.action is Action.UPDATE:
            current = by_id[c.addition_id]
            price = c.unit_price if c.repriced else current.unit_price
            by_id[c.addition_id] = dataclasses.replace(current, quantity=c.after, unit_price=price)
        else:
            by_id[c.addition_id] = dataclasses.replace(
                by_id[c.addition_id], cancelled_date=p.period.as_of
            )
    grouped = {}
    for a in by_id.values():
        grouped[a.agreement_id] = (*grouped.get(a.agreement_id, ()), a)
    return dataclasses.replace(actual, additions=grouped)


def _live(actual, agreement):
    return [
        a
        for a in actual.additions.get(agreement, ())
        if a.product_identifier in PRODUCT_OF.values() and a.cancelled_date is None and a.quantity
    ]


@settings(max_examples=examples(300), deadline=None)
@given(lines, unit_prices, overrides, usages, st.booleans())
def test_after_apply_every_line_bills_its_mapped_price_or_none_moves(
    raw, unit_price, own, users, reprice
) -> None:
    skus = tuple(SkuMap(sku, p, unit_price=unit_price[sku]) for sku, p in PRODUCT_OF.items())
    customers = [
        customer(cid, agreement=a, prices=tuple(sorted(own[cid].items())))
        for cid, a in CUSTOMERS.items()
    ]
    cfg = config(*customers, settings=Settings(reprice=reprice), skus=skus)
    actual = _world(raw)
    u = usage({cid: {s: n for s, n in skus_.items() if n} for cid, skus_ in users.items()})
    p = plan(cfg, u, actual)
    after = _apply(actual, p)
    before = {a.id: a for adds in actual.additions.values() for a in adds}

    for cp in p.customers:
        agreement = CUSTOMERS[cp.customer_id]
        if cp.errors:
            assert not cp.changes
            continue
        mapped = {PRODUCT_OF[s]: price for s, price in unit_price.items()}
        mapped.update({PRODUCT_OF[s]: price for s, price in own[cp.customer_id].items()})
        for line in _live(after, agreement):
            was = before.get(line.id)
            if not reprice:
                # no existing line's price ever changes; new lines get the mapped price
                assert was is None or line.unit_price == was.unit_price
            elif mapped[line.product_identifier] is not None:
                assert line.unit_price == mapped[line.product_identifier], (line, mapped)
            if was is None and mapped[line.product_identifier] is not None:
                assert line.unit_price == mapped[line.product_identifier]
    if reprice:
        assert plan(cfg, u, after).changes == ()  # converged, prices included
    else:
        assert not any(c.repriced for c in p.changes)


# --- the same property through the real apply, against the sandbox -------------------------

SANDBOX_SKUS = {
    "OKTA-SSO": "ZT-OKTA-SSO",
    "OKTA-MFA": "ZT-OKTA-MFA",
    "OKTA-LCM": "ZT-OKTA-LCM",
    "OKTA-UD": "ZT-OKTA-UD",
    "OKTA-WF": "ZT-OKTA-WF",
}
AGREEMENT_OF = {f"zt-000{i}": 1000 + i for i in range(1, 8)}
EXCLUDED = {("zt-0005", "ZT-OKTA-UD")}  # the example mappings exclude it: never touched
wire_prices = st.sampled_from(["0", "3.00", "4.00", "4.25", "6.5"])


def _sandbox_config(root: Path, unit: dict[str, str | None], own: dict[str, dict[str, str]],
                    reprice: bool) -> None:  # fmt: skip
    shutil.copytree(example_dir(), root / "mappings")
    (root / "mappings" / "skus.yaml").write_text(
        "".join(
            f"- sku: {sku}\n  product: {product}\n"
            + (f"  unit_price: {unit[sku]}\n" if unit.get(sku) is not None else "")
            for sku, product in SANDBOX_SKUS.items()
        )
    )
    for cid, prices in own.items():
        give_prices(root, cid, prices)
    set_setting(root, "reprice", "true" if reprice else "false")
    set_setting(root, "max_price_change_percent", "100000")


@settings(max_examples=examples(12), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.fixed_dictionaries({s: st.one_of(st.none(), wire_prices) for s in SANDBOX_SKUS}),
    st.dictionaries(
        st.sampled_from(sorted(AGREEMENT_OF)),
        st.dictionaries(
            st.sampled_from(["OKTA-SSO", "OKTA-MFA", "OKTA-WF"]),
            wire_prices,
            min_size=1,
            max_size=2,
        ),
        max_size=3,
    ),
    st.dictionaries(
        st.sampled_from([9001, 9002, 9005, 9007, 9008, 9010]),
        st.sampled_from([3.0, 4.0, 4.25]),
        max_size=4,
    ),
    st.booleans(),
)
def test_apply_against_the_sandbox_leaves_mapped_prices_or_moves_none(
    unit, own, edits, reprice
) -> None:
    with tempfile.TemporaryDirectory() as tmp, Sandbox(default_fixture()) as sb:
        root = Path(tmp)
        _sandbox_config(root, unit, own, reprice)
        for addition_id, price in edits.items():
            world_edits.update_addition(sb, addition_id, unitPrice=price)
        before = {a["id"]: a["unitPrice"] for a in sb.all_additions()}
        env: dict[str, str | None] = {**sb.env()}
        result = run(root, "apply", "--yes", "--force", "--no-email", "--as-of", "2026-11-24",
                     env=env)  # fmt: skip
        assert result.exit_code == 0, result.output
        mapped_of = {SANDBOX_SKUS[s]: p for s, p in unit.items()}
        for cid, agreement in AGREEMENT_OF.items():
            mapped = {**mapped_of, **{SANDBOX_SKUS[s]: p for s, p in own.get(cid, {}).items()}}
            for line in sb.additions(agreement):
                product = line["product"]["identifier"]
                live = line["cancelledDate"] is None and line["quantity"]
                if product not in mapped or not live or (cid, product) in EXCLUDED:
                    continue
                was = before.get(line["id"])
                if was is not None and not reprice:
                    assert line["unitPrice"] == was, (cid, line)  # no price ever changes
                elif mapped[product] is not None:
                    assert Decimal(str(line["unitPrice"])) == Decimal(mapped[product]), (cid, line)
        again = run(root, "plan", "--detailed-exitcode", "--as-of", "2026-11-24", env=env)
        assert again.exit_code == 0, again.output  # converged: nothing left to write
