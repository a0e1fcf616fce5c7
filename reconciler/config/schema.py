"""JSON Schema validation whose errors read like a reviewer's comments, at `file:line:col`.

jsonschema's own messages name Python reprs and schema internals ("'ten' is not of type
'number'"); here every error becomes "what is wrong, what was expected", pinned to the node
that is wrong (for a missing key: the mapping that lacks it; for an unknown key: the key).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fastjsonschema
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema.protocols import Validator

from reconciler.config.resources import load_schema
from reconciler.config.yamlsource import Document, JsonPath, resolve_plain
from reconciler.core.errors import Problem
from reconciler.core.vocabulary import Location
from reconciler.secure.scrub import shorten
from reconciler.secure.untrusted import command_data, command_property

Progress = Callable[[int], None]

# Deliberately simple: catches the typos people make (missing @, spaces, no domain dot)
# without pretending to implement RFC 5322.
EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping (key: value lines)",
    "null": "an empty value",
}

_PATTERN_HINTS = {
    "^https?://": "a URL starting with https://",
    "^\\S+$": "a value without spaces",
    "^[A-Za-z0-9][A-Za-z0-9._-]*$": "letters, digits, '.', '_' or '-' (no spaces)",
}


@cache
def timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_timezone(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type keyword reports non-strings
    if value in timezones():
        return True
    if timezones():
        return False
    try:  # no tz database listing (some Windows installs): ask zoneinfo directly
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def is_email(value: object) -> bool:
    return not isinstance(value, str) or EMAIL.fullmatch(value) is not None


def is_url(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return bool(parts.scheme and parts.hostname)


# The same checks for fastjsonschema (which would otherwise reject these unknown formats).
_FAST_FORMATS = {"email": is_email, "iana-timezone": is_timezone, "uri": is_url}


def format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checks("email")(is_email)
    checker.checks("iana-timezone")(is_timezone)
    # The stock "uri" check silently passes unless rfc3987 is installed.
    checker.checks("uri")(is_url)
    return checker


# JSON Schema counts 1.0 and 1e308 as integers; in a YAML mapping they are floats someone
# wrote (an agreement id of 1e308 is a typo, not agreement 10^308), so only ints are integers.
_TYPES = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
)
_Validator = validators.extend(Draft202012Validator, type_checker=_TYPES)  # type: ignore[no-untyped-call]


@cache
def validator(name: str) -> Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    checked: Validator = _Validator(schema, format_checker=format_checker())
    return checked


_RANGE_KEYWORDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}


def _has_float(value: Any) -> bool:
    if type(value) is float:
        return True
    if type(value) is dict:
        return any(_has_float(v) for v in value.values())
    if type(value) is list:
        return any(_has_float(v) for v in value)
    return False


def items_valid(name: str, data: Any) -> bool:
    """Whether `data`, a list for the list schema `name`, is valid: the fast yes/no check
    of every item (a machine-written file, e.g. the ledger, is read without marks first;
    only a file this rejects is read again with marks to say where it is wrong)."""
    checks = _item_checks(name)
    return checks is not None and isinstance(data, list) and all(map(checks[1], data))


@cache
def _item_checks(name: str) -> tuple[Validator, Callable[[Any], bool]] | None:
    """For a list schema: (validator of one item, fast yes/no check of one item), else None.

    jsonschema explains every error well but costs ~70 us per customer; fastjsonschema
    compiles the item schema to Python that answers "valid?" ~20x faster. Only items it
    rejects go through jsonschema, so messages are unchanged and a 100,000-customer file
    validates in seconds. (tests/test_schema.py checks both agree on generated items.)
    """
    items = load_schema(name).get("items")
    if load_schema(name).get("type") != "array" or not isinstance(items, dict):
        return None
    try:
        compiled = fastjsonschema.compile(items, formats=_FAST_FORMATS)
    except fastjsonschema.JsonSchemaDefinitionException:
        return None  # a keyword it cannot compile: jsonschema alone, slower but right

    def check(item: Any) -> bool:
        if _has_float(item):
            return False  # fastjsonschema takes 1.0 for an integer; jsonschema here does not
        try:
            compiled(item)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return validator(name).evolve(schema=items), check


def validate(doc: Document, schema_name: str, progress: Progress | None = None) -> list[Problem]:
    """Every schema violation in `doc`, one Problem each, sorted by location.

    Values the YAML reader could not read (`doc.unknown`: an alias, an unsupported tag) and
    missing keys of mappings it could not read in full (`doc.incomplete`) are left to the
    reader's own problem. `progress` is called with the number of list items checked.
    """
    full = validator(schema_name)
    per_item = _item_checks(schema_name)
    errors: list[tuple[JsonPath, ValidationError]] = []
    if per_item is None or not isinstance(doc.data, list):
        errors += (((), e) for e in full.iter_errors(doc.data))
    else:
        item_validator, item_ok = per_item
        schema = full.schema
        assert isinstance(schema, dict)  # a list schema (per_item): never the bool form
        outer = {k: v for k, v in schema.items() if k != "items"}
        errors += (((), e) for e in full.evolve(schema=outer).iter_errors(doc.data))
        for index, item in enumerate(doc.data):
            if not item_ok(item):
                errors += (((index,), e) for e in item_validator.iter_errors(item))
            if progress is not None and index % 1000 == 999:
                progress(index + 1)
    problems: list[Problem] = []
    # "expected an integer, got 1e+308" says it all; "not <= 28" on top of it is noise.
    wrong_type = {(*p, *e.absolute_path) for p, e in errors if e.validator == "type"}
    for prefix, error in errors:
        path = (*prefix, *error.absolute_path)
        if path in wrong_type and error.validator in _RANGE_KEYWORDS:
            continue
        if any(path[:n] in doc.unknown for n in range(len(path) + 1)):
            continue
        if error.validator == "required" and path in doc.incomplete:
            continue
        problems.extend(_problems(error, doc, prefix))
    return sorted(set(problems))


# --- turning a ValidationError into readable problems -------------------------------------


def quote(value: str, limit: int = 60) -> str:
    text = shorten(value, limit, mark="...")
    return "'" + text.replace("'", "\\'") + "'"


def describe(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {quote(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def label(path: JsonPath) -> str:
    """billing.sync_day / exclude_skus[1]; a list file's item index is left to the line."""
    parts = list(path)
    if parts and isinstance(parts[0], int):
        parts = parts[1:]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def suggest(word: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _type_words(types: str | Sequence[str]) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_WORDS.get(t, t) for t in names)


