"""The script's end of the channel to its supervisor: a Backend whose calls go over a socket.

``Run.get_context()`` in a submitted script gets a :class:`ChannelBackend`; the supervisor's
:class:`~modelyard.runner.channel.ChannelServer` makes each call on the real backend, within
the run's scope. The wire format is in :mod:`modelyard.backend.channel_wire`.

Connections: a call takes an idle connection of this process (or makes one) and gives it back
when its reply is read, so threads share one connection while they call one after another and
get one each when they call at once; a download holds its connection until it is read to the
end (a stream closed half-read drops it). A forked child never uses its parent's connections:
it closes its copies at the fork and makes its own.

Example::

    client = ChannelBackend("/tmp/run.sock")              # in the script
    client.get_run(run_id).status
    with client.open_run_file(run_id, "outputs/model.bin") as f:
        f.read(16)                                        # read as the frames arrive
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import socket
import threading
import weakref
from pathlib import Path
from typing import IO, Any

from modelyard import errors
from modelyard.backend.base import Backend
from modelyard.backend.channel_wire import (
    FRAME_BYTES,
    STREAM,
    NotJSON,
    StreamReader,
    decode,
    encode,
    error_from_wire,
    receive,
    send,
    send_stream,
)

# Every client of this process, so a forked child can forget their connections.
_clients: weakref.WeakSet[ChannelBackend] = weakref.WeakSet()


class ChannelBackend(Backend):
    """A Backend whose every call goes to the run's supervisor (in the user's processes).

    Every contract method is idempotent, so a call that fails on a broken connection is sent
    again once on a new one (an upload from a stream only when none of it was read yet).
    """

    def __init__(
        self, socket_path: str, workspace_name: str = "", workdir: str | None = None
    ) -> None:
        self.socket_path = socket_path
        self.workspace_name = workspace_name
        # The run's working folder: files inside it travel as paths (the supervisor reads
        # them), any other file as a stream (the supervisor reads nothing else for a script).
        self.workdir = os.path.realpath(workdir) if workdir is not None else None
        self._reset()
        _clients.add(self)

    def _reset(self) -> None:
        """Start with no connection (at creation, and in a forked child)."""
        # A pool of idle connections rather than one connection under a lock: 8 threads
        # calling log_metrics at once made 339-351 calls/s with one connection each against
        # 189-237 with one shared (get_run: equal to 1.2x; a loaded 2-core machine), and a
        # call made while a download is open needs a connection of its own anyway. Logging
        # from many threads goes through one sender thread, so it is the same either way.
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._idle: list[socket.socket] = []
        self._open: weakref.WeakSet[socket.socket] = weakref.WeakSet()

    def _after_fork(self) -> None:
        # Closing the child's copies leaves the parent's connections as they are; a child
        # reading the parent's socket would take (and lose) the parent's replies.
        for sock in list(self._open):
            with contextlib.suppress(OSError):
                sock.close()
        self._reset()

    # -- connections -------------------------------------------------------------------

    def _take(self) -> socket.socket:
        if self._pid != os.getpid():  # forked by other means than os.fork (no hook ran)
            self._after_fork()
        with self._lock:
            if self._idle:
                return self._idle.pop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        with self._lock:
            self._open.add(sock)
        return sock

    def _give_back(self, sock: socket.socket) -> None:
        if self._pid != os.getpid():
            return
        with self._lock:
            self._idle.append(sock)

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()

    def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Send one call and return its decoded result (a stream for a download)."""
        try:
            return self._exchange(method, args, kwargs, None)
        except NotJSON as error:
            raise _not_json_argument(method, args, kwargs, error) from None

    def _exchange(
        self,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        upload: Path | IO[bytes] | None,
    ) -> Any:
        request = {"method": method, "args": encode(list(args)), "kwargs": encode(kwargs)}
        for attempt in (1, 2):
            # A path is opened (again) by each attempt; the caller's own stream once only.
            source = _open_source(upload) if isinstance(upload, Path) else upload
            sock: socket.socket | None = None
            failure: Exception | None = None
            sent_from_source = False
            try:
                sock = self._take()
                send(sock, request)
                if source is not None:
                    sent_from_source = True
                    failure = send_stream(sock, source)
                reply = receive(sock)
                break
            except OSError as error:
                if sock is not None:
                    sock.close()
                self._drop_idle()  # made before the break, to a server that is gone: stale
                if attempt == 2 or (sent_from_source and source is upload):
                    raise errors.StorageError(
                        f"lost the connection to the run's supervisor: {error}"
                    ) from error
            except BaseException:
                if sock is not None:
                    sock.close()  # out of step (an interrupt mid-call): never used again
                raise
            finally:
                if source is not None and source is not upload:
                    source.close()
        assert sock is not None
        if failure is not None:
            self._give_back(sock)
            raise failure  # the caller's source failed: its own error, not the server's echo
        if "error" in reply:
            self._give_back(sock)
            raise error_from_wire(reply["error"])
        result = decode(reply["result"])
        if result is STREAM:
            return io.BufferedReader(_Download(self, sock), FRAME_BYTES)
        self._give_back(sock)
        return result

    # -- files -------------------------------------------------------------------------

    def upload_run_file(self, run_id: str, name: str, source: Any) -> None:
        self._upload("upload_run_file", (run_id, name), source)

    def upload_model_file(self, model_name: str, upload_id: str, relpath: str, source: Any) -> None:
        self._upload("upload_model_file", (model_name, upload_id, relpath), source)

    def upload_snapshot_blob(self, digest: str, source: Any) -> None:
        self._upload("upload_snapshot_blob", (digest,), source)

    def upload_datastore_file(
        self, name: str, relpath: str, source: Any, *, overwrite: bool = False
    ) -> bool:
        written: bool = self._upload(
            "upload_datastore_file", (name, relpath), source, {"overwrite": overwrite}
        )
        return written

    def _upload(
        self,
        method: str,
        args: tuple[Any, ...],
        source: Any,
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if isinstance(source, Path):
            real = os.path.realpath(source)
            if self.workdir is not None and Path(real).is_relative_to(self.workdir):
                return self._exchange(method, (*args, Path(real)), kwargs or {}, None)
        return self._exchange(method, (*args, STREAM), kwargs or {}, source)

    def open_run_file(self, run_id: str, name: str) -> IO[bytes]:
        stream: IO[bytes] = self._call("open_run_file", (run_id, name), {})
        return stream

    def open_model_file(self, name: str, version: int, relpath: str) -> IO[bytes]:
        stream: IO[bytes] = self._call("open_model_file", (name, version, relpath), {})
        return stream

    def open_snapshot_blob(self, digest: str) -> IO[bytes]:
        stream: IO[bytes] = self._call("open_snapshot_blob", (digest,), {})
        return stream

    def open_datastore_file(self, name: str, relpath: str) -> IO[bytes]:
        stream: IO[bytes] = self._call("open_datastore_file", (name, relpath), {})
        return stream


def _not_json_argument(
    method: str, args: tuple[Any, ...], kwargs: dict[str, Any], error: NotJSON
) -> errors.ValidationError:
    """The ValidationError a backend in this process raises for a call that cannot go out
    as JSON: naming the argument at fault (found only once a call failed, so calls that
    go out are encoded once)."""
    try:
        bound = inspect.signature(getattr(Backend, method)).bind(None, *args, **kwargs)
    except TypeError:
        return error
    for name, value in list(bound.arguments.items())[1:]:
        try:
            json.dumps(encode(value))
        except (TypeError, ValueError) as reason:
            return errors.ValidationError(
                name, f"must be JSON data (dicts, lists, strings, numbers): {reason}"
            )
    return error


def _open_source(path: Path) -> IO[bytes]:
    try:
        return open(path, "rb")  # the caller closes it
    except OSError as error:
        raise errors.ValidationError("source", f"cannot read {path}: {error.strerror}") from None


class _Download(StreamReader):
    """A download's stream on the connection it came on: given back to the client when read
    to its end, dropped when closed before (the rest is never read)."""

    def __init__(self, client: ChannelBackend, sock: socket.socket) -> None:
        super().__init__(sock)
        self._client = client
        self._pid = os.getpid()

    def readinto(self, buffer: Any) -> int:
        if self._pid != os.getpid():
            raise errors.StorageError(
                "this file was opened by another process (the parent of a fork): "
                "open it again in this one"
            )
        return super().readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            if self.done and not self.broken:
                self._client._give_back(self.sock)
            else:
                self.sock.close()
        super().close()


def _forwarding(method: str) -> Any:
    def forward(self: ChannelBackend, *args: Any, **kwargs: Any) -> Any:
        return self._call(method, args, kwargs)

    forward.__name__ = method
    forward.__doc__ = getattr(Backend, method).__doc__
    return forward


def _forget_parent_connections() -> None:
    for client in list(_clients):
        client._after_fork()


os.register_at_fork(after_in_child=_forget_parent_connections)

# Every other contract method is a plain forward; generating them keeps the client in step
# with the contract when a method is added there.
for _method in Backend.__abstractmethods__:
    if _method not in vars(ChannelBackend):
        setattr(ChannelBackend, _method, _forwarding(_method))
ChannelBackend.__abstractmethods__ = frozenset()
