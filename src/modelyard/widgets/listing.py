"""Listings that a notebook shows as tables, and that v1 code uses as it used v1's.

v1's ``exp.get_runs()`` is a generator, read as the caller iterates; :class:`RunIterator` is
an iterator too (``for``, ``next()``, ``list()`` work as they did), that a notebook shows as a
table of its first runs. Showing it reads those runs ahead and keeps them, so iterating
afterwards still yields every run, the shown ones first. v1's ``Model.list`` is a list;
:class:`DisplayList` is one, with a table for notebooks.

Example::

    runs = exp.get_runs()      # shown as a table in a notebook
    first = next(runs)         # the newest run, as with v1's generator
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

# How many items a notebook's table of an iterator reads ahead.
PEEK = 50


class RunIterator(Iterator[T], Generic[T]):
    """An iterator that a notebook shows with ``render(first_items, complete)``; ``complete``
    tells whether those are all of them."""

    def __init__(self, items: Iterator[T], render: Callable[[Sequence[T], bool], str]) -> None:
        self._items = items
        self._ahead: list[T] = []
        self._render = render

    def __iter__(self) -> RunIterator[T]:
        return self

    def __next__(self) -> T:
        if self._ahead:
            return self._ahead.pop(0)
        return next(self._items)

    def close(self) -> None:
        """Stop reading (a generator's ``close``): later ``next()`` raises StopIteration."""
        self._ahead.clear()
        self._items = iter(())

    def _repr_html_(self) -> str:
        # One more than shown, to know whether there are others.
        missing = PEEK + 1 - len(self._ahead)
        if missing > 0:
            self._ahead += list(itertools.islice(self._items, missing))
        return self._render(self._ahead[:PEEK], len(self._ahead) <= PEEK)


class DisplayList(list[T], Generic[T]):
    """A list that a notebook shows with ``render(items)``."""

    def __init__(self, items: Sequence[T], render: Callable[[Sequence[T]], str]) -> None:
        super().__init__(items)
        self._render = render

    def _repr_html_(self) -> str:
        return self._render(self)
