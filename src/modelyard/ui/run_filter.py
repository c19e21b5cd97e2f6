"""Metric expressions that filter the runs table: ``validation_acc > 0.9 and loss < 0.2``.

The expression is tokenized and parsed here into a small tree of comparisons; nothing is
evaluated as Python. The grammar::

    expression := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expression ")" | comparison
    comparison := NAME OP VALUE          OP: > >= < <= == !=
    VALUE      := a number, true/false, or a quoted string ('a' or "a")

``NAME`` is a metric name (letters, digits, ``_ . - /``; a name with other characters goes in
backquotes: `` `val acc` > 1``). A comparison is true of a run whose last value of that metric
compares so; a run without the metric, or whose value is of another kind (a string against a
number), fails it.

Example::

    keep = parse_metric_filter("validation_acc > 0.9")
    keep({"validation_acc": 0.95})          # True
    keep({})                                # False
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.errors import ValidationError

FIELD = "metric"
MAX_LENGTH = 1000
# Parentheses and "not"s nested deeper than this are refused before Python's recursion limit.
MAX_DEPTH = 50

Predicate = Callable[[Mapping[str, Any]], bool]

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<op>>=|<=|==|!=|>|<)
      | (?P<paren>[()])
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<quoted>`[^`]+`)
      | (?P<word>[A-Za-z_][\w.\-/]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValidationError(
                FIELD,
                f"cannot read {text[position:].strip()[:20]!r} at character {position + 1}; "
                "write comparisons like validation_acc > 0.9, joined by and/or",
            )
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise ValidationError(FIELD, f"{self.text!r} ends too early; finish the comparison")
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self.index += 1
            return True
        return False

    def expression(self) -> Predicate:
        parts = [self.term()]
        while self.keyword("or"):
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        return lambda metrics: any(part(metrics) for part in parts)

    def term(self) -> Predicate:
        parts = [self.factor()]
        while self.keyword("and"):
            parts.append(self.factor())
        if len(parts) == 1:
            return parts[0]
        return lambda metrics: all(part(metrics) for part in parts)

    def factor(self) -> Predicate:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValidationError(FIELD, f"nested deeper than {MAX_DEPTH} levels; simplify it")
        try:
            return self._factor()
        finally:
            self.depth -= 1

    def _factor(self) -> Predicate:
        if self.keyword("not"):
            inner = self.factor()
            return lambda metrics: not inner(metrics)
        token = self.peek()
        if token is not None and token.text == "(":
            self.index += 1
            inner = self.expression()
            closing = self.take()
            if closing.text != ")":
                raise ValidationError(
                    FIELD, f"expected ')' at character {closing.position + 1} of {self.text!r}"
                )
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        name_token = self.take()
        if name_token.kind == "quoted":
            name = name_token.text[1:-1]
        elif name_token.kind == "word" and name_token.text.lower() not in _KEYWORDS:
            name = name_token.text
        else:
            raise ValidationError(
                FIELD,
                f"expected a metric name at character {name_token.position + 1} of "
                f"{self.text!r}, found {name_token.text!r}",
            )
        op_token = self.take()
        if op_token.kind != "op":
            raise ValidationError(
                FIELD,
                f"expected one of > >= < <= == != after {name!r}, found {op_token.text!r}",
            )
        compare = _OPERATORS[op_token.text]
        value = _value(self.take(), self.text)

        def check(metrics: Mapping[str, Any]) -> bool:
            if name not in metrics:
                return False
            have = metrics[name]
            if isinstance(value, str) != isinstance(have, str):
                return False
            if not isinstance(have, str | int | float):  # lists, tables, None
                return False
            try:
                return bool(compare(have, value))
            except TypeError:
                return False

        return check


def _value(token: _Token, text: str) -> float | str | bool:
    if token.kind == "number":
        return float(token.text)
    if token.kind == "string":
        return token.text[1:-1]
    if token.kind == "word" and token.text.lower() in ("true", "false"):
        return token.text.lower() == "true"
    raise ValidationError(
        FIELD,
        f"expected a number, true/false or a quoted string at character {token.position + 1} "
        f"of {text!r}, found {token.text!r}",
    )


def parse_metric_filter(text: str) -> Predicate:
    """A predicate on a run's last metric values (name -> value) from ``text``; a
    ValidationError (field ``metric``) saying where the text stops making sense.

    Example::

        parse_metric_filter("(acc >= 0.9 or `top 5` > 0.99) and not loss > 1")
    """
    if len(text) > MAX_LENGTH:
        raise ValidationError(FIELD, f"an expression may be at most {MAX_LENGTH} characters")
    if not text.strip():
        raise ValidationError(FIELD, "the expression is empty; write e.g. validation_acc > 0.9")
    parser = _Parser(text)
    predicate = parser.expression()
    extra = parser.peek()
    if extra is not None:
        raise ValidationError(
            FIELD,
            f"unexpected {extra.text!r} at character {extra.position + 1} of {text!r}; "
            "join comparisons with and/or",
        )
    return predicate
