"""Live logs shipped in the background, the appends of a round trip sent as one call.

A run's supervisor hands each process's output to a :class:`LogShipper` as it arrives;
``append`` returns at once. One sender thread per shipper sends, for each log, everything
appended since its last send as ONE ``backend.append_run_file`` call at the log's offset;
while that call is in flight, new bytes wait and go in the next one (a group commit). So a
byte waits at most about one round trip to the store, and a flood of small appends becomes a
handful of calls: 3,000 appends of 4 KiB on S3 are a few PUTs instead of 3,000
(``benchmarks/bench_log_append.py``).

What the sender does with a log's bytes:

- one call carries at most ``MAX_CALL_BYTES``, so a flood goes in bounded parts;
- a transient failure (:class:`~modelyard.errors.StorageError`, ``OSError``: the store busy or
  away) is retried with backoff (0.05 s doubling to 2 s) for ``RETRY_SECONDS``. A retry is
  safe after a lost reply: ``append_run_file`` is idempotent on its offset, so bytes the
  store took are not written twice;
- when it gives up (the store still away, or it refused the call: a folder where the log
  should be, say), the log stops: the bytes not stored are dropped, later bytes of that log
  are dropped too (they would leave a gap), and a :class:`~modelyard.errors.StorageError`
  naming the log, the offset and the byte count is raised by the next ``append``, ``flush``
  or ``close`` (once per loss). The other logs go on.

Bytes of one log are stored in the order they were appended, each once; a byte that is not
stored is never dropped silently.

Memory (backpressure): at most ``MAX_PENDING_BYTES`` wait in the shipper. An ``append`` that
would hold more blocks until the sender has stored enough (or given up), so a process that
writes faster than the store takes it slows its supervisor's loop, not its memory.

Example::

    shipper = LogShipper(backend, run_id)
    shipper.append("user_logs/std_log.txt", b"epoch 1\\n")   # returns at once
    shipper.flush()     # every byte so far is stored (or the loss is raised)
    shipper.close()     # flushes, then stops the sender thread
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from modelyard.backend.base import Backend
from modelyard.errors import ModelyardError, StorageError

MAX_CALL_BYTES = 8 << 20
MAX_PENDING_BYTES = 64 << 20
RETRY_SECONDS = 60.0
_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 2.0


@dataclass(eq=False)
class _Log:
    """One live log: where its waiting bytes start in the log, and those bytes."""

    name: str
    offset: int = 0
    pending: bytearray = field(default_factory=bytearray)
    # Why the shipper gave up on this log (it stores no more of it), else None.
    stopped: str | None = None


@dataclass
class _Loss:
    """Bytes of one log that were not stored, not yet reported."""

    offset: int
    size: int
    reason: str


class LogShipper:
    """Appends to the live logs of one run, sent in the background; see the module docstring.

    ``offsets`` gives where logs already in the store end (a log not named starts at 0).
    Thread-safe: any number of threads may append to any logs.
    """

    def __init__(
        self,
        backend: Backend,
        run_id: str,
        *,
        offsets: dict[str, int] | None = None,
        max_call_bytes: int = MAX_CALL_BYTES,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.max_call_bytes = max_call_bytes
        self.max_pending_bytes = max_pending_bytes
        self.retry_seconds = retry_seconds
        self._cond = threading.Condition()
        self._logs = {name: _Log(name, offset) for name, offset in (offsets or {}).items()}
        self._pending = 0  # bytes appended and not yet stored or dropped
        self._losses: dict[str, _Loss] = {}
        self._sender: threading.Thread | None = None
        self._closing = False

    def append(self, name: str, data: bytes) -> None:
        """Queue ``data`` at the end of the log ``name`` and return (at once unless more than
        ``max_pending_bytes`` wait: then when the sender has caught up). Raises the loss of
        earlier bytes, if any, after taking ``data``."""
        if not data:
            self._report()
            return
        with self._cond:
            while (
                self._pending
                and self._pending + len(data) > self.max_pending_bytes
                and self._sender is not None
            ):
                self._cond.wait()  # backpressure: the sender notifies as it stores or drops
            log = self._logs.get(name)
            if log is None:
                log = self._logs[name] = _Log(name)
            if log.stopped is not None:
                self._lose(log, log.offset, len(data), log.stopped)
                log.offset += len(data)
            else:
                log.pending += data
                self._pending += len(data)
                self._ensure_sender()
                self._cond.notify_all()
        self._report()

    def pending_bytes(self) -> int:
        """Bytes appended that are not stored (nor given up on) yet."""
        with self._cond:
            return self._pending

    def flush(self) -> None:
        """Return when every byte appended before this call is stored; raise a
        :class:`~modelyard.errors.StorageError` naming each log whose bytes could not be."""
        with self._cond:
            while self._pending and self._sender is not None:
                self._cond.wait()
        self._report()

    def close(self) -> None:
        """Flush (see :meth:`flush`), then stop the sender thread. A later ``append`` starts
        it again."""
        try:
            self.flush()
        finally:
            with self._cond:
                sender = self._sender
                self._closing = True
                self._cond.notify_all()
            if sender is not None:
                sender.join()
            with self._cond:
                self._closing = False

    # -- the sender thread --------------------------------------------------------------

    def _ensure_sender(self) -> None:
        """Start the sender thread if it is not running; called with the lock held."""
        if self._sender is None:
            self._sender = threading.Thread(
                target=self._send_forever, name="modelyard-log-shipper", daemon=True
            )
            self._sender.start()

    def _send_forever(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    # Closing: under the lock, so an append from now on starts a new sender.
                    self._sender = None
                    return
                # One call per log with waiting bytes, in turn, so one flooded log does
                # not hold the others back by more than a call.
                work = [
                    (log, log.offset, bytes(log.pending[: self.max_call_bytes]))
                    for log in self._logs.values()
                    if log.pending
                ]
            for log, offset, data in work:
                reason = self._send(log.name, offset, data)
                with self._cond:
                    if reason is None:
                        del log.pending[: len(data)]
                        log.offset += len(data)
                        self._pending -= len(data)
                    else:
                        size = len(log.pending)
                        self._lose(log, log.offset, size, reason)
                        log.stopped = reason
                        log.offset += size
                        log.pending.clear()
                        self._pending -= size
                    self._cond.notify_all()

    def _send(self, name: str, offset: int, data: bytes) -> str | None:
        """Store ``data`` at ``offset`` of ``name``, retrying transient failures; None when
        stored, else why not."""
        deadline = time.monotonic() + self.retry_seconds
        delay = _FIRST_DELAY_S
        while True:
            try:
                self.backend.append_run_file(self.run_id, name, offset, data)
                return None
            except (StorageError, OSError) as error:
                if time.monotonic() + delay > deadline:
                    return (
                        f"the store failed for {self.retry_seconds:g} s: "
                        f"{type(error).__name__}: {error}"
                    )
            except ModelyardError as error:
                return f"the store refused it: {type(error).__name__}: {error}"
            except Exception as error:  # the sender thread must outlive any failure
                return f"{type(error).__name__}: {error}"
            time.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY_S)

    # -- losses -------------------------------------------------------------------------

    def _lose(self, log: _Log, offset: int, size: int, reason: str) -> None:
        """Count ``size`` bytes of ``log`` from ``offset`` as not stored; lock held."""
        if not size:
            return
        known = self._losses.get(log.name)
        if known is None:
            self._losses[log.name] = _Loss(offset, size, reason)
        else:
            known.size += size

    def _report(self) -> None:
        """Raise the losses not reported yet (and forget them)."""
        with self._cond:
            if not self._losses:
                return
            losses, self._losses = self._losses, {}
        described = "; ".join(
            f"{loss.size:,} bytes of {name!r} from offset {loss.offset:,} ({loss.reason})"
            for name, loss in sorted(losses.items())
        )
        raise StorageError(
            f"live logs of run {self.run_id!r} were not stored: {described}; the log stops "
            "there (what follows would leave a gap): check the run's storage"
        )
