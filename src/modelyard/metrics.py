"""Metric points on their way in (a buffer) and on their way out (v1's get_metrics shapes).

Logging a point is a validated memory append under the buffer's lock, so any number of threads
may log into one run: each thread's points are stored in its order and none is lost. The buffer
hands batches to a sink (the backend, or in a submitted script the channel to the supervisor)
when it holds ``FLUSH_POINTS`` points or ``FLUSH_BYTES`` of text, when ``FLUSH_SECONDS`` have
passed since the last hand-over (checked by every log call and by the sender while it idles),
and whenever the run flushes (before a read, when it ends, at interpreter exit).

Those hand-overs go to one background sender thread, in logging order, so the logging loop
does not wait for the store. What the sender does with a batch:

- a batch larger than ``MAX_BATCH_BYTES`` is split, so no transaction or channel message grows
  without bound;
- a transient failure (the store busy or away, the channel to the supervisor briefly gone:
  :class:`~modelyard.errors.StorageError` and ``OSError``) is retried for ``RETRY_SECONDS``;
  batch ids make a retried call a no-op where the first attempt was stored after all;
- a permanent failure (the store refuses a batch: a metric logged with another kind by another
  process, say) drops that batch only: the other batches of the same hand-over are sent one by
  one, so one bad batch never takes good points with it.

Points that could not be stored are counted per metric and reported once: ``flush()`` raises
:class:`~modelyard.errors.MetricsNotStoredError` saying how many points of which metrics were
lost and why (``Run.complete()`` ends the run, then raises it; at interpreter exit it is
printed). A later, unrelated ``log()`` call never raises a sender's error.

What the store cannot hold is refused at the call, with a ValidationError naming the metric:
integers and steps outside 64 bits, a string over ``MAX_TEXT_CHARS`` characters, a point over
``MAX_POINT_BYTES`` (numbers count 8 bytes, strings their length).

What an unflushed point costs: points live in this process's memory until a hand-over stores
them, so a process killed with SIGKILL loses at most what it logged in the last
``FLUSH_SECONDS`` (or the last ``FLUSH_POINTS`` points); everything logged before a ``flush()``
that returned is stored.

Example::

    buffer = MetricBuffer(lambda batches: print(len(batches)), next_index=lambda name: 0)
    buffer.add("loss", SCALAR, 0.5, None)
    buffer.flush()     # prints 1
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
import time
import uuid
import weakref
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
from modelyard.errors import MetricsNotStoredError, StorageError, ValidationError
from modelyard.names import check_metric_name

FLUSH_POINTS = 200_000
FLUSH_SECONDS = 2.0
# Text and tables are handed over by size too, so a loop logging long strings does not hold
# gigabytes in memory before the point count is reached.
FLUSH_BYTES = 16 << 20
MAX_BATCH_BYTES = 16 << 20
MAX_TEXT_CHARS = 1 << 20
MAX_POINT_BYTES = 16 << 20
RETRY_SECONDS = 60.0
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_NUMBER_BYTES = 8
# A point's steps and time, packed (store/metric_codec.py): 16 bytes beside its value.
_POINT_OVERHEAD = 16


class MetricPoint(NamedTuple):
    """One point of a metric's history, as returned by ``run.get_metric_history``."""

    step: int
    value: Any
    time: float


def check_scalar(name: str, value: Any) -> float | int | str | bool:
    """Return a loggable scalar (numpy and torch scalars converted), or raise ValidationError
    naming the metric for what the store cannot hold."""
    kind = type(value)
    if kind is float or kind is bool:
        return value  # type: ignore[no-any-return]
    if kind is not int and kind is not str:
        item = getattr(value, "item", None)  # numpy and torch scalars
        if callable(item):
            with contextlib.suppress(TypeError, ValueError):
                value = item()
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, int):
            value = int(value)
        elif isinstance(value, str):
            value = str(value)
        else:
            raise ValidationError(
                "value",
                f"metric {name!r}: run.log takes a number, string or bool, not "
                f"{type(value).__name__}; use log_list for lists, log_row or log_table for tables",
            )
    if type(value) is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(
                "value",
                f"metric {name!r}: an integer of {value.bit_length()} bits does not fit the "
                "64 bits a metric holds; log it as a float or a string",
            )
        return value
    if len(value) > MAX_TEXT_CHARS:
        raise ValidationError(
            "value",
            f"metric {name!r}: a string of {len(value):,} characters is over the limit of "
            f"{MAX_TEXT_CHARS:,}; upload long text as a file (run.upload_file)",
        )
    return value  # type: ignore[no-any-return]