def _hint_for_string(value: Any, types: str | Sequence[str], quoted: bool) -> str:
    names = {types} if isinstance(types, str) else set(types)
    if not isinstance(value, str):
        return ""
    if names & {"integer", "number"}:
        if quoted:
            plain = resolve_plain(value.strip())
            if isinstance(plain, int | float) and not isinstance(plain, bool):
                return "; write the number without quotes"
            return ""
        # Unquoted but still a string: YAML 1.2 spellings of NaN/infinity, or a literal too
        # large for a float (1e999), which the reader keeps as text rather than inf.
        word = value.strip().lstrip("+-").lstrip(".").lower()
        if word == "nan":
            return "; NaN (not a number) cannot be used here, write a number"
        if word in {"inf", "infinity"}:
            return "; infinity cannot be used here, write a number"
        try:
            return "; the number is too large" if math.isinf(float(value)) else ""
        except ValueError:
            return ""
    if "boolean" in names and value.lower() in {"yes", "no", "on", "off", "y", "n", "true"}:
        return "; write true or false"
    return ""


def _range(schema: dict[str, Any]) -> str:
    low = schema.get("minimum")
    high = schema.get("maximum")
    xlow = schema.get("exclusiveMinimum")
    xhigh = schema.get("exclusiveMaximum")
    if low is not None and high is not None:
        return f"from {low} to {high}"
    bits = []
    if low is not None:
        bits.append(f">= {low}")
    if xlow is not None:
        bits.append(f"> {xlow}")
    if high is not None:
        bits.append(f"<= {high}")
    if xhigh is not None:
        bits.append(f"< {xhigh}")
    return " and ".join(bits)


def _format_message(fmt: str, value: Any) -> str:
    got = describe(value)
    if fmt == "iana-timezone":
        message = f"expected an IANA time zone name such as UTC or Europe/London, got {got}"
        near = suggest(str(value), timezones())
        return f"{message}; did you mean '{near}'?" if near else message
    if fmt == "email":
        return f"expected an e-mail address such as ops@msp.example, got {got}"
    if fmt == "uri":
        return f"expected an absolute URL such as https://host/path, got {got}"
    return f"expected a valid {fmt}, got {got}"


