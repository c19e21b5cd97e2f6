"""Parsing shared by commands: ``k=v`` tags, ``NAME[:VERSION]`` references, ``--json``, and
SDK errors renamed to the options the user typed.

A value that cannot be parsed is a usage error (exit 2) reported by click with the option's
name; whether a name or key is *valid* is left to the SDK, whose ValidationError exits 2 too
(named after the option by :func:`option_names`).

Example::

    @key_value_option("--tag", "tags", help="...")
    def command(tags: tuple[TagPair, ...]) -> None:
        tag_filter(tags)     # {"stage": "test", "reviewed": None}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from modelyard.cli.state import CliState
from modelyard.errors import ValidationError

FC = TypeVar("FC", bound=Callable[..., Any])
TagPair = tuple[str, str | None]
ModelRef = tuple[str, int | None]


# Callbacks rather than click.ParamType subclasses: ParamType became generic in click 8.2, so
# one subclass cannot be typed for every click this project accepts (>= 8.1).
def parse_key_values(
    _ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[TagPair, ...]:
    """``key=value``, or ``key`` alone (any value when filtering, an empty tag when setting)."""
    pairs = []
    for value in values:
        key, sep, text = value.partition("=")
        if not key:
            raise click.BadParameter(f"{value!r} has no key; use key=value or key", param=param)
        pairs.append((key, text if sep else None))
    return tuple(pairs)


def parse_model_ref(_ctx: click.Context, param: click.Parameter, value: str) -> ModelRef:
    """``NAME`` (the latest version) or ``NAME:VERSION``, parsed to ``(name, version|None)``."""
    name, sep, version = value.partition(":")
    if not sep:
        return (name, None)
    if not version.isdigit() or int(version) < 1:
        raise click.BadParameter(
            f"{value!r}: the version after ':' is a whole number from 1", param=param
        )
    return (name, int(version))


def key_value_option(*decls: str, help: str) -> Callable[[FC], FC]:
    """A repeatable ``--tag key=value`` option, parsed to a tuple of :data:`TagPair`."""
    return click.option(
        *decls, multiple=True, metavar="KEY[=VALUE]", callback=parse_key_values, help=help
    )


def model_ref_argument(name: str) -> Callable[[FC], FC]:
    """A ``NAME[:VERSION]`` argument, parsed to a :data:`ModelRef`."""
    return click.argument(name, metavar="NAME[:VERSION]", callback=parse_model_ref)


def tag_filter(pairs: Iterable[TagPair]) -> dict[str, str | None] | None:
    """Tags to filter by, as the SDK takes them: key -> value, or None for any value."""
    wanted = dict(pairs)
    return wanted or None


def tag_values(pairs: Iterable[TagPair]) -> dict[str, str]:
    """Tags to set: key -> value (``key`` alone sets an empty tag, as in v1)."""
    return {key: value or "" for key, value in pairs}


@contextmanager
def option_names(**names: str) -> Iterator[None]:
    """Let the SDK's ValidationError name the option the user typed (``--target``) rather
    than the SDK argument behind it (``target_path``).

    Example::

        with option_names(target_path="--target"):
            datastore.upload(src, target_path=target)
    """
    try:
        yield
    except ValidationError as error:
        if error.field not in names:
            raise
        message = str(error).removeprefix(f"{error.field}: ")
        raise ValidationError(names[error.field], message) from error


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    # The root's --json (`modelyard --json run list`) is in the state; a command's own --json
    # goes there too, since errors are printed by the root group, which sees only the state.
    state = ctx.find_object(CliState)
    if state is None:
        return value
    state.json_output = state.json_output or value
    return state.json_output


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_remember_json,
    help="Print machine-readable JSON (and errors as JSON on stderr); `modelyard --json ...` "
    "does the same.",
)
