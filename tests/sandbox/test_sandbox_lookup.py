"""The sandbox answers list queries through lookup indexes (reconciler/sandbox/lookup.py):
an index may only narrow the records a predicate is tried on, so every answer must be
exactly the full scan's (same records, same order, same pages), also after a table record
is replaced, deleted or added; and the index must really be used, not fall back to a scan."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import world_edits
from conftest import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.sandbox import Assignment, Sandbox, generate_fixture, usage_counts
from reconciler.sandbox import connectwise as cw_api
from reconciler.sandbox.conditions import (
    Compiled,
    KeyLookup,
    compile_conditions,
    parse_fields,
    trim,
)
from reconciler.sandbox.connectwise import AGREEMENT, CATALOG, COMPANY, strip_nulls
from reconciler.sandbox.lookup import Table, candidates
from reconciler.sandbox.records import Fixture, Record, company_record
from reconciler.sandbox.state import World

ACCEPT = "application/vnd.connectwise.com+json; version=2020.4"


def hostile_world() -> World:
    """A generated world plus records an index could get wrong: identifiers equal up to
    case (and up to case-folding: ß/SS), a missing nested company, a null identifier.
    Each call a fresh world (its own tables and records) from one generated fixture."""
    fx = _hostile_fixture()
    return World(
        dataclasses.replace(
            fx,
            companies=[dict(r) for r in fx.companies],
            agreements=[dict(r) for r in fx.agreements],
            catalog=[dict(r) for r in fx.catalog],
        )
    )


@functools.cache
def _hostile_fixture() -> Fixture:
    """Generated once: generating it took two thirds of each property example."""
    fx, _, _ = generate_fixture(60, seed=7)
    first = fx.companies[0]
    extra = [
        company_record(9001, first["identifier"].lower(), "Lower Case Twin"),
        company_record(9002, "Straße", 'Quote "Q" \\ Ltd'),
        company_record(9003, "STRASSE", "Shouting GmbH"),
        {**company_record(9004, "X", "No identifier"), "identifier": None},
    ]
    fx.companies = [*fx.companies, *extra]
    fx.agreements = [
        *fx.agreements,
        {**fx.agreements[0], "id": 9101, "company": None},
        {**fx.agreements[1], "id": 9102, "company": {"id": first["id"]}},
    ]
    return fx


SCHEMAS = {"companies": COMPANY, "agreements": AGREEMENT, "catalog": CATALOG}
# (path, type) the random conditions use, per table
FIELDS = {
    "companies": [("id", "int"), ("identifier", "str"), ("name", "str"), ("status/name", "str")],
    "agreements": [
        ("id", "int"),
        ("company/id", "int"),
        ("company/identifier", "str"),
        ("agreementStatus", "str"),
        ("cancelledFlag", "bool"),
        ("startDate", "date"),
    ],
    "catalog": [("id", "int"), ("identifier", "str"), ("inactiveFlag", "bool")],
}


def _get(record: Record, path: str) -> Any:
    node: Any = record
    for part in path.split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _literal(ftype: str, value: Any, rng: random.Random) -> str:
    if value is None:
        return "null"
    if ftype == "str":
        text = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in value)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if ftype == "bool":
        return "true" if value else "false"
    if ftype == "date":
        return f"[{value}]"
    return str(value)


def _value(table: dict[int, Record], path: str, ftype: str, rng: random.Random) -> Any:
    """Mostly a value some record holds (so queries match), sometimes one none holds."""
    held = [v for r in table.values() if (v := _get(r, path)) is not None]
    if held and rng.random() < 0.85:
        return rng.choice(held)
    return {
        "int": rng.randint(-3, 20_000),
        "str": rng.choice(["nobody", "zz-none", "c0"]),
        "bool": rng.random() < 0.5,
        "date": "2031-01-01T00:00:00Z",
    }[ftype]


def random_condition(
    name: str, table: dict[int, Record], rng: random.Random, depth: int = 0
) -> str:
    if depth < 2 and rng.random() < 0.35:
        joiner = rng.choice([" and ", " or ", " AND ", " and "])
        parts = [random_condition(name, table, rng, depth + 1) for _ in range(rng.randint(2, 3))]
        text = joiner.join(f"({p})" if rng.random() < 0.5 else p for p in parts)
        return f"({text})" if depth else text
    path, ftype = rng.choice(FIELDS[name])
    kind = rng.choice(["in", "in", "=", "=", "not in", "!=", "like", "null"])
    if kind in ("in", "not in"):
        values = [_value(table, path, ftype, rng) for _ in range(rng.randint(1, 8))]
        listed = ", ".join(_literal(ftype, v, rng) for v in values)
        return f"{path} {kind} ({listed})"
    if kind == "like" and ftype == "str":
        held = str(_value(table, path, ftype, rng))
        return f'{path} like "{held[:2].replace(chr(92), "").replace(chr(34), "")}%"'
    if kind == "null":
        return f"{path} {rng.choice(['=', '!='])} null"
    op = "!=" if kind == "!=" else "="
    return f"{path} {op} {_literal(ftype, _value(table, path, ftype, rng), rng)}"


def indexed(table: Table, compiled: Compiled) -> list[Record]:
    return [r for r in candidates(table, compiled.lookup) if compiled.test(r)]


def scanned(table: dict[int, Record], compiled: Compiled) -> list[Record]:
    return [r for r in table.values() if compiled.test(r)]


def edit(world: World, name: str, rng: random.Random) -> None:
    """Change the table behind the index's back, as tests and clerks do."""
    table: Table = getattr(world, name)
    ids = list(table)
    victim = rng.choice(ids)
    action = rng.choice(["replace", "delete", "add", "readd", "update", "ior", "pop", "setdefault"])
    with world.lock:
        if action == "replace":  # what world_edits.update_* do
            donor = table[rng.choice(ids)]
            table[victim] = {**donor, "id": victim}
        elif action == "delete":
            del table[victim]
        elif action == "add":
            table[max(ids) + 1] = {**table[victim], "id": max(ids) + 1}
        elif action == "readd":  # deleted and added again: it moves to the end of the table
            record = table.pop(victim)
            table[victim] = record
        elif action == "update":
            table.update({victim: {**table[rng.choice(ids)], "id": victim}})
        elif action == "ior":
            table |= {max(ids) + 1: {**table[victim], "id": max(ids) + 1}}
        elif action == "pop":
            table.pop(victim)
        else:
            table.setdefault(max(ids) + 1, {**table[victim], "id": max(ids) + 1})


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(sorted(SCHEMAS)))
def test_indexed_answers_equal_the_full_scan_across_edits(seed: int, name: str) -> None:
    rng = random.Random(seed)
    world = hostile_world()
    table: Table = getattr(world, name)
    for _ in range(4):
        for _ in range(5):
            compiled = compile_conditions(random_condition(name, table, rng), SCHEMAS[name])
            with world.lock:
                assert indexed(table, compiled) == scanned(table, compiled)
        edit(world, name, rng)


