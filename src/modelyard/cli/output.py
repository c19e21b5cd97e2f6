"""How commands print: rich tables and key-value panels for people, JSON for scripts.

Human output goes to standard output through one rich console. Every cell is a ``Text``, so
names and values holding ``[brackets]`` are printed as they are, never read as rich markup.
Control and format characters in what is printed (an ESC in a tag value, a newline in a file
name, a right-to-left override) are shown escaped, as ``\x1b``, ``\n`` or ``\u202e``, by
:func:`escape_control`: a stored value cannot move the cursor, recolour or clear the terminal,
or fake extra lines of output. JSON output is one document on standard output and nothing
else, so ``| jq`` always works; JSON escapes control characters itself.

Example::

    print_table(["name", "runs"], [["tf-mnist", 3]], empty="no experiments")
    print_json({"name": "tf-mnist", "runs": 3})
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelyard import progress
from modelyard.backend.records import (
    iso_utc as iso_utc,  # the one ISO-time format, for every command
)

# Without a terminal rich assumes 80 columns (or $COLUMNS) and cuts long run ids and paths;
# piped output is read by grep and scripts, so there lines are as long as they need.
_PIPE_WIDTH = 1000
# A long value (a logged row or table) is cut to this many characters in a table cell.
_CELL_CHARS = 80
_CONSOLE_KEY = "modelyard.console"


# Unicode categories shown escaped: controls, format characters (bidirectional overrides,
# zero-width joiners), surrogates, private use, unassigned, and line/paragraph separators.
_ESCAPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def escape_control(text: str) -> str:
    """``text`` with every control or format character written as its Python escape.

    Example::

        escape_control("red\x1b[31m\n")     # 'red\\x1b[31m\\n'
    """
    if text.isprintable():
        return text
    return "".join(
        _escape_char(char)
        if not char.isprintable() and unicodedata.category(char) in _ESCAPED_CATEGORIES
        else char
        for char in text
    )


def _escape_char(char: str) -> str:
    # repr gives the shortest escape: \n, \t, \x1b, \u202e, \U000e0001.
    return repr(char)[1:-1]


def console() -> Console:
    """The console on standard output that the running command prints through (one per
    command, so that in-process invocations, as in tests, each get their own stdout)."""
    ctx = click.get_current_context(silent=True)
    meta: dict[str, Any] = ctx.meta if ctx is not None else {}
    if _CONSOLE_KEY not in meta:
        terminal = Console().is_terminal
        meta[_CONSOLE_KEY] = Console(width=None if terminal else _PIPE_WIDTH, highlight=False)
    found: Console = meta[_CONSOLE_KEY]
    return found


def print_json(data: Any) -> None:
    """Print ``data`` as one indented JSON document (non-JSON values as their ``str``)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def print_message(message: str) -> None:
    """Print a line for people (not markup, not highlighted, control characters escaped)."""
    console().print(Text(escape_control(message)), soft_wrap=True)


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    empty: str,
    title: str | None = None,
) -> None:
    """Print a table, or the line ``empty`` when there are no rows.

    The first column (an id or name that people copy) is never cut; on a narrow terminal the
    other columns wrap rather than lose characters.
    """
    cells = [[format_value(cell) for cell in row] for row in rows]
    if not cells:
        print_message(empty)
        return
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title=Text(escape_control(title)) if title is not None else None,
        title_justify="left",
    )
    first_width = max(len(columns[0]), *(len(row[0]) for row in cells))
    for index, column in enumerate(columns):
        table.add_column(column, overflow="fold", min_width=first_width if index == 0 else None)
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    console().print(table)


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """Print ``label  value`` lines, labels aligned; None shows as ``-``."""
    width = max((len(label) for label, _ in fields), default=0)
    for label, value in fields:
        print_message(f"{label:<{width}}  {format_value(value, limit=None)}")


def format_value(value: Any, limit: int | None = _CELL_CHARS) -> str:
    """A value as a table shows it: floats to 6 significant digits, containers as compact
    JSON (cut to ``limit`` characters), None as ``-``, control characters escaped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict | list | tuple):
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    else:
        text = str(value)
    # After the JSON too: it escapes C0 controls but keeps C1 and format characters.
    text = escape_control(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def format_tags(tags: dict[str, str]) -> str:
    """``k=v, k2`` (a tag without a value shows its key alone)."""
    return ", ".join(f"{key}={value}" if value else key for key, value in tags.items())


def format_time(timestamp: float | None) -> str | None:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS``, for people."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str | None:
    """``4.2 s``, ``3 m 05 s`` or ``2 h 07 m`` (None: none)."""
    return None if seconds is None else progress.format_duration(seconds)