def list_of_scalars(name: str, value: Any) -> list[float | int | str | bool]:
    """The items of ``value`` (any iterable: list, tuple, range, generator, 1-D numpy array)
    checked with :func:`check_scalar`, as a list; a string, bytes or a dict is refused (each
    is iterable, but not a list of values)."""
    if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
        raise ValidationError(
            "value",
            f"a list metric takes a list, tuple, range, generator or array of values, not "
            f"{type(value).__name__}",
        )
    try:
        items = list(value)
    except TypeError as error:  # a 0-d numpy array has __iter__ but cannot be iterated
        raise ValidationError("value", f"{value!r} cannot be read as a list: {error}") from None
    return [check_scalar(name, item) for item in items]


def check_step(name: str, step: Any) -> int:
    """Return ``step`` as an int that the store holds (64 bits), or raise ValidationError."""
    if isinstance(step, bool) or not isinstance(step, int):
        item = getattr(step, "item", None)
        step = item() if callable(item) else step
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValidationError(
            "step", f"metric {name!r}: a step is an int, not {type(step).__name__}"
        )
    if not INT64_MIN <= step <= INT64_MAX:
        raise ValidationError(
            "step",
            f"metric {name!r}: a step of {step.bit_length()} bits does not fit the 64 bits "
            "a step holds",
        )
    return int(step)


def _cells_bytes(value: Any) -> int:
    """What one point's value weighs, roughly as stored: numbers 8 bytes, strings their
    length, lists and dicts their cells."""
    kind = type(value)
    if kind is str:
        return len(value) + 2
    if kind is list:
        return sum(_cells_bytes(cell) for cell in value) + 2
    if kind is dict:
        return sum(len(key) + 3 + _cells_bytes(cell) for key, cell in value.items()) + 2
    return _NUMBER_BYTES


def check_point_size(name: str, value: Any) -> int:
    """The size of a list, row or table point (see :func:`_cells_bytes`); ValidationError when
    it is over ``MAX_POINT_BYTES``."""
    size = _cells_bytes(value)
    if size > MAX_POINT_BYTES:
        raise ValidationError(
            "value",
            f"metric {name!r}: one point of about {size:,} bytes is over the limit of "
            f"{MAX_POINT_BYTES:,}; log it in several points or upload it as a file",
        )
    return size


class _Metric:
    """What every thread logging to one metric shares: its kind, description and the
    counter that gives points without a step their index."""

    __slots__ = ("counter", "description", "kind", "sized")

    def __init__(self, kind: str, description: str, next_index: int) -> None:
        self.kind = kind
        self.description = description
        # next() on an itertools.count is one C call: two threads never get the same index.
        self.counter = itertools.count(next_index)
        # Set once a point that is not a number was added: its batches are then sized point
        # by point when they are split (numbers weigh a fixed 24 bytes).
        self.sized = False


class _Pending:
    """The points of one metric that one thread logged and that wait for a hand-over."""

    __slots__ = ("counter", "ident", "kind", "metric", "name", "steps", "times", "values")

    def __init__(self, name: str, metric: _Metric) -> None:
        self.name = name
        self.metric = metric
        # The metric's, copied: one attribute fewer to look up on the hot path.
        self.kind = metric.kind
        self.counter = metric.counter
        # The thread's ident: a thread started after this one ended may get the same ident,
        # and then these lists too, which is safe, as only one live thread has an ident.
        self.ident = threading.get_ident()
        self.steps: list[int] = []
        self.values: list[Any] = []
        self.times: list[float] = []


