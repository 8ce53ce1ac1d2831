"""The JSON Schema checks a Python executor makes on a task's input and output.

The API validates every submit with a complete JSON Schema 2020-12 validator;
the executor checks again, as a TypeScript executor does with zod, because a
job may have been validated against another version of the task. The package
is standard library only, so this is a small validator of its own for the
keywords task schemas use: type, enum, const, properties, required,
additionalProperties, items, prefixItems, min/maxItems, uniqueItems,
min/maxLength, pattern, minimum, maximum, exclusiveMinimum/Maximum,
multipleOf, min/maxProperties, allOf, anyOf, oneOf, not. Other keywords
(format, $ref, …) are left to the API's validator.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["SchemaError", "check", "problems"]

#: At most this many problems are reported for one value.
MAX_PROBLEMS = 20


class SchemaError(ValueError):
    """A value does not fit its schema; `problems` are `(path, message)` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


def check(value: Any, schema: dict[str, Any], root: str) -> None:
    """Raises SchemaError when `value` does not fit `schema`; paths start at `root`."""
    found = problems(value, schema, root)
    if found:
        raise SchemaError(found)


def problems(value: Any, schema: Any, path: str) -> list[tuple[str, str]]:
    """Every way `value` misses `schema` (at most MAX_PROBLEMS), as (dotted path, message)."""
    out: list[tuple[str, str]] = []
    _visit(value, schema, path, out)
    return out[:MAX_PROBLEMS]


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    actual = _type_of(value)
    return actual == name or (name == "number" and actual == "integer")


def _equal(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _visit(value: Any, schema: Any, path: str, out: list[tuple[str, str]]) -> None:
    if len(out) >= MAX_PROBLEMS:
        return
    if schema is True or schema is None:
        return
    if schema is False:
        out.append((path, "no value is allowed here"))
        return
    if not isinstance(schema, dict):
        return

    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, name) for name in names):
            out.append((path, f"must be {' or '.join(names)}, not {_type_of(value)}"))
            return
    if "enum" in schema and not any(_equal(value, option) for option in schema["enum"]):
        out.append((path, f"must be one of {json.dumps(schema['enum'])}"))
    if "const" in schema and not _equal(value, schema["const"]):
        out.append((path, f"must be {json.dumps(schema['const'])}"))

    if _is_type(value, "number"):
        _number(value, schema, path, out)
    elif isinstance(value, str):
        _string(value, schema, path, out)
    elif isinstance(value, (list, tuple)):
        _array(list(value), schema, path, out)
    elif isinstance(value, dict):
        _object(value, schema, path, out)

    for sub in schema.get("allOf", []):
        _visit(value, sub, path, out)
    if "anyOf" in schema and not any(not problems(value, sub, path) for sub in schema["anyOf"]):
        out.append((path, "must match at least one of anyOf"))
    if "oneOf" in schema:
        matches = sum(1 for sub in schema["oneOf"] if not problems(value, sub, path))
        if matches != 1:
            out.append((path, f"must match exactly one of oneOf (matches {matches})"))
    if "not" in schema and not problems(value, schema["not"], path):
        out.append((path, "must not match the schema in not"))


def _number(value: float, schema: dict[str, Any], path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        out.append((path, "must be a finite number"))
        return
    if "minimum" in schema and value < schema["minimum"]:
        out.append((path, f"must be >= {schema['minimum']}"))
    if "maximum" in schema and value > schema["maximum"]:
        out.append((path, f"must be <= {schema['maximum']}"))
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        out.append((path, f"must be > {schema['exclusiveMinimum']}"))
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        out.append((path, f"must be < {schema['exclusiveMaximum']}"))
    step = schema.get("multipleOf")
    if step and not math.isclose(value / step, round(value / step), abs_tol=1e-9):
        out.append((path, f"must be a multiple of {step}"))


def _string(value: str, schema: dict[str, Any], path: str, out: list[tuple[str, str]]) -> None:
    # JSON Schema counts code points, as Python's len does.
    if "minLength" in schema and len(value) < schema["minLength"]:
        out.append((path, f"must have at least {schema['minLength']} characters"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append((path, f"must have at most {schema['maxLength']} characters"))
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        out.append((path, f"must match {schema['pattern']}"))


def _array(value: list[Any], schema: dict[str, Any], path: str, out: list[tuple[str, str]]) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        out.append((path, f"must have at least {schema['minItems']} items"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.append((path, f"must have at most {schema['maxItems']} items"))
    if schema.get("uniqueItems"):
        seen = {json.dumps(item, sort_keys=True) for item in value}
        if len(seen) != len(value):
            out.append((path, "must not repeat items"))
    prefix = schema.get("prefixItems", [])
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else schema.get("items", True)
        _visit(item, sub, f"{path}.{index}", out)


def _object(value: dict[str, Any], schema: dict[str, Any], path: str, out: list[tuple[str, str]]) -> None:
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            out.append((f"{path}.{name}", "is required"))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        out.append((path, f"must have at least {schema['minProperties']} fields"))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        out.append((path, f"must have at most {schema['maxProperties']} fields"))
    additional = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            _visit(item, properties[name], f"{path}.{name}", out)
        elif additional is False:
            out.append((f"{path}.{name}", "unknown field"))
        else:
            _visit(item, additional, f"{path}.{name}", out)
