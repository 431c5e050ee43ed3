"""Read a compose file with line numbers and check it against the Compose Specification's JSON schema."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the runtime dependencies
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from generator.errors import InitError
from generator.manifest.locate import format_loc
from generator.steps.core.names import did_you_mean

# generator/schemas/compose-spec.json: compose-spec/compose-spec's schema/compose-spec.json, as vendored by
# check-jsonschema 0.39.0; Apache-2.0 (LICENSE.compose-spec beside it).
_SCHEMA = "compose-spec.json"
_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}
_UNKNOWN_KEYS = {"additionalProperties", "unevaluatedProperties"}
_UNEXPECTED = re.compile(r"not allowed \((.*) (?:was|were) unexpected\)$")
_NO_PATTERN = re.compile(r"^((?:'[^']*', )*'[^']*') (?:does|do) not match any of the regexes")
_QUOTED = re.compile(r"'([^']*)'")
_WORD = re.compile(r"^[A-Za-z0-9_.-]+$")

Loc = tuple[str | int, ...]


class ComposeError(InitError):
    """A compose file wfgen cannot read, as one `file:line: key: message` line (never a value from it)."""

    def __init__(self, display: str, line: int | None, message: str, loc: Loc = ()):
        where = f"{display}:{line}" if line is not None else display
        key = f" {format_loc(loc)}:" if loc else ""
        super().__init__(f"{where}:{key} {message}")


@functools.cache
def compose_schema() -> dict[str, Any]:
    text = resources.files("generator").joinpath("schemas", _SCHEMA).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def read_compose(path: Path, display: str) -> dict[str, Any]:
    """The compose file as ruamel's commented mappings (they keep line numbers), checked against the spec."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ComposeError(display, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ComposeError(display, None, f"cannot read: {exc}") from None
    try:
        data = YAML(typ="rt", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = (exc.problem or exc.context or "cannot parse").split("\n")[0]
        problem = problem.split(" with value ", 1)[0]  # a duplicate key's message quotes its values
        raise ComposeError(display, line, f"invalid YAML: {problem}") from None
    except (YAMLError, RecursionError) as exc:
        raise ComposeError(display, None, f"invalid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        raise ComposeError(display, 1, "the file is empty: no services")
    _validate(data, display)
    if not data.get("services"):
        raise ComposeError(display, line_of(data, ()), "no services", ("services",))
    return data  # type: ignore[no-any-return]


def _validate(data: Any, display: str) -> None:
    error = _first_error(data)
    if error is None:
        return
    loc: Loc = tuple(error.absolute_path)
    message = _message(error)
    if error.validator in _UNKNOWN_KEYS and isinstance(error.instance, Mapping):
        extra = _extra_keys(error)
        if extra:
            loc = (*loc, extra[0])
            message = f"unknown key{did_you_mean(extra[0], _known_keys(error.schema))}"
    raise ComposeError(display, line_of(data, loc), message, loc)


def _first_error(data: Any) -> jsonschema.ValidationError | None:
    """The most specific error: the deepest one, since a bad value also fails its parent's
    unevaluatedProperties; among those the one jsonschema finds most relevant."""
    errors = list(jsonschema.Draft202012Validator(compose_schema()).iter_errors(data))
    if not errors:
        return None
    specific = [error for error in errors if error.validator not in _UNKNOWN_KEYS] or errors
    depth = max(len(error.absolute_path) for error in specific)
    deepest = [error for error in specific if len(error.absolute_path) == depth]
    found: jsonschema.ValidationError = jsonschema.exceptions.best_match(deepest)
    return found


def _extra_keys(error: jsonschema.ValidationError) -> list[str]:
    """The keys jsonschema names as unexpected: "... not allowed ('portz' was unexpected)", or
    "'portz' does not match any of the regexes: ..." when the schema also allows patterns such as x-."""
    found = _UNEXPECTED.search(error.message) or _NO_PATTERN.match(error.message)
    return _QUOTED.findall(found.group(1)) if found else []


def _known_keys(schema: Mapping[str, Any], depth: int = 0) -> list[str]:
    """Keys a schema allows, including those of the definitions it combines with allOf."""
    keys = list(schema.get("properties", {}))
    for part in schema.get("allOf", []) if depth < 4 else []:
        ref = str(part.get("$ref", ""))
        if ref.startswith("#/$defs/"):
            keys += _known_keys(compose_schema()["$defs"].get(ref.removeprefix("#/$defs/"), {}), depth + 1)
    return keys


def _message(error: jsonschema.ValidationError) -> str:
    """Words for a schema error; never the offending value, which may be a secret."""
    kind, expected = error.validator, error.validator_value
    if kind == "type":
        kinds = [expected] if isinstance(expected, str) else list(expected)
        words = [_TYPES.get(item, item) for item in kinds]
        return "must be " + (", ".join(words[:-1]) + " or " if len(words) > 1 else "") + words[-1]
    if kind == "required":
        missing = [key for key in expected if key not in error.instance]
        return f"required key '{missing[0] if missing else expected[0]}' is missing"
    if kind == "enum":
        return "must be one of " + ", ".join(json.dumps(item) for item in expected)
    if kind in {"oneOf", "anyOf"}:
        return "does not match any form the compose specification allows here"
    if kind in {"minItems", "minLength", "minProperties"}:
        return "must not be empty"
    if kind == "uniqueItems":
        return "must not repeat an entry"
    if kind == "pattern":
        return f"must match {expected}"
    return f"is not valid here ({kind} {_short(expected)})"


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def line_of(data: Any, loc: Sequence[str | int]) -> int:
    """The 1-based line of the deepest key or item of loc that ruamel recorded; 1 if none."""
    line, node = 1, data
    for part in loc:
        position = _position(node, part)
        if position is None:
            break
        line = position + 1
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return line


def _position(node: Any, part: str | int) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        found = lc.key(part) if isinstance(node, Mapping) else lc.item(part)
    except (KeyError, IndexError, TypeError):
        return None
    return int(found[0]) if found else None


def line_of_key(node: Any, key: str, fallback: int) -> int:
    """The line of one key of a mapping from the compose file."""
    position = _position(node, key)
    return position + 1 if position is not None else fallback


def names(items: Iterable[Any]) -> str:
    return ", ".join(str(item) if _WORD.match(str(item)) else json.dumps(str(item)) for item in items)
