"""Metric points on their way in (a buffer) and on their way out (v1's get_metrics shapes).

Logging a point is a memory append; the buffer hands batches to a sink (the backend, or in a
submitted script the channel to the supervisor) when it holds ``FLUSH_POINTS`` points, when
``FLUSH_SECONDS`` have passed since the last hand-over, and whenever the run flushes (before a
read, when it ends, at interpreter exit).

Those automatic hand-overs happen on a background thread, so the logging loop does not wait
for the store; ``flush()`` waits until everything logged before it is stored, and raises what
the sink raised. Batches are handed over in logging order by one thread.

Example::

    buffer = MetricBuffer(lambda batches: print(len(batches)), next_index=lambda name: 0)
    buffer.add("loss", SCALAR, 0.5, None)
    buffer.flush()     # prints 1
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from modelyard.backend.records import (
    IMAGE,
    LIST,
    ROW,
    SCALAR,
    TABLE,
    MetricBatch,
    MetricSeries,
)
from modelyard.errors import ValidationError
from modelyard.names import check_metric_name

FLUSH_POINTS = 200_000
FLUSH_SECONDS = 2.0

_SCALAR_TYPES = (float, int, str, bool)


class MetricPoint(NamedTuple):
    """One point of a metric's history, as returned by ``run.get_metric_history``."""

    step: int
    value: Any
    time: float


def check_scalar(name: str, value: Any) -> float | int | str | bool:
    """Return a loggable scalar: numbers, strings and booleans (numpy scalars converted)."""
    if type(value) in _SCALAR_TYPES:
        return value  # type: ignore[no-any-return]
    item = getattr(value, "item", None)  # numpy and torch scalars
    if callable(item):
        with contextlib.suppress(TypeError, ValueError):
            value = item()
    if isinstance(value, _SCALAR_TYPES):
        return value
    raise ValidationError(
        "value",
        f"metric {name!r}: run.log takes a number, string or bool, not {type(value).__name__}; "
        "use log_list for lists, log_row or log_table for tables",
    )


class _Series:
    __slots__ = ("description", "kind", "next_index", "steps", "times", "values")

    def __init__(self, kind: str, description: str, next_index: int) -> None:
        self.kind = kind
        self.description = description
        self.next_index = next_index
        self.values: list[Any] = []
        self.steps: list[int] = []
        self.times: list[float] = []


class MetricBuffer:
    """Points waiting to be handed to ``sink``; see the module docstring."""

    def __init__(
        self,
        sink: Callable[[list[MetricBatch]], None],
        next_index: Callable[[str], int],
    ) -> None:
        self._sink = sink
        self._next_index = next_index
        self._series: dict[str, _Series] = {}
        self._pending = 0
        self._flush_at = time.monotonic() + FLUSH_SECONDS
        # Swaps may come from the atexit hook while the main thread logs.
        self._lock = threading.Lock()
        self._outbox: queue.Queue[list[MetricBatch]] = queue.Queue()
        self._sender: threading.Thread | None = None
        self._error: BaseException | None = None

    def _open(self, name: str, kind: str, description: str) -> _Series:
        check_metric_name("name", name)
        series = self._series.get(name)
        if series is None:
            series = _Series(kind, description, self._next_index(name))
            self._series[name] = series
        elif series.kind != kind:
            raise ValidationError(
                "name",
                f"metric {name!r} was logged as {series.kind}; it cannot also be logged as "
                f"{kind} (use another name)",
            )
        return series

    def add_scalar(self, name: str, value: Any, step: int | None) -> None:
        """The hot path of ``run.log``: kept to a few appends."""
        series = self._series.get(name)
        if series is None or series.kind != SCALAR:
            series = self._open(name, SCALAR, "")
        if type(value) not in _SCALAR_TYPES:
            value = check_scalar(name, value)
        series.steps.append(series.next_index if step is None else _check_step(step))
        series.values.append(value)
        series.next_index += 1
        series.times.append(time.time())
        self._pending += 1
        if self._pending >= FLUSH_POINTS or time.monotonic() >= self._flush_at:
            self._hand_over()

    def add(
        self, name: str, kind: str, value: Any, step: int | None, description: str = ""
    ) -> None:
        """Append one point of any kind."""
        series = self._open(name, kind, description)
        if description and not series.description:
            series.description = description
        series.steps.append(series.next_index if step is None else _check_step(step))
        series.values.append(value)
        series.next_index += 1
        series.times.append(time.time())
        self._pending += 1
        if self._pending >= FLUSH_POINTS or time.monotonic() >= self._flush_at:
            self._hand_over()

    def next_index(self, name: str) -> int:
        """The index the next point of ``name`` will get (points stored before included)."""
        series = self._series.get(name)
        return series.next_index if series is not None else self._next_index(name)

    def set_description(self, name: str, description: str) -> None:
        series = self._series.get(name)
        if series is not None and description and not series.description:
            series.description = description

    def _swap(self) -> list[MetricBatch]:
        """Take every pending point out of the buffer, as one batch per metric."""
        with self._lock:
            batches = []
            for name, series in self._series.items():
                if series.values:
                    batches.append(
                        MetricBatch(
                            name=name,
                            kind=series.kind,
                            batch_id=uuid.uuid4().hex,
                            values=series.values,
                            steps=series.steps,
                            times=series.times,
                            description=series.description,
                        )
                    )
                    series.values, series.steps, series.times = [], [], []
            self._pending = 0
            self._flush_at = time.monotonic() + FLUSH_SECONDS
            return batches

    def _raise_sender_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _hand_over(self) -> None:
        """Queue the pending points for the background sender; returns at once."""
        self._raise_sender_error()
        batches = self._swap()
        if not batches:
            return
        if self._sender is None or not self._sender.is_alive():
            self._sender = threading.Thread(
                target=self._send_forever, name="modelyard-metrics", daemon=True
            )
            self._sender.start()
        self._outbox.put(batches)

    def _send_forever(self) -> None:
        while True:
            batches = self._outbox.get()
            try:
                if self._error is None:
                    self._sink(batches)
            except BaseException as error:  # re-raised in the logging thread
                self._error = error
            finally:
                self._outbox.task_done()

    def flush(self) -> None:
        """Store every point logged so far; returns when they are stored."""
        self._hand_over()
        self._outbox.join()
        self._raise_sender_error()


def _check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        item = getattr(step, "item", None)
        step = item() if callable(item) else step
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValidationError("step", f"a step is an int, not {type(step).__name__}")
    return step


def shape_v1(series: MetricSeries) -> Any:
    """One metric as v1's ``get_metrics`` returns it.

    Scalars and lists: the value when logged once, the list of values when logged more often.
    Rows and tables: a dict of column -> list of values over every row. Images: the file name
    of the image (or the list of them).
    """
    values = series.values
    if series.kind in (SCALAR, LIST, IMAGE):
        return values[0] if len(values) == 1 else list(values)
    if series.kind in (ROW, TABLE):
        columns: dict[str, list[Any]] = {}
        for value in values:
            for column, cell in value.items():
                cells = cell if series.kind == TABLE else [cell]
                columns.setdefault(column, []).extend(cells)
        return columns
    raise ValueError(f"unknown metric kind {series.kind!r}")
