"""The safe YAML loader: YAML 1.2-core scalars, duplicate keys, marks, and every way to fail."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reconciler.config import yamlsource
from reconciler.config.yamlsource import parse, resolve_plain
from reconciler.core.errors import ConfigError
from reconciler.core.model import Location

LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])


@pytest.fixture(params=LOADERS, ids=lambda loader: loader.__name__)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    """Run a test under both the pure-Python and the libyaml composer: same answers."""
    monkeypatch.setattr(yamlsource, "_Loader", request.param)
    return request.param


def problems_of(text: str, file: str = "f.yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, file, "a list of things")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("15", 15),
        ("-3", -3),
        ("+7", 7),
        ("0o17", 15),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("6.50", 6.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("null", None),
        ("~", None),
        ("", None),
        # YAML 1.1 would turn all of these into bools, dates or sexagesimal ints:
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("2026-11-15", "2026-11-15"),
        ("1:30", "1:30"),
        ("0b101", "0b101"),
        (".inf", ".inf"),
        (".nan", ".nan"),
        ("1e999", "1e999"),
        ("OKTA-SSO", "OKTA-SSO"),
    ],
)
def test_plain_scalars_resolve_yaml_1_2_core(text: str, value: object) -> None:
    resolved = resolve_plain(text)
    assert resolved == value
    assert type(resolved) is type(value)


def test_document_values_and_quoting(loader: type) -> None:
    doc = parse(
        "a: '15'\nb: \"true\"\nc: 15\nd: 2026-01-01\ne: !!str 15\nf: |\n  text\ng: on\n",
        "f.yaml",
        "x",
    )
    assert doc.data == {
        "a": "15",
        "b": "true",
        "c": 15,
        "d": "2026-01-01",
        "e": "15",
        "f": "text\n",
        "g": "on",
    }


def test_locations_of_every_node_and_key(loader: type) -> None:
    doc = parse("- sku: A\n  product: P\n- sku: B\n  tags: [x, y]\n", "mappings/skus.yaml", "x")
    assert doc.location(()) == Location("mappings/skus.yaml", 1, 1)
    assert doc.location((0,)) == Location("mappings/skus.yaml", 1, 3)
    assert doc.location((0, "product")) == Location("mappings/skus.yaml", 2, 12)
    assert doc.location((1, "tags", 1)) == Location("mappings/skus.yaml", 4, 13)
    assert doc.key_location((1, "tags")) == Location("mappings/skus.yaml", 4, 3)
    # a path that does not exist falls back to its nearest ancestor
    assert doc.location((1, "missing", 3)) == Location("mappings/skus.yaml", 3, 3)


def test_duplicate_key_names_both_locations(loader: type) -> None:
    problems = problems_of("a: 1\nb:\n  c: 1\n  c: 2\n  c: 3\n")
    assert problems == [
        "f.yaml:4:3: duplicate key 'c' (first defined at f.yaml:3:3)",
        "f.yaml:5:3: duplicate key 'c' (first defined at f.yaml:3:3)",
    ]


def test_tab_indentation(loader: type) -> None:
    assert problems_of("a: 1\n\tb: 2\n") == [
        "f.yaml:2:1: tab character in indentation; YAML indentation must use spaces\n"
        "  2 |  b: 2\n"
        "    | ^"
    ]


def test_tab_after_spaces_points_at_the_tab(loader: type) -> None:
    (problem,) = problems_of("a:\n  b: 1\n  \tc: 2\n")
    assert problem.startswith("f.yaml:3:3: tab character in indentation")


def test_syntax_error_location_and_context(loader: type) -> None:
    (problem,) = problems_of("a: [1, 2\nb: 3\n")
    # at the bracket that is never closed, not where the parser gave up (issue 28)
    assert problem.startswith("f.yaml:1:4: this '[' is not closed by a ']'")


def test_unclosed_quote(loader: type) -> None:
    (problem,) = problems_of("- id: 'zt-0001\n")
    assert problem.startswith("f.yaml:1:7: this quote is never closed")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n", "null"])
def test_empty_documents(text: str, loader: type) -> None:
    assert problems_of(text) == ["f.yaml:1:1: empty file, expected a list of things"]


def test_non_utf8_bytes_location(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes("- name: Café\n- name: Caf".encode() + b"\xe9\n")
    with pytest.raises(ConfigError) as info:
        yamlsource.load(path, "mappings/x.yaml", "x")
    assert [str(p) for p in info.value.problems] == [
        "mappings/x.yaml:2:12: not valid UTF-8 (byte 0xe9); save the file as UTF-8"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        yamlsource.load(tmp_path / "nope.yaml", "mappings/nope.yaml", "x")
    assert [str(p) for p in info.value.problems] == ["mappings/nope.yaml: file not found"]


def test_control_character_is_a_located_problem(loader: type) -> None:
    (problem,) = problems_of("é: 1\nb: é\x07y\n")
    assert problem.startswith("f.yaml:2:5: character 0x7 is not allowed in YAML")


def test_aliases_are_refused_where_they_are_used(loader: type) -> None:
    assert problems_of("a: &x [1, 2]\nb: *x\n") == [
        "f.yaml:2:4: aliases (*name) are not supported; write the value out in full",
    ]
    # Several uses are one mistake: one line, at the first use, with the count.
    assert problems_of("a: &x [1, 2]\nb: *x\nc:\n  - *x\n") == [
        "f.yaml:2:4: aliases (*name) are not supported; write the value out in full "
        "(2 in this file, the first here)",
    ]


def test_billion_laughs_is_one_line(loader: type) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    assert problems_of("\n".join(lines) + "\n") == [
        "f.yaml:2:10: aliases (*name) are not supported; write the value out in full "
        "(80 in this file, the first here)"
    ]


def test_alias_as_key_and_in_a_repeated_key_are_still_reported(loader: type) -> None:
    assert problems_of("a: &x 1\n*x : 2\nb: 1\nb: [*x]\n") == [
        "f.yaml:2:1: aliases (*name) are not supported; write the value out in full "
        "(2 in this file, the first here)",
        "f.yaml:4:1: duplicate key 'b' (first defined at f.yaml:3:1)",
    ]


def test_reading_goes_on_after_structural_problems(loader: type) -> None:
    doc = yamlsource.read("a: 1\na: 2\nb: *x\nc: !foo [1]\nd: '7'\n", "f.yaml", "x")
    assert doc.data == {"a": 1, "b": None, "c": None, "d": "7"}  # the first `a` stands
    assert [str(p) for p in doc.problems] == [
        "f.yaml:2:1: duplicate key 'a' (first defined at f.yaml:1:1)",
        "f.yaml:3:4: aliases (*name) are not supported; write the value out in full",
        "f.yaml:4:4: unsupported YAML tag '!foo'; remove it",
    ]
    assert doc.unknown == {("b",), ("c",)}
    assert doc.quoted == {("d",)}


def test_application_tags_and_merge_keys_are_refused(loader: type) -> None:
    assert problems_of("a: !!python/object:os.system {}\nb: !secret x\n<<: {c: 1}\n") == [
        "f.yaml:1:4: unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'; remove it",
        "f.yaml:2:4: unsupported YAML tag '!secret'; remove it",
        "f.yaml:3:1: merge keys (<<) are not supported; write the keys out",
    ]


def test_non_scalar_keys_are_refused(loader: type) -> None:
    assert problems_of("? [a, b]\n: 1\n") == [
        "f.yaml:1:3: mapping keys must be plain names, not lists"
    ]


def test_byte_order_mark_does_not_shift_columns(loader: type) -> None:
    doc = parse("\ufeffa: 1\nb: 2\n", "f.yaml", "x")
    assert doc.location(("a",)) == Location("f.yaml", 1, 4)
    assert doc.data == {"a": 1, "b": 2}


def test_several_documents_are_an_error(loader: type) -> None:
    (problem,) = problems_of("a: 1\n---\nb: 2\n")
    assert problem.startswith("f.yaml:2:1: YAML syntax error: ")
    assert "single document" in problem
