"""JSON Schema validation of a mapping document, every error at `file:line:col`.

Two validators, one answer: jsonschema explains every error (its messages are rewritten in
schema_messages), fastjsonschema checks the items of a list file ~20x faster, so only the
items it rejects are explained; the formats and types both use are in schema_formats.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from reconciler.config.resources import load_schema
from reconciler.config.schema_formats import FAST_FORMATS, TYPES, format_checker
from reconciler.config.schema_messages import problems_of
from reconciler.config.yamlsource import Document, JsonPath
from reconciler.core.errors import Problem

Progress = Callable[[int], None]

_Validator = validators.extend(Draft202012Validator, type_checker=TYPES)  # type: ignore[no-untyped-call]


@cache
def validator(name: str) -> Validator:
    """The explaining validator of a packaged schema (the schema itself checked first)."""
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
    validates in seconds. (tests/config/test_schema.py checks both agree on generated items.)
    """
    items = load_schema(name).get("items")
    if load_schema(name).get("type") != "array" or not isinstance(items, dict):
        return None
    try:
        compiled = fastjsonschema.compile(items, formats=FAST_FORMATS)
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
        problems.extend(problems_of(error, doc, prefix))
    return sorted(set(problems))