class _Marker:
    """Put in the outbox by ``flush()``: set once everything queued before it was sent."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


# Every buffer of this process, so a forked child can reset them (see _reset_after_fork).
_buffers: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()
_now = time.time
_get_ident = threading.get_ident


class MetricBuffer:
    """Points waiting to be handed to ``sink``; see the module docstring.

    ``sink`` stores a list of batches and may raise; ``next_index(name)`` gives the index the
    first point of ``name`` gets (the points stored before count).

    Thread safety without a lock on the hot path (on this project's Python a lock costs about
    as much as the rest of a ``run.log`` call): each thread appends to lists of its own, steps
    then values then times, so the first ``len(times)`` entries of each are whole points. A
    hand-over, under ``_lock``, takes exactly that many from the front of each list (a slice
    and a ``del``, each one atomic), so a point its thread appends meanwhile waits for the
    next hand-over; a thread handing over its own lists just swaps them.
    """

    def __init__(
        self,
        sink: Callable[[list[MetricBatch]], None],
        next_index: Callable[[str], int],
    ) -> None:
        self._sink = sink
        self._next_index = next_index
        self._lock = threading.Lock()
        self._metrics: dict[str, _Metric] = {}
        # Each thread's pending points by thread ident and metric name (a dict lookup by
        # get_ident() costs a third of a threading.local attribute here), and all of them in
        # the order they were made, for hand-overs.
        self._by_thread: dict[int, dict[str, _Pending]] = {}
        self._all_pending: list[_Pending] = []
        # Only a trigger for hand-overs, so an unlocked += that misses a count does no harm.
        self._pending_bytes = 0
        self._flush_at = _now() + FLUSH_SECONDS
        # Hand-overs (lists of batches), flush markers and the stop word (None).
        self._outbox: queue.Queue[list[MetricBatch] | _Marker | None] = queue.Queue()
        self._sender: threading.Thread | None = None
        # Points the sender could not store, per metric, and the first reason per metric:
        # reported (and forgotten) by the next flush().
        self._lost: dict[str, int] = {}
        self._reasons: dict[str, str] = {}
        _buffers.add(self)

    # -- logging (any thread) -------------------------------------------------------------

    def _metric(self, name: str, kind: str, description: str = "") -> _Metric:
        """The metric ``name``, made on first use; called with the lock held."""
        metric = self._metrics.get(name)
        if metric is None:
            check_metric_name("name", name)
            metric = _Metric(kind, description, self._next_index(name))
            self._metrics[name] = metric
            self._ensure_sender()  # it also stores points that wait too long
        if metric.kind != kind:
            raise ValidationError(
                "name",
                f"metric {name!r} was logged as {metric.kind}; it cannot also be logged as "
                f"{kind} (use another name)",
            )
        return metric

    def _pending_of(self, name: str, kind: str, description: str = "") -> _Pending:
        """This thread's pending points of ``name`` (checking the kind)."""
        ident = _get_ident()
        mine = self._by_thread.get(ident)
        if mine is None:
            mine = self._by_thread[ident] = {}
        pending = mine.get(name)
        if pending is None or pending.kind != kind:
            with self._lock:
                metric = self._metric(name, kind, description)
                pending = _Pending(name, metric)
                self._all_pending.append(pending)
            mine[name] = pending
        return pending

    def add_scalar(self, name: str, value: Any, step: int | None) -> None:
        """The hot path of ``run.log``: a float without a step is three appends; everything
        else goes through :meth:`add`."""
        if type(value) is not float or step is not None:
            self.add(name, SCALAR, check_scalar(name, value), step)
            return
        try:
            pending = self._by_thread[_get_ident()][name]
        except KeyError:
            pending = self._pending_of(name, SCALAR)
        if pending.kind != SCALAR:
            pending = self._pending_of(name, SCALAR)
        pending.steps.append(next(pending.counter))
        pending.values.append(value)
        now = _now()
        pending.times.append(now)
        if now >= self._flush_at or len(pending.times) >= FLUSH_POINTS:
            self._hand_over()

    def add(
        self,
        name: str,
        kind: str,
        value: Any,
        step: int | None,
        description: str = "",
        *,
        reserved: bool = False,
    ) -> None:
        """Append one point of any kind (``value`` already checked by the caller's
        ``check_scalar``; its size is checked here). ``reserved=True`` takes ``step`` from
        :meth:`reserve` instead of the metric's next index."""
        if step is not None:
            step = check_step(name, step)
        numeric = type(value) in (float, int, bool)
        size = 0 if numeric else check_point_size(name, value)
        pending = self._pending_of(name, kind, description)
        metric = pending.metric
        if description and not metric.description:
            metric.description = description
        if not numeric:
            metric.sized = True
        index = next(pending.counter) if not reserved else 0
        pending.steps.append(index if step is None else step)
        pending.values.append(value)
        now = _now()
        pending.times.append(now)
        self._pending_bytes += size
        if (
            now >= self._flush_at
            or len(pending.times) >= FLUSH_POINTS
            or self._pending_bytes >= FLUSH_BYTES
        ):
            self._hand_over()

    def reserve(self, name: str, kind: str) -> int:
        """Take the next index of ``name`` for a point added later with ``reserved=True``
        (an image: its file is named by the index and uploaded first)."""
        return next(self._pending_of(name, kind).counter)

    def set_description(self, name: str, description: str) -> None:
        metric = self._metrics.get(name)
        if metric is not None and description and not metric.description:
            metric.description = description

    # -- handing over -------------------------------------------------------------------

    def _hand_over(self) -> None:
        """Queue every pending point for the sender, one batch per metric. Under the lock,
        so the outbox's order is the order of the hand-overs."""
        with self._lock:
            self._hand_over_locked()

    def _hand_over_locked(self) -> None:
        me = _get_ident()
        columns: dict[str, tuple[list[int], list[Any], list[float]]] = {}
        for pending in self._all_pending:
            count = len(pending.times)  # first: the points before it are whole (see above)
            if count:
                if pending.ident == me:
                    steps, values, times = pending.steps, pending.values, pending.times
                    pending.steps, pending.values, pending.times = [], [], []
                else:
                    steps, values, times = (
                        pending.steps[:count],
                        pending.values[:count],
                        pending.times[:count],
                    )
                    del pending.steps[:count], pending.values[:count], pending.times[:count]
                known = columns.get(pending.name)
                if known is None:
                    columns[pending.name] = (steps, values, times)
                else:
                    known[0].extend(steps)
                    known[1].extend(values)
                    known[2].extend(times)
        batches = [
            MetricBatch(
                name=name,
                kind=self._metrics[name].kind,
                batch_id=uuid.uuid4().hex,
                values=values,
                steps=steps,
                times=times,
                description=self._metrics[name].description,
            )
            for name, (steps, values, times) in columns.items()
        ]
        self._pending_bytes = 0
        self._flush_at = _now() + FLUSH_SECONDS
        if batches:
            self._ensure_sender()
            self._outbox.put(batches)

    def _ensure_sender(self) -> None:
        if self._sender is None or not self._sender.is_alive():
            self._sender = threading.Thread(
                target=self._send_forever, name="modelyard-metrics", daemon=True
            )
            self._sender.start()

    def _send_forever(self) -> None:
        while True:
            try:
                item = self._outbox.get(timeout=FLUSH_SECONDS)
            except queue.Empty:
                # Points logged by a loop that then stopped logging: store them anyway, so a
                # process killed later loses none of them.
                if _now() >= self._flush_at:
                    self._hand_over()
                continue
            if item is None:
                return
            if isinstance(item, _Marker):
                item.done.set()
            else:
                self._deliver(item)

    def _deliver(self, batches: list[MetricBatch]) -> None:
        """Store ``batches``; what cannot be stored is counted, never raised."""
        parts = [
            part
            for batch in batches
            for part in _split(batch, numeric=not self._metrics[batch.name].sized)
        ]
        try:
            self._send_with_retries(parts)
        except (StorageError, OSError) as error:
            # Still failing after RETRY_SECONDS: the store is away, for every batch alike.
            for part in parts:
                self._count_lost(part, error)
        except Exception as error:
            if len(parts) == 1:
                self._count_lost(parts[0], error)
                return
            # One of them was refused: send them one by one, so the others are kept.
            for part in parts:
                try:
                    self._send_with_retries([part])
                except Exception as part_error:
                    self._count_lost(part, part_error)

    def _send_with_retries(self, batches: list[MetricBatch]) -> None:
        deadline = time.monotonic() + RETRY_SECONDS
        delay = 0.05
        while True:
            try:
                self._sink(batches)
                return
            except (StorageError, OSError):
                if time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _count_lost(self, batch: MetricBatch, error: BaseException) -> None:
        with self._lock:
            self._lost[batch.name] = self._lost.get(batch.name, 0) + len(batch.values)
            self._reasons.setdefault(batch.name, f"{type(error).__name__}: {error}")

    def flush(self, report: bool = True) -> None:
        """Return when every point logged before this call is stored. With ``report``, raise
        :class:`~modelyard.errors.MetricsNotStoredError` for points that could not be stored
        since the last report."""
        marker = _Marker()
        with self._lock:
            self._hand_over_locked()
            if self._sender is not None and self._sender.is_alive():
                self._outbox.put(marker)
            else:
                marker.done.set()
        marker.done.wait()
        if report:
            self._report()

    def close(self) -> None:
        """Store what is pending (see :meth:`flush`), then stop the sender thread."""
        try:
            self.flush()
        finally:
            with self._lock:
                if self._sender is not None:
                    self._outbox.put(None)
                    self._sender = None

    def _report(self) -> None:
        with self._lock:
            lost, self._lost = self._lost, {}
            reasons, self._reasons = self._reasons, {}
        if lost:
            raise MetricsNotStoredError(lost, reasons)

    def _after_fork(self) -> None:
        """In a forked child: the parent's pending points are the parent's to store, and its
        lock and sender thread did not come along."""
        self._lock = threading.Lock()
        self._outbox = queue.Queue()
        self._sender = None
        self._by_thread = {}
        self._all_pending = []
        self._pending_bytes = 0
        self._lost, self._reasons = {}, {}


