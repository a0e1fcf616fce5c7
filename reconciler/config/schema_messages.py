"""A jsonschema ValidationError as a reviewer's comment: "what is wrong, what was expected",
pinned to the node that is wrong (for a missing key: the mapping that lacks it; for an
unknown key: the key).

jsonschema's own messages name Python reprs and schema internals ("'ten' is not of type
'number'"); these name the YAML as written ("expected a number, got string 'ten'"), add a
hint where a common slip explains the error, and suggest the nearest known name.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from jsonschema import ValidationError

from reconciler.config.schema_formats import TYPES, timezones
from reconciler.config.yamlsource import Document, JsonPath, resolve_plain
from reconciler.core.errors import Problem
from reconciler.core.vocabulary import Location
from reconciler.secure.scrub import shorten

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


def problems_of(error: ValidationError, doc: Document, prefix: JsonPath = ()) -> list[Problem]:
    """The readable problems one ValidationError stands for (one per missing or unknown key)."""
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
        if any(TYPES.is_type(value, t) for t in _as_list(branch.get("type", []))):
            inner = [e for e in error.context or () if e.schema_path[0] == index]
            if inner:
                return [p for e in inner for p in problems_of(e, doc, prefix)]
    types = [t for b in branches for t in _as_list(b.get("type", []))]
    return [Problem(where, f"{lead}expected {_type_words(types)}, got {describe(value)}")]


def _as_list(types: str | list[str]) -> list[str]:
    return [types] if isinstance(types, str) else list(types)
