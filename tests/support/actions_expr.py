"""GitHub Actions expressions: the part of the language the generated workflows use, evaluated strictly.

Modelled: literals ('text' with '' for a quote, numbers, true, false, null); property paths whose names may
hold a '-' (`needs.check-infrastructure.outputs.wave-1`); `!`; `==` and `!=` between values of one type
(strings compared case-blind, as GitHub does); `&&` and `||`, which return one of their operands, so
`inputs.services || 'all'` is a default and `c && x || y` a conditional; parentheses; the functions in
FUNCTIONS. Anything else raises SimulatorError. Which names a path may read is the caller's `resolve`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Node = tuple[Any, ...]
Resolve = Callable[[tuple[str, ...]], Any]

_TOKEN = re.compile(r"\s*(?:('(?:[^']|'')*')|(\d+(?:\.\d+)?)|(==|!=|&&|\|\||[!().,])|([A-Za-z_][\w-]*))")
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_LITERALS = {"true": True, "false": False, "null": None}


class SimulatorError(AssertionError):
    """The workflow uses something this simulator does not model: fail loudly, never guess."""


def truthy(value: Any) -> bool:
    """GitHub's truthiness: null, false, 0, NaN and '' are falsy; everything else, arrays included, is truthy."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return value == value and value != 0  # NaN is the one value not equal to itself
    return value != "" if isinstance(value, str) else True