@pytest.mark.parametrize(
    ("conditions", "expected_ids"),
    [
        ('identifier in ("STRASSE")', [9002, 9003]),  # casefold: ß is ss
        ('identifier = "straße"', [9002, 9003]),
        ('identifier in ("strasse", "nobody") and name like "Shout%"', [9003]),
        ("identifier in (null)", []),  # null never satisfies in
    ],
)
def test_string_lookups_fold_case_as_the_predicate_does(
    conditions: str, expected_ids: list[int]
) -> None:
    world = hostile_world()
    compiled = compile_conditions(conditions, COMPANY)
    assert compiled.lookup is not None
    assert [r["id"] for r in indexed(world.companies, compiled)] == expected_ids


def test_every_way_of_changing_a_table_makes_its_index_stale() -> None:
    rec = lambda i, ident: {"id": i, "identifier": ident}  # noqa: E731
    lookup = KeyLookup("str", "identifier", frozenset(["a"]))
    changes: list[Callable[[Table], Any]] = [
        lambda t: t.__setitem__(1, rec(1, "A")),
        lambda t: t.__delitem__(2),
        lambda t: t.pop(2),
        lambda t: t.popitem(),
        lambda t: t.clear(),
        lambda t: t.update({5: rec(5, "a")}),
        lambda t: t.update(x=rec(6, "a")),
        lambda t: t.setdefault(5, rec(5, "a")),
        lambda t: t.__ior__({5: rec(5, "a")}),
    ]
    for change in changes:
        table = Table([(1, rec(1, "b")), (2, rec(2, "a")), (3, rec(3, "a"))])
        candidates(table, lookup)  # builds and caches the index
        change(table)
        expected = [r for r in table.values() if r["identifier"].casefold() == "a"]
        assert candidates(table, lookup) == expected, change