def _problems(error: ValidationError, doc: Document, prefix: JsonPath = ()) -> list[Problem]:
    path: JsonPath = (*prefix, *error.absolute_path)
    where = doc.location(path)
    name = label(path)
    lead = f"{name}: " if name else ""
    kind = error.validator
    value: Any = error.instance
    expected: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}

    if kind == "additionalProperties" and isinstance(value, dict):
        return _unknown_keys(value, schema, doc, path, lead)

    if kind == "required" and isinstance(value, dict):
        missing = [k for k in expected if k not in value]
        inside = f" in {name}" if name else ""
        return [Problem(where, f"missing required key '{k}'{inside}") for k in missing]

    if kind == "type":
        types = expected
        hint = _hint_for_string(value, types, path in doc.quoted)
        return [Problem(where, f"{lead}expected {_type_words(types)}, got {describe(value)}{hint}")]

    if kind in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        what = _type_words(schema.get("type", "number"))
        return [Problem(where, f"{lead}expected {what} {_range(schema)}, got {value!r}")]

    if kind == "enum":
        options = [str(o) for o in expected]
        message = f"{lead}expected one of: {', '.join(options)}; got {describe(value)}"
        near = suggest(str(value), options) if isinstance(value, str) else None
        return [Problem(where, f"{message}; did you mean '{near}'?" if near else message)]

    if kind == "format":
        return [Problem(where, lead + _format_message(expected, value))]

    if kind == "pattern":
        hint = _PATTERN_HINTS.get(expected, f"text matching {expected}")
        return [Problem(where, f"{lead}expected {hint}, got {describe(value)}")]

    if kind in {"minLength", "maxLength"}:
        return [Problem(where, lead + _length_message(kind, expected, value))]

    if kind == "minItems" and isinstance(value, list) and not value:
        what = schema.get("title", "this list")
        return [Problem(where, f"{lead}empty list, expected at least one entry in {what}")]

    if kind == "uniqueItems" and isinstance(value, list):
        return _duplicates(value, doc, path, lead)

    if kind in {"anyOf", "oneOf"}:
        return _any_of(error, doc, prefix, where, lead)

    return [Problem(where, f"{lead}{error.message}")]


def _length_message(kind: str, bound: int, value: str) -> str:
    if kind == "minLength" and bound == 1:
        return "expected a non-empty string"
    words = "at least" if kind == "minLength" else "at most"
    return f"expected {words} {bound} characters, got {len(value)}: {quote(value)}"


def _unknown_keys(
    value: dict[str, Any], schema: dict[str, Any], doc: Document, path: JsonPath, lead: str
) -> list[Problem]:
    known = list(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    out = []
    for key in value:
        if key in known or any(p.search(key) for p in patterns):
            continue
        near = suggest(key, known)
        if near:
            message = f"{lead}unknown key '{key}', did you mean '{near}'?"
        elif known:
            message = f"{lead}unknown key '{key}', expected one of: {', '.join(known)}"
        else:
            message = f"{lead}unknown key '{key}'"
        out.append(Problem(doc.key_location((*path, key)), message))
    return out


def _duplicates(value: list[Any], doc: Document, path: JsonPath, lead: str) -> list[Problem]:
    seen: dict[str, int] = {}
    out = []
    for index, item in enumerate(value):
        token = json.dumps(item, sort_keys=True)
        if token not in seen:
            seen[token] = index
            continue
        first = doc.location((*path, seen[token]))
        shown = quote(item) if isinstance(item, str) else describe(item)
        message = f"{lead}duplicate entry {shown} (first at {first})"
        out.append(Problem(doc.location((*path, index)), message))
    return out


def _any_of(
    error: ValidationError, doc: Document, prefix: JsonPath, where: Location, lead: str
) -> list[Problem]:
    branches: list[dict[str, Any]] = error.validator_value  # type: ignore[assignment]
    value = error.instance
    for index, branch in enumerate(branches):
        # Explain the branch whose type the value has: 0 for an id is "too small",
        # not "not an integer or a string".
        if any(_TYPES.is_type(value, t) for t in _as_list(branch.get("type", []))):
            inner = [e for e in error.context or () if e.schema_path[0] == index]
            if inner:
                return [p for e in inner for p in _problems(e, doc, prefix)]
    types = [t for b in branches for t in _as_list(b.get("type", []))]
    return [Problem(where, f"{lead}expected {_type_words(types)}, got {describe(value)}")]


def _as_list(types: str | list[str]) -> list[str]:
    return [types] if isinstance(types, str) else list(types)


# --- reporting problems (text, GitHub annotations, JSON) -----------------------------------


def github_annotation(problem: Problem, file: str | None = None) -> str:
    """`::error file=F,line=L,col=C::message` (workflow command escaping applied)."""
    loc = problem.location
    props = [f"file={command_property(file or loc.file)}"]
    if loc.line:
        props += [f"line={loc.line}", f"col={loc.col}"]
    return f"::error {','.join(props)}::{command_data(problem.message)}"


def problems_json(problems: Sequence[Problem]) -> dict[str, Any]:
    """The stable JSON shape of `validate --format json`."""
    return {
        "valid": not problems,
        "errors": [
            {
                "file": p.location.file,
                "line": p.location.line,
                "col": p.location.col,
                "message": p.message,
            }
            for p in sorted(problems)
        ],
    }


def annotation_file(config_dir: Path, problem: Problem) -> str:
    """The problem's file relative to the workspace GitHub resolves annotations against."""
    base = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
    full = (Path(config_dir) / problem.location.file).resolve()
    try:
        return full.relative_to(base).as_posix()
    except ValueError:
        return problem.location.file