def text(value: Any) -> str:
    """A value as GitHub writes it into a string: null as '', booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise SimulatorError(f"GitHub writes {value!r} into text as 'Array' or 'Object' (not modelled)")


def equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    if type(left) is type(right) and not isinstance(left, list | dict):
        return bool(left == right)
    raise SimulatorError(f"comparing {left!r} with {right!r}: GitHub converts both to numbers; not modelled")


def _from_json(value: Any) -> Any:
    if not isinstance(value, str):
        raise SimulatorError(f"fromJSON({value!r}): not a string")
    try:
        return json.loads(value)
    except ValueError:
        raise SimulatorError(f"fromJSON({value!r}): not JSON, and GitHub fails the job here") from None


def _join(items: Any, separator: Any = ",") -> str:
    if not isinstance(items, list) or not isinstance(separator, str):
        raise SimulatorError(f"join({items!r}, {separator!r}): only join(array, string) is modelled")
    return separator.join(text(item) for item in items)


def _contains(haystack: Any, needle: Any) -> bool:
    if not isinstance(haystack, list):
        raise SimulatorError(f"contains({haystack!r}, ...): only an array is modelled, not a string search")
    return any(equal(item, needle) for item in haystack)


def _format(template: Any, *args: Any) -> str:
    if not isinstance(template, str):
        raise SimulatorError(f"format({template!r}, ...): the format is not a string")

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        if match.group(1) is None or int(match.group(1)) >= len(args):
            raise SimulatorError(f"format({template!r}): GitHub rejects {token!r} with {len(args)} args")
        return text(args[int(match.group(1))])

    return re.sub(r"\{\{|\}\}|\{(\d+)\}|[{}]", one, template)


FUNCTIONS: dict[str, Callable[..., Any]] = {  # lower case: GitHub's function names ignore case
    "fromjson": _from_json,
    "join": _join,
    "contains": _contains,
    "format": _format,
    "cancelled": lambda: False,  # nothing is ever cancelled in a simulated run
}
STATUS_FUNCTIONS = {"cancelled"}  # without one of them, `if:` means `success() && (...)`


class _Parser:
    """Recursive descent, loosest first: `||`, then `&&`, then `==` / `!=`, then `!`."""

    def __init__(self, expr: str) -> None:
        self.expr, self.tokens, self.at = expr, self.tokenize(expr), 0

    @staticmethod
    def tokenize(expr: str) -> list[tuple[str, str]]:
        tokens, position = [], 0
        kinds = ("string", "number", "operator", "name")
        while expr[position:].strip():
            match = _TOKEN.match(expr, position)
            if not match:
                raise SimulatorError(f"simulator does not understand {expr[position:]!r} in {expr!r}")
            index = next(i for i, group in enumerate(match.groups()) if group is not None)
            tokens.append((kinds[index], match.groups()[index]))
            position = match.end()
        return tokens

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens) or (expected is not None and self.peek() != expected):
            raise SimulatorError(f"${{{{ {self.expr} }}}}: expected {expected or 'more'} at token {self.at}")
        self.at += 1
        return self.tokens[self.at - 1]

    def parse(self) -> Node:
        node = self.either()
        if self.peek() is not None:
            raise SimulatorError(f"${{{{ {self.expr} }}}}: unexpected {self.peek()!r}")
        return node

    def either(self) -> Node:
        node = self.both()
        while self.peek() == "||":
            self.take()
            node = ("||", node, self.both())
        return node

    def both(self) -> Node:
        node = self.comparison()
        while self.peek() == "&&":
            self.take()
            node = ("&&", node, self.comparison())
        return node

    def comparison(self) -> Node:
        node = self.unary()
        if self.peek() in ("==", "!="):
            node = (self.take()[1], node, self.unary())
        if self.peek() in ("==", "!="):
            raise SimulatorError(f"${{{{ {self.expr} }}}}: chained comparisons are not modelled")
        return node

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take()
            return ("!", self.unary())
        return self.primary()

    def primary(self) -> Node:
        kind, token = self.take()
        if kind == "string":
            return ("value", token[1:-1].replace("''", "'"))
        if kind == "number":
            return ("value", float(token) if "." in token else int(token))
        if token == "(":
            node = self.either()
            self.take(")")
            return node
        if kind != "name":
            raise SimulatorError(f"${{{{ {self.expr} }}}}: unexpected {token!r}")
        if token in _LITERALS:
            return ("value", _LITERALS[token])
        if self.peek() == "(":
            return self.call(token)
        path = [token]
        while self.peek() == ".":
            self.take()
            kind, name = self.take()
            if kind != "name":
                raise SimulatorError(f"${{{{ {self.expr} }}}}: only `.name` dereferences are modelled")
            path.append(name)
        if self.peek() == "(":
            raise SimulatorError(f"${{{{ {self.expr} }}}}: method calls do not exist in expressions")
        return ("path", tuple(path))

    def call(self, name: str) -> Node:
        if name.lower() not in FUNCTIONS:
            raise SimulatorError(f"${{{{ {self.expr} }}}}: simulator does not model the function {name}()")
        self.take("(")
        args = []
        while self.peek() != ")":
            args.append(self.either())
            if self.peek() != ")":
                self.take(",")
        self.take(")")
        return ("call", name.lower(), tuple(args))


def parse(expr: str) -> Node:
    return _Parser(expr).parse()


def evaluate(node: Node, resolve: Resolve) -> Any:
    """The value of a parsed expression; `&&` and `||` evaluate their right side only when GitHub would."""
    kind = node[0]
    if kind == "value":
        return node[1]
    if kind == "path":
        return resolve(node[1])
    if kind == "!":
        return not truthy(evaluate(node[1], resolve))
    if kind in ("&&", "||"):
        left = evaluate(node[1], resolve)
        decided = not truthy(left) if kind == "&&" else truthy(left)
        return left if decided else evaluate(node[2], resolve)
    if kind in ("==", "!="):
        same = equal(evaluate(node[1], resolve), evaluate(node[2], resolve))
        return same if kind == "==" else not same
    return FUNCTIONS[node[1]](*(evaluate(arg, resolve) for arg in node[2]))


def _uses_status(node: Node) -> bool:
    kind = node[0]
    if kind == "call":
        return node[1] in STATUS_FUNCTIONS or any(_uses_status(arg) for arg in node[2])
    return kind not in ("value", "path") and any(_uses_status(child) for child in node[1:])


def interpolate(template: Any, resolve: Resolve) -> Any:
    """`template` with every ${{ }} replaced by its text; a lone expression keeps its type (a list for fromJSON)."""
    if not isinstance(template, str):
        return template
    lone = _EXPR.fullmatch(template.strip())
    if lone:
        return evaluate(parse(lone.group(1)), resolve)
    return _EXPR.sub(lambda match: text(evaluate(parse(match.group(1)), resolve)), template)


def condition(source: str | None, resolve: Resolve, previous_ok: bool) -> bool:
    """An `if:`, with or without ${{ }}; without a status function it is `success() && (...)`, as on GitHub."""
    if source is None:
        return previous_ok
    if not isinstance(source, str):
        raise SimulatorError(f"if: {source!r}: only expressions are modelled")
    lone = _EXPR.fullmatch(source.strip())
    if not lone and "${{" in source:  # GitHub would read the whole text as a non-empty string: always true
        raise SimulatorError(f"if: {source!r}: text around ${{{{ }}}} makes the condition a string")
    node = parse(lone.group(1) if lone else source)
    if not _uses_status(node) and not previous_ok:
        return False
    return truthy(evaluate(node, resolve))
