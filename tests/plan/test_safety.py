from plan_builders import addition, config, customer, state, usage

from reconciler.core.model import Safety, Settings
from reconciler.core.plan import Action
from reconciler.plan.planner import plan


def _plan(n_existing: int, keep: int, safety: Safety, new_qty: int = 10):
    """n_existing customers each with one SSO addition of 10; `keep` of them still use it."""
    from reconciler.core.state import Agreement, Company

    customers = [
        customer(f"zt-{i:02}", company=f"C{i}", agreement=1000 + i) for i in range(n_existing)
    ]
    companies = tuple(Company(i, f"C{i}", f"C{i}") for i in range(n_existing))
    agreements = tuple(Agreement(1000 + i, f"A{i}", i, "Active") for i in range(n_existing))
    actual = state(
        *(addition(i + 1, "ZT-OKTA-SSO", 10, agreement=1000 + i) for i in range(n_existing)),
        agreements=agreements,
        companies=companies,
    )
    users = {f"zt-{i:02}": {"OKTA-SSO": new_qty} for i in range(keep)}
    return plan(config(*customers, settings=Settings(safety=safety)), usage(users), actual)


def test_removals_above_threshold_are_unsafe() -> None:
    s = Safety(max_removal_percent=30, max_quantity_change_percent=100, min_existing=10)
    assert not _plan(10, 7, s).unsafe  # 30% removed: at the threshold, fine
    p = _plan(10, 6, s)  # 40%
    assert p.unsafe
    assert p.unsafe_reasons[0] == (
        "4 of 10 managed additions would be removed (40% > max_removal_percent 30%)"
    )


def test_below_min_existing_thresholds_do_not_apply() -> None:
    s = Safety(max_removal_percent=30, max_quantity_change_percent=50, min_existing=10)
    assert not _plan(9, 1, s).unsafe  # 8 of 9 removed, but only 9 managed additions


def test_wipe_guard_zero_users_everywhere_is_unsafe_whatever_the_thresholds() -> None:
    # Found: ZeroTek answered 200 with zero users for everyone; 7 < min_existing, so the
    # plan cancelling all 7 managed additions was "safe" and applied.
    s = Safety(max_removal_percent=100, max_quantity_change_percent=100, min_existing=10)
    p = _plan(7, 0, s)
    assert p.count(Action.REMOVE) == 7 and p.unsafe
    assert p.unsafe_reasons == (
        "ZeroTek reported zero users for every SKU of every planned customer, yet 7 managed "
        "additions exist: this would remove them all",
    )
    assert not _plan(7, 1, s).unsafe  # one customer with users: not a wipe
    assert not _plan(0, 0, s).unsafe  # nothing managed: nothing to wipe


def test_wipe_guard_counts_unmapped_skus_as_usage() -> None:
    # Users on an unmapped SKU prove ZeroTek answered with real data.
    customers = [customer("zt-1")]
    actual = state(addition(1, "ZT-OKTA-SSO", 10))
    p = plan(config(*customers), usage({"zt-1": {"OKTA-NEW": 3}}), actual)
    assert p.count(Action.REMOVE) == 1 and not p.unsafe


def test_quantity_change_threshold() -> None:
    s = Safety(max_removal_percent=100, max_quantity_change_percent=50, min_existing=10)
    assert not _plan(10, 10, s, new_qty=15).unsafe  # +50%
    p = _plan(10, 10, s, new_qty=16)  # +60%
    assert p.unsafe_reasons == (
        "quantities of existing additions would change by 60 of 100 "
        "(60% > max_quantity_change_percent 50%)",
    )


def test_adds_alone_never_make_a_plan_unsafe() -> None:
    p = plan(config(customer()), usage({"zt-1": {"OKTA-SSO": 1000}}), state())
    assert not p.unsafe
