"""load_config: the example, split customer files, cross-file checks, the digest."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.config import loader as config
from reconciler.config.loader import load_config, validate_config
from reconciler.config.resources import example_dir
from reconciler.config.urls import insecure_url_reason
from reconciler.core.errors import ConfigError
from reconciler.core.model import CustomerMap, Location, Removal, SkuMap

SETTINGS = "connectwise:\n  api_url: https://cw.example/apis/3.0\n"
SKUS = "- sku: OKTA-SSO\n  product: ZT-OKTA-SSO\n- sku: OKTA-MFA\n  product: ZT-OKTA-MFA\n"
CUSTOMERS = (
    "- id: zt-0001\n  name: Acme\n  company: ACME\n  agreement: Acme Managed Services\n"
    "- id: zt-0002\n  name: Globex\n  company: GLOBEX\n  agreement: 1006\n"
)


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def base(root: Path, **overrides: str | bytes) -> Path:
    files: dict[str, str | bytes] = {
        "mappings/settings.yaml": SETTINGS,
        "mappings/skus.yaml": SKUS,
        "mappings/customers.yaml": CUSTOMERS,
    }
    files.update({f"mappings/{k.replace('__', '/')}.yaml": v for k, v in overrides.items()})
    return write(root, files)


def problems(root: Path) -> list[str]:
    return [str(p) for p in validate_config(root)]


# --- the example desired state ----------------------------------------------------------------


def test_example_mappings_load_exactly_as_documented(tmp_path: Path) -> None:
    shutil.copytree(example_dir(), tmp_path / "mappings")
    cfg = load_config(tmp_path)
    s = cfg.settings
    assert s.enabled is True
    assert s.cw_api_url == "https://api-na.myconnectwise.net/v4_6_release/apis/3.0"
    assert s.zerotek_api_url == "https://api.zerotek.example/"
    assert (s.sync_day, s.timezone, s.add_missing, s.removal) == (15, "UTC", True, Removal.CANCEL)
    assert s.max_concurrency == 8 and s.usage_source == "zerotek"
    assert (s.safety.max_removal_percent, s.safety.max_quantity_change_percent) == (30, 50)
    assert s.safety.min_existing == 10
    assert s.notifications.administrators == ("ops@msp.example",)
    assert s.notifications.billing == ("billing@msp.example",)
    assert s.notifications.agreement_end_warning_days == 30

    assert [(m.sku, m.product, m.unit_price) for m in cfg.skus] == [
        ("OKTA-SSO", "ZT-OKTA-SSO", None),
        ("OKTA-MFA", "ZT-OKTA-MFA", None),
        ("OKTA-LCM", "ZT-OKTA-LCM", None),
        ("OKTA-UD", "ZT-OKTA-UD", None),
        ("OKTA-WF", "ZT-OKTA-WF", Decimal("6.50")),
    ]
    assert [(c.id, c.name, c.company, c.agreement, c.exclude_skus) for c in cfg.customers] == [
        ("zt-0001", "Acme Corp", "ACME", "Acme Managed Services", ()),
        ("zt-0002", "O'Brien & Sons", "OBRIEN", 1002, ()),
        ("zt-0003", 'Big "Quote" Ltd', "BIGQUOTE", "Big Quote - Identity", ()),
        ("zt-0004", "Contoso Health", "CONTOSO", 1004, ()),
        ("zt-0005", "Northwind Traders", "NORTHWIND", "Northwind MSA", ("OKTA-UD",)),
        ("zt-0006", "Globex", "GLOBEX", 1006, ()),
        ("zt-0007", "Initech & Co", "INITECH", "Initech Identity", ()),
    ]
    assert not any(c.shared_agreement for c in cfg.customers)
    assert all(c.location and c.location.file == "mappings/customers.yaml" for c in cfg.customers)


def test_model_values_types_and_locations(tmp_path: Path) -> None:
    skus = SKUS + "- sku: OKTA-WF\n  product: ZT-OKTA-WF\n  unit_price: 6.10\n  unit_cost: 4\n"
    cfg = load_config(base(tmp_path, skus=skus))
    wf = cfg.sku("OKTA-WF")
    assert wf == SkuMap("OKTA-WF", "ZT-OKTA-WF", Decimal("6.10"), Decimal("4"))
    assert isinstance(wf.unit_price, Decimal) and str(wf.unit_price) == "6.1"
    assert wf.location == Location("mappings/skus.yaml", 5, 3)
    globex = cfg.customer("zt-0002")
    assert globex == CustomerMap("zt-0002", "Globex", "GLOBEX", 1006)
    assert globex.location == Location("mappings/customers.yaml", 5, 3)
    assert cfg.config_dir == tmp_path
    assert cfg.settings.timezone == "UTC" and cfg.settings.removal is Removal.CANCEL


# --- files ------------------------------------------------------------------------------------


def test_split_customer_files_are_all_read(tmp_path: Path) -> None:
    base(tmp_path)
    write(
        tmp_path,
        {
            "mappings/customers/emea.yaml": "- {id: zt-0100, name: E, company: E1, agreement: 7}\n",
            "mappings/customers/apac.yml": "- {id: zt-0200, name: A, company: A1, agreement: 8}\n",
            "mappings/customers/README.md": "not a mapping file",
        },
    )
    cfg = load_config(tmp_path)
    assert [c.id for c in cfg.customers] == ["zt-0001", "zt-0002", "zt-0200", "zt-0100"]
    assert cfg.customer("zt-0100").location == Location("mappings/customers/emea.yaml", 1, 3)


def test_only_split_customer_files(tmp_path: Path) -> None:
    base(tmp_path)
    (tmp_path / "mappings/customers.yaml").unlink()
    write(tmp_path, {"mappings/customers/a.yaml": CUSTOMERS})
    assert [c.id for c in load_config(tmp_path).customers] == ["zt-0001", "zt-0002"]


def test_no_customer_file_at_all(tmp_path: Path) -> None:
    base(tmp_path)
    (tmp_path / "mappings/customers.yaml").unlink()
    (tmp_path / "mappings/customers").mkdir()
    (problem,) = problems(tmp_path)
    assert problem.startswith("mappings/customers.yaml: file not found, expected a list of")
    assert "mappings/customers/*.yaml" in problem


def test_missing_settings_and_skus_files(tmp_path: Path) -> None:
    write(tmp_path, {"mappings/customers.yaml": CUSTOMERS})
    assert problems(tmp_path) == [
        "mappings/settings.yaml: file not found, expected a mapping of settings "
        "(see schemas/settings.schema.json)",
        "mappings/skus.yaml: file not found, expected a list of SKU mappings "
        "(see schemas/skus.schema.json)",
    ]


def test_missing_mappings_directory(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path)
    assert problem.startswith(f"mappings: directory not found in {tmp_path.resolve()}: expected")
    assert "reconcile init" in problem


def test_problems_of_all_files_are_reported_in_file_order(tmp_path: Path) -> None:
    base(
        tmp_path,
        settings="billing:\n  sync_day: 29\n",
        skus="- sku: A\n",
        customers__b="- id: x\n",
        customers__a="oops: [\n",
    )
    found = problems(tmp_path)
    assert [p.split(": ")[0] for p in found] == [
        "mappings/customers/a.yaml:2:1",
        "mappings/customers/b.yaml:1:3",
        "mappings/customers/b.yaml:1:3",
        "mappings/customers/b.yaml:1:3",
        "mappings/settings.yaml:2:13",
        "mappings/skus.yaml:1:3",
    ]
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert [str(p) for p in info.value.problems] == found


# --- cross-file checks ------------------------------------------------------------------------


def test_duplicate_customer_id_across_split_files_names_both(tmp_path: Path) -> None:
    base(tmp_path)
    write(
        tmp_path,
        {"mappings/customers/west.yaml": "- id: zt-9\n  name: W\n  company: W\n  agreement: 1\n"
         "- id: zt-0002\n  name: G2\n  company: G2\n  agreement: 2\n"},
    )  # fmt: skip
    assert problems(tmp_path) == [
        "mappings/customers/west.yaml:5:7: duplicate customer id 'zt-0002' "
        "(first at mappings/customers.yaml:5:7)"
    ]


def test_duplicate_sku(tmp_path: Path) -> None:
    base(tmp_path, skus=SKUS + "- sku: OKTA-SSO\n  product: ZT-OKTA-SSO-2\n")
    assert problems(tmp_path) == [
        "mappings/skus.yaml:5:8: duplicate SKU 'OKTA-SSO' (first at mappings/skus.yaml:1:8)"
    ]


def test_one_product_for_two_skus_must_be_spelled_alike(tmp_path: Path) -> None:
    base(tmp_path, skus=SKUS + "- sku: OKTA-X\n  product: ZT-OKTA-SSO\n")
    assert problems(tmp_path) == []  # two SKUs may bill one product: their users are summed
    base(tmp_path, skus=SKUS + "- sku: OKTA-X\n  product: zt-okta-sso\n")
    assert problems(tmp_path) == [
        "mappings/skus.yaml:6:12: product 'zt-okta-sso' is spelled 'ZT-OKTA-SSO' at "
        "mappings/skus.yaml:2:12; ConnectWise ignores case, so spell one product the same "
        "way everywhere"
    ]


def test_unknown_sku_in_exclude_skus(tmp_path: Path) -> None:
    customers = CUSTOMERS + "  exclude_skus: [OKTA-MFA, OKTA-MAF]\n"
    base(tmp_path, customers=customers)
    assert problems(tmp_path) == [
        "mappings/customers.yaml:9:28: exclude_skus: unknown SKU 'OKTA-MAF', expected a SKU "
        "listed in mappings/skus.yaml; did you mean 'OKTA-MFA'?"
    ]


def test_exclude_skus_not_checked_when_skus_file_is_broken(tmp_path: Path) -> None:
    base(tmp_path, skus="[", customers=CUSTOMERS + "  exclude_skus: [OKTA-MFA]\n")
    assert [p.split(":")[0] for p in problems(tmp_path)] == ["mappings/skus.yaml"]


def test_two_customers_on_one_agreement(tmp_path: Path) -> None:
    extra = "- id: zt-0003\n  name: Acme 2\n  company: ACME\n  agreement: Acme Managed Services\n"
    base(tmp_path, customers=CUSTOMERS + extra)
    assert problems(tmp_path) == [
        "mappings/customers.yaml:12:14: customer 'zt-0003' bills into the same agreement as "
        "customer 'zt-0001' (at mappings/customers.yaml:4:14): company ACME, agreement "
        "'Acme Managed Services'; set shared_agreement: true on both if intended"
    ]


def test_shared_agreement_needs_both_flags(tmp_path: Path) -> None:
    one = (
        "- {id: a, name: A, company: X, agreement: 5, shared_agreement: true}\n"
        "- {id: b, name: B, company: X, agreement: 5}\n"
    )
    base(tmp_path, customers=one)
    assert len(problems(tmp_path)) == 1
    both = one.replace("agreement: 5}", "agreement: 5, shared_agreement: true}")
    base(tmp_path, customers=both)
    assert problems(tmp_path) == []
    assert [c.shared_agreement for c in load_config(tmp_path).customers] == [True, True]


def test_same_agreement_id_under_two_companies_is_an_error(tmp_path: Path) -> None:
    # Found: it passed validate and was caught only at apply (DESIGN 12.3).
    base(
        tmp_path,
        customers="- {id: a, name: A, company: X, agreement: 5}\n"
        "- {id: b, name: B, company: Y, agreement: 5}\n"
        "- {id: c, name: C, company: x, agreement: 6}\n"
        "- {id: d, name: D, company: Z, agreement: Five}\n"
        "- {id: e, name: E, company: W, agreement: Five}\n",
    )
    assert problems(tmp_path) == [
        "mappings/customers.yaml:2:43: agreement 5 is mapped under company 'Y' here and under "
        "company 'X' at mappings/customers.yaml:1:43; an agreement belongs to one company",
        "mappings/customers.yaml:3:29: company 'x' differs only in case from 'X' at "
        "mappings/customers.yaml:1:29; ConnectWise ignores case, so spell one company the "
        "same way everywhere",
    ]  # agreement *names* are per company: 'Five' under Z and under W are two agreements


def test_company_spelled_in_two_cases_is_an_error(tmp_path: Path) -> None:
    # Found: shared customers under `ACME` and `acme` under-billed their shared agreement.
    base(
        tmp_path,
        customers="- {id: a, name: A, company: ACME, agreement: 5, shared_agreement: true}\n"
        "- {id: b, name: B, company: acme, agreement: 5, shared_agreement: true}\n",
    )
    assert problems(tmp_path) == [
        "mappings/customers.yaml:2:29: company 'acme' differs only in case from 'ACME' at "
        "mappings/customers.yaml:1:29; ConnectWise ignores case, so spell one company the "
        "same way everywhere"
    ]


def test_skus_differing_only_in_case_are_an_error(tmp_path: Path) -> None:
    # Found: both validated, and one of them never matched.
    base(tmp_path, skus="- {sku: OKTA-SSO, product: P}\n- {sku: okta-sso, product: P}\n")
    assert problems(tmp_path) == [
        "mappings/skus.yaml:2:9: SKU 'okta-sso' differs only in case from 'OKTA-SSO' at "
        "mappings/skus.yaml:1:9; SKUs compare case-insensitively: list each SKU once"
    ]


def test_skus_sharing_a_product_must_agree_on_its_terms(tmp_path: Path) -> None:
    skus = (
        "- {sku: A, product: P, unit_price: 6.5, unit_cost: 2, description: Okta}\n"
        "- {sku: B, product: P, unit_price: 6.50, unit_cost: 3}\n"  # same price, other cost
        "- {sku: C, product: P}\n"  # sets nothing: agrees with everything
        "- {sku: D, product: p, description: okta}\n"  # one product (case), other text
        "- {sku: E, product: Q, unit_price: 1}\n"
    )
    base(tmp_path, skus=skus)
    assert problems(tmp_path) == [
        "mappings/skus.yaml:2:53: unit_cost: 3 here but 2 at mappings/skus.yaml:1:52; SKUs "
        "mapped to product 'P' bill as one addition and must agree on its unit_cost",
        "mappings/skus.yaml:4:21: product 'p' is spelled 'P' at mappings/skus.yaml:1:21; "
        "ConnectWise ignores case, so spell one product the same way everywhere",
        "mappings/skus.yaml:4:37: description: 'okta' here but 'Okta' at "
        "mappings/skus.yaml:1:68; SKUs mapped to product 'p' bill as one addition and must "
        "agree on its description",
    ]


def test_catalog_identifiers_may_have_75_characters(tmp_path: Path) -> None:
    # Found: capped at 60, while ConnectWise catalog identifiers allow 75.
    base(tmp_path, skus="- {sku: A, product: " + "P" * 75 + "}\n")
    assert problems(tmp_path) == []
    assert load_config(tmp_path).skus[0].product == "P" * 75


@pytest.mark.parametrize(
    ("value", "ok"),
    [("4.125", True), ("0.0001", True), ("1000000", True), ("4.12345", False),
     ("1000000.01", False), ("99999999999999999999999", False), ("-0.01", False)],
)  # fmt: skip
def test_price_bounds_and_decimal_places(tmp_path: Path, value: str, ok: bool) -> None:
    # Found: 99999999999999999999999 validated.
    base(tmp_path, skus=f"- {{sku: A, product: P, unit_price: {value}}}\n")
    found = problems(tmp_path)
    assert (found == []) is ok, found


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://cw.example/x", None),
        ("http://127.0.0.1:8080/", None),
        ("http://127.9.9.9/", None),
        ("http://[::1]:9000/v4", None),
        ("http://localhost/", None),
        ("http://LOCALHOST./", None),
        ("http://cw.example/", "plain http:// is allowed only for loopback hosts"),
        ("http://10.0.0.1/", "plain http:// is allowed only for loopback hosts"),
        ("http://localhost.evil.example/", "plain http:// is allowed only for loopback hosts"),
        ("ftp://cw.example/", "expected an https:// URL"),
    ],
)
def test_url_policy(url: str, reason: str | None) -> None:
    found = insecure_url_reason(url)
    assert found == reason if reason is None else reason in (found or "")


def test_http_url_to_non_loopback_host_in_settings(tmp_path: Path) -> None:
    base(tmp_path, settings="zerotek:\n  api_url: http://api.zerotek.example/\n")
    assert problems(tmp_path) == [
        "mappings/settings.yaml:2:12: zerotek.api_url: plain http:// is allowed only for "
        "loopback hosts (127.0.0.1, ::1, localhost), not 'api.zerotek.example'; use https://"
    ]
    base(tmp_path, settings="zerotek:\n  api_url: http://127.0.0.1:8081/\n")
    assert load_config(tmp_path).settings.zerotek_api_url == "http://127.0.0.1:8081/"


# --- digest and settings-only ---------------------------------------------------------------


def test_digest_follows_the_bytes_of_every_mapping_file(tmp_path: Path) -> None:
    base(tmp_path)
    first = load_config(tmp_path).digest
    assert len(first) == 64 and load_config(tmp_path).digest == first
    other = shutil.copytree(tmp_path, tmp_path.parent / (tmp_path.name + "-copy"))
    assert load_config(other).digest == first  # the location of the directory is not in it
    path = tmp_path / "mappings/customers.yaml"
    path.write_text(CUSTOMERS + "# a comment\n", encoding="utf-8")
    changed = load_config(tmp_path).digest
    assert changed != first
    write(
        tmp_path, {"mappings/customers/more.yaml": "- {id: z, name: Z, company: Z, agreement: 9}"}
    )
    assert load_config(tmp_path).digest not in {first, changed}


def test_load_settings_only_ignores_broken_mappings(tmp_path: Path) -> None:
    base(tmp_path, skus="[", settings="enabled: false\nbilling: {sync_day: 1}\n")
    settings = config.load_settings_only(tmp_path)
    assert settings.enabled is False and settings.sync_day == 1
    base(tmp_path, settings="enabled: maybe\n")
    with pytest.raises(ConfigError) as info:
        config.load_settings_only(tmp_path)
    assert str(info.value).startswith("mappings/settings.yaml:1:10: enabled: expected true or")


def test_an_empty_list_is_an_error_with_its_path(tmp_path: Path) -> None:
    base(tmp_path, customers="[]\n")
    assert problems(tmp_path) == [
        "mappings/customers.yaml:1:1: empty list, expected at least one entry in "
        "mappings/customers.yaml (or mappings/customers/*.yaml)"
    ]
