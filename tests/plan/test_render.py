from plan_builders import addition, config, customer, state, usage

from reconciler.core.model import Safety, Settings
from reconciler.plan import render
from reconciler.plan.planner import plan


def _plan(**settings):
    cfg = config(customer("zt-1"), customer("zt-2", company="GHOST"), settings=Settings(**settings))
    actual = state(addition(1, "ZT-OKTA-SSO", 40), addition(2, "ZT-OKTA-MFA", 5))
    return plan(cfg, usage({"zt-1": {"OKTA-SSO": 42, "OKTA-WF": 2}}), actual)


def test_text_is_terraform_like_and_plain_without_a_tty() -> None:
    out = render.text(_plan())
    assert "\x1b[" not in out
    lines = out.splitlines()
    assert (
        "  + add ZT-OKTA-WF (OKTA-WF) quantity 2, effective 2026-11-24  "
        "[+13.00 USD/month @ 6.50 USD]" in lines
    )
    assert (
        "  ~ update ZT-OKTA-SSO (OKTA-SSO) #1 quantity 40 → 42  [+8.00 USD/month @ 4.00 USD]"
        in lines
    )
    assert (
        "  - remove ZT-OKTA-MFA (OKTA-MFA) #2 quantity 5 (cancel)  [-20.00 USD/month @ 4.00 USD]"
        in lines
    )
    assert "  ! error: ConnectWise company 'GHOST' not found (customer left untouched)" in lines
    assert lines[-1] == (
        "Plan: 1 to add, 1 to update, 1 to remove across 1 of 2 customers; "
        "revenue +1.00 USD/month; 1 customer with errors"
    )
    assert "\x1b[" in render.text(_plan(), color=True)


def test_no_changes_says_so() -> None:
    cfg = config(customer("zt-1"))
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 40}}), state(addition(1, "ZT-OKTA-SSO", 40)))
    out = render.text(p)
    assert "No changes. ConnectWise matches ZeroTek usage." in out
    assert "1 customer already up to date." in out


def test_markdown_has_marker_table_and_details() -> None:
    md = render.markdown(_plan(safety=Safety(min_existing=1, max_removal_percent=10)))
    assert md.startswith("<!-- reconcile:plan -->\n")
    assert "| ➕ add | 1 |" in md and "| 💲 revenue change / month | +1.00 USD |" in md
    assert "<details><summary><b>zt-1</b>" in md and "</details>" in md
    assert "> **Unsafe plan**" in md
    assert "| update | ZT-OKTA-SSO | OKTA-SSO | 40 | 42 |  | 4.00 | +8.00 |" in md
    assert "| unit price (USD) | revenue/month (USD) |" in md


def test_markdown_shows_the_effective_date_of_adds() -> None:
    # Found: only the text format showed when a new addition starts billing.
    md = render.markdown(_plan())
    assert "| add | ZT-OKTA-WF | OKTA-WF | 0 | 2 | 2026-11-24 | 6.50 | +13.00 |" in md


def test_prices_are_shown_exactly_with_the_currency() -> None:
    # Found: unit_price 4.125 showed "@ 4.12" while revenue used 4.125.
    from decimal import Decimal

    from reconciler.core.model import SkuMap

    skus = (SkuMap("OKTA-SSO", "ZT-OKTA-SSO", unit_price=Decimal("4.125")),)
    cfg = config(customer("zt-1"), settings=Settings(currency="EUR"), skus=skus)
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 3}}), state())
    (change,) = p.changes
    assert change.unit_price == Decimal("4.125") and p.revenue_delta == Decimal("12.375")
    text = render.text(p)
    assert "[+12.375 EUR/month @ 4.125 EUR]" in text and "revenue +12.375 EUR/month" in text
    md = render.markdown(p)
    assert "| 4.125 | +12.375 |" in md and "(EUR)" in md and "+12.375 EUR" in md
    data = __import__("json").loads(render.json_text(p))
    assert data["currency"] == "EUR"
    assert data["customers"][0]["changes"][0]["unit_price"] == "4.125"
    assert data["summary"]["revenue_delta"] == "12.375"


def test_markdown_escapes_table_breakers() -> None:
    cfg = config(customer("zt-1"))
    p = plan(cfg, usage({"zt-1": {"OKTA-SSO": 1}}), state())
    p = p.__class__(**{**p.__dict__, "warnings": ("a | b <script>",)})
    assert "a \\| b \\<script\\>" in render.markdown(p)
