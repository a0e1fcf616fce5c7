"""Property tests: whatever ZeroTek says and whatever ConnectWise holds, the plan converges
ConnectWise to the desired state on the managed set and never touches anything else."""

import dataclasses
import datetime as dt

from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_builders import AS_OF, CATALOG, SKUS, config, customer, state, usage

from reconciler.core.model import Removal, Settings
from reconciler.core.plan import Action
from reconciler.core.state import Addition, Agreement, Company
from reconciler.plan.planner import finish, plan, prepare

PRODUCTS = [*(s.product for s in SKUS), "MSP-HELPDESK", "OTHER-THING"]
SKU_NAMES = [*(s.sku for s in SKUS), "OKTA-PAM"]
CUSTOMERS = ["zt-1", "zt-2", "zt-3"]
AGREEMENT_OF = {"zt-1": 1001, "zt-2": 1002, "zt-3": 1003}

cancel_dates = st.one_of(
    st.none(),
    st.sampled_from([AS_OF - dt.timedelta(days=30), AS_OF, AS_OF + dt.timedelta(days=5)]),
)
additions = st.lists(
    st.tuples(
        st.sampled_from([1001, 1002, 1003, 2000]),  # 2000: an agreement that is not mapped
        st.sampled_from(PRODUCTS),
        st.integers(min_value=0, max_value=50),
        cancel_dates,
    ),
    max_size=12,
)
usages = st.dictionaries(
    st.sampled_from([*CUSTOMERS, "zt-9"]),
    st.dictionaries(st.sampled_from(SKU_NAMES), st.integers(min_value=1, max_value=50), max_size=4),
    max_size=4,
)
removals = st.sampled_from(list(Removal))


def _world(raw_additions):
    adds = tuple(
        Addition(
            i + 1,
            agreement,
            CATALOG[product].id if product in CATALOG else 990,
            product,
            qty,
            cancelled_date=cancelled,
        )
        for i, (agreement, product, qty, cancelled) in enumerate(raw_additions)
    )
    agreements = (
        *(Agreement(AGREEMENT_OF[c], c, 250, "Active") for c in CUSTOMERS),
        Agreement(2000, "other", 251, "Active"),
    )
    companies = (Company(250, "ACME", "Acme"), Company(251, "OTHER", "Other"))
    return state(*adds, agreements=agreements, companies=companies)


def _apply(actual, p):
    """What ConnectWise looks like after the plan, per the removal policy."""
    by_id = {a.id: a for adds in actual.additions.values() for a in adds}
    next_id = max(by_id, default=0) + 1
    for c in p.changes:
        if c.action is Action.ADD:
            by_id[next_id] = Addition(next_id, c.agreement_id, c.product_id, c.product, c.after)
            next_id += 1
            continue
        current = by_id[c.addition_id]
        if c.action is Action.UPDATE:
            by_id[c.addition_id] = dataclasses.replace(current, quantity=c.after)
        elif p.removal is Removal.CANCEL:
            by_id[c.addition_id] = dataclasses.replace(current, cancelled_date=AS_OF)
        elif p.removal is Removal.ZERO:
            by_id[c.addition_id] = dataclasses.replace(current, quantity=0)
        else:
            del by_id[c.addition_id]
    grouped = {}
    for a in by_id.values():
        grouped[a.agreement_id] = (*grouped.get(a.agreement_id, ()), a)
    return dataclasses.replace(actual, additions=grouped)


def _managed_quantities(actual, agreement_id):
    out = {}
    for a in actual.additions.get(agreement_id, ()):
        if a.product_identifier in {s.product for s in SKUS} and a.active_on(AS_OF) and a.quantity:
            out[a.product_identifier] = out.get(a.product_identifier, 0) + a.quantity
    return out