def _reset_after_fork() -> None:
    for buffer in list(_buffers):
        buffer._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)


def _split(batch: MetricBatch, numeric: bool) -> list[MetricBatch]:
    """``batch`` in parts of at most ``MAX_BATCH_BYTES`` (as estimated), each with its own
    batch id; the batch itself when it fits. ``numeric``: every value is a number."""
    point = _POINT_OVERHEAD + _NUMBER_BYTES
    if numeric and len(batch.values) * point <= MAX_BATCH_BYTES:
        return [batch]
    parts: list[MetricBatch] = []
    start, size = 0, 0
    for index, value in enumerate(batch.values):
        weight = point if numeric else _POINT_OVERHEAD + _cells_bytes(value)
        if size + weight > MAX_BATCH_BYTES and index > start:
            parts.append(_part(batch, start, index))
            start, size = index, 0
        size += weight
    if not parts:
        return [batch]
    parts.append(_part(batch, start, len(batch.values)))
    return parts


def _part(batch: MetricBatch, start: int, stop: int) -> MetricBatch:
    return MetricBatch(
        name=batch.name,
        kind=batch.kind,
        batch_id=uuid.uuid4().hex,
        values=batch.values[start:stop],
        steps=batch.steps[start:stop],
        times=batch.times[start:stop],
        description=batch.description,
        process=batch.process,
    )


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