def test_the_index_is_really_used_not_a_silent_scan() -> None:
    fx, _, _ = generate_fixture(2000, seed=2)
    world = World(fx)
    wanted = [c["identifier"] for c in fx.companies[::400]]
    query = compile_conditions(
        "identifier in (" + ", ".join(f'"{i}"' for i in wanted) + ")", COMPANY
    )
    tried: list[Record] = []

    def counting(r: Record) -> bool:
        tried.append(r)
        return query.test(r)

    with world.lock:
        found = [r for r in candidates(world.companies, query.lookup) if counting(r)]
    assert [r["identifier"] for r in found] == wanted
    assert len(tried) == len(wanted)  # not 2,000: the index handed over only the matches
    # a negated list cannot use an index: every record is a candidate
    negated = compile_conditions('identifier not in ("nobody")', COMPANY)
    assert negated.lookup is None
    with world.lock:
        assert len(candidates(world.companies, negated.lookup)) == 2000


def test_the_served_query_tries_its_predicate_on_the_matches_only(
    served: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried: list[Record] = []

    def counting_compile(text: str | None, schema: Any) -> Compiled:
        real = compile_conditions(text, schema)

        def test(r: Record) -> bool:
            tried.append(r)
            return real.test(r)

        return Compiled(test, real.lookup)

    monkeypatch.setattr(cw_api, "compile_conditions", counting_compile)
    agreements = list(served.agreements.values())
    some = sorted({a["company"]["id"] for a in agreements[::40]})
    with _client(served) as c:
        got = c.get(
            "/finance/agreements",
            params={"conditions": "company/id in (" + ", ".join(map(str, some)) + ")"},
        ).json()
        assert [a["id"] for a in got] == [a["id"] for a in agreements if a["company"]["id"] in some]
        assert len(tried) == len(got) < len(agreements) / 10
        tried.clear()
        c.get("/finance/agreements", params={"conditions": "company/id != 0"})
        assert len(tried) == len(agreements)  # no index for != : every record is tried


# --- over HTTP: the served pages are the scan's pages ----------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[Sandbox]:
    fx, _, _ = generate_fixture(150, seed=11)
    # nulls inside objects too: ConnectWise leaves them out at every depth
    fx.companies[3] = {**fx.companies[3], "status": {"id": 1, "name": None}}
    fx.agreements[2] = {
        **fx.agreements[2],
        "company": {**fx.agreements[2]["company"], "name": None},
    }
    with Sandbox(fx) as sb:
        yield sb


def _client(sb: Sandbox) -> httpx.Client:
    return httpx.Client(
        base_url=sb.cw_url,
        auth=(f"{sb.company_id}+{sb.public_key}", sb.private_key),
        headers={"Accept": ACCEPT, "clientId": sb.client_id},
        timeout=10,
    )


ROUTES = {"companies": "/company/companies", "agreements": "/finance/agreements"}


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(sorted(ROUTES)))
def test_served_pages_counts_and_forward_only_pages_equal_the_scan(
    served: Sandbox, seed: int, name: str
) -> None:
    rng = random.Random(seed)
    table: Table = getattr(served, name)
    if rng.random() < 0.5:  # replace a record between queries, as world_edits does
        victim = rng.choice(list(table))
        if name == "companies":
            world_edits.update_company(served, victim, identifier=f"R{seed % 97}")
        else:
            world_edits.update_agreement(served, victim, company={"id": rng.randint(1, 200)})
    conditions = random_condition(name, table, rng)
    # no fields=, top-level fields only (some null, some objects), or nested ones too
    fields = rng.choice([None, *[",".join(rng.sample(sorted(SCHEMAS[name]), 4)) for _ in "ab"]])
    if fields and rng.random() < 0.3:
        fields += ",_info/updatedBy,status/name"
    with served.lock:
        matches = scanned(table, compile_conditions(conditions, SCHEMAS[name]))
        expected = [strip_nulls(trim(r, parse_fields(fields))) for r in matches]
    size = rng.choice([1, 3, 25])
    route = ROUTES[name]
    with _client(served) as c:
        count = c.get(f"{route}/count", params={"conditions": conditions})
        assert count.json() == {"count": len(expected)}
        pages: list[Any] = []
        base: dict[str, Any] = {"conditions": conditions, "pageSize": size}
        if fields:
            base["fields"] = fields
        for page in range(1, len(expected) // size + 3):
            got = c.get(route, params={**base, "page": page})
            assert got.status_code == 200
            assert got.json() == expected[(page - 1) * size : page * size]
            pages += got.json()
        assert pages == expected
        forward: list[Any] = []
        params = base
        while True:
            got = c.get(route, params=params, headers={"pagination-type": "forward-only"})
            forward += got.json()
            if "next" not in got.links:
                break
            params = dict(httpx.URL(got.links["next"]["url"]).params)
        assert forward == expected


def test_get_by_id_answers_from_the_index_and_sees_replacements(served: Sandbox) -> None:
    some = next(iter(served.companies.values()))
    with _client(served) as c:
        before = c.get(f"/company/companies/{some['id']}").json()
        assert before == strip_nulls(served.companies[some["id"]])
        world_edits.update_company(served, some["id"], name="Renamed Ltd")
        assert c.get(f"/company/companies/{some['id']}").json()["name"] == "Renamed Ltd"
        assert c.get("/company/companies/987654").status_code == 404


# --- ZeroTek usage ------------------------------------------------------------------------


def _usage_by_definition(
    assignments: list[Assignment], start: dt.date, end: dt.date
) -> dict[str, dict[str, int]]:
    """The contract read literally: per customer and SKU, the distinct users of the
    assignments that overlap [start, end]."""
    pairs = sorted({(a.customer_id, a.sku) for a in assignments})
    out: dict[str, dict[str, int]] = {}
    for customer, sku in pairs:
        users = {
            a.user
            for a in assignments
            if (a.customer_id, a.sku) == (customer, sku)
            and a.assigned_on <= end
            and (a.unassigned_on is None or a.unassigned_on >= start)
        }
        if users:
            out.setdefault(customer, {})[sku] = len(users)
    return out


@settings(max_examples=examples(200), deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["zt-2", "zt-1", "zt-10", "ZT-1"]),
            st.sampled_from(["OKTA", "M365", "EDR"]),
            st.sampled_from(["ann", "bob", "Bob", "cy"]),
            st.integers(0, 40),
            st.one_of(st.none(), st.integers(0, 40)),
        ),
        max_size=40,
    ),
    start=st.integers(0, 40),
    length=st.integers(0, 15),
)
def test_usage_counts_follows_the_definition(
    rows: list[tuple[str, str, str, int, int | None]], start: int, length: int
) -> None:
    day0 = dt.date(2026, 10, 1)
    day = lambda n: day0 + dt.timedelta(days=n)  # noqa: E731
    assignments = [
        Assignment(c, s, u, day(on), None if off is None else day(on + off))
        for c, s, u, on, off in rows
    ]
    got = usage_counts(assignments, day(start), day(start + length))
    want = _usage_by_definition(assignments, day(start), day(start + length))
    assert got == want
    assert list(got) == list(want)  # customers in sorted order
    assert all(list(got[c]) == list(want[c]) for c in want)  # and SKUs within each