@settings(max_examples=examples(300), deadline=None)
@given(additions, usages, removals, st.booleans())
def test_plan_converges_and_touches_only_managed_additions(raw, users, removal, excl) -> None:
    customers = [customer(c, agreement=AGREEMENT_OF[c]) for c in CUSTOMERS]
    if excl:
        customers[0] = customer("zt-1", agreement=1001, exclude_skus=("OKTA-MFA",))
    cfg = config(*customers, settings=Settings(removal=removal))
    actual = _world(raw)
    u = usage(users)
    p = plan(cfg, u, actual)

    assert p == plan(cfg, u, actual)  # deterministic
    managed_ids = {
        a.id
        for agreement in AGREEMENT_OF.values()
        for a in actual.additions.get(agreement, ())
        if a.product_identifier in {s.product for s in SKUS} and a.active_on(AS_OF)
    }
    for c in p.changes:
        assert c.agreement_id in AGREEMENT_OF.values()
        assert c.addition_id is None or c.addition_id in managed_ids
        if excl and c.agreement_id == 1001:
            assert c.product != "ZT-OKTA-MFA"
    assert [cp.customer_id for cp in p.customers] == sorted(CUSTOMERS)

    after = _apply(actual, p)
    # untouched: everything that is not a managed addition, byte for byte
    for agreement, adds in actual.additions.items():
        for a in adds:
            if a.id not in managed_ids:
                assert a in after.additions.get(agreement, ())

    product_of = {s.sku: s.product for s in SKUS}
    for cp in p.customers:
        agreement = AGREEMENT_OF[cp.customer_id]
        if cp.errors:
            assert cp.changes == ()
            continue
        want = {}
        for sku, n in users.get(cp.customer_id, {}).items():
            if sku in product_of and sku not in customer_excludes(cfg, cp.customer_id):
                want[product_of[sku]] = want.get(product_of[sku], 0) + n
        got = _managed_quantities(after, agreement)
        excluded = {product_of[s] for s in customer_excludes(cfg, cp.customer_id)}
        assert {k: v for k, v in got.items() if k not in excluded} == want

    again = plan(cfg, u, after)
    assert again.changes == ()  # converged: a re-run is a no-op


def customer_excludes(cfg, cid):
    return cfg.customer(cid).exclude_skus


directories = st.sets(st.sampled_from([*CUSTOMERS, "zt-9"])).map(
    lambda ids: {i: f"Name of {i}" for i in ids}
)


@settings(max_examples=examples(300), deadline=None)
@given(additions, usages, directories, st.booleans(), st.booleans())
def test_planning_before_the_directory_arrives(raw, users, directory, shared, reprice) -> None:
    """`prepare` from the usage rows alone (the directory not read yet), then `finish` with
    ZeroTek's directory: a customer it does not know is left untouched and says so, with
    every customer sharing its agreement (zt-1 and zt-2 share 1001 when `shared`); every
    other customer is planned as if the directory knew everybody, price drifts included."""
    customers = [
        customer("zt-1", agreement=1001, shared_agreement=shared),
        customer("zt-2", agreement=1001 if shared else 1002, shared_agreement=shared),
        customer("zt-3", agreement=1003),
    ]
    cfg = config(*customers, settings=Settings(reprice=reprice))
    actual = _world(raw)
    p = finish(prepare(cfg, usage(users), actual), usage(users, directory))
    everybody = plan(cfg, usage(users, {c: c for c in CUSTOMERS}), actual)

    unknown = {c for c in CUSTOMERS if c not in directory}
    stopped = {cp.agreement_id for cp in everybody.customers if cp.customer_id in unknown}
    for cp, known in zip(p.customers, everybody.customers, strict=True):
        if cp.customer_id in unknown:
            assert any("ZeroTek does not know customer" in w for w in cp.warnings)
        if cp.agreement_id in stopped:
            assert cp.changes == ()
        else:
            assert cp == known
    drift = [w for w in p.warnings if "another price than mapped" in w]
    assert drift == [w for w in everybody.warnings if "another price than mapped" in w]
