"""The script's end of the channel to its supervisor: a Backend whose calls go over a socket.

``Run.get_context()`` in a submitted script gets a :class:`ChannelBackend`; the supervisor's
:class:`~modelyard.runner.channel.ChannelServer` makes each call on the real backend, within
the run's scope. The wire format is in :mod:`modelyard.backend.channel_wire`.

Example::

    client = ChannelBackend("/tmp/run.sock")              # in the script
    client.get_run(run_id).status
"""

from __future__ import annotations

import io
import os
import socket
import threading
from pathlib import Path
from typing import IO, Any

from modelyard import errors
from modelyard.backend.base import Backend
from modelyard.backend.channel_wire import ERROR_TYPES, decode, encode, receive, send


class ChannelBackend(Backend):
    """A Backend whose every call goes to the run's supervisor (in the user's processes).

    Every contract method is idempotent, so a call that fails on a broken connection is sent
    again once on a new one.
    """

    def __init__(
        self, socket_path: str, workspace_name: str = "", workdir: str | None = None
    ) -> None:
        self.socket_path = socket_path
        self.workspace_name = workspace_name
        # The run's working folder: files inside it travel as paths (the supervisor reads
        # them), any other file as bytes (the supervisor reads nothing else for a script).
        self.workdir = os.path.realpath(workdir) if workdir is not None else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.socket_path)
        return sock

    def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        request = {"method": method, "args": encode(list(args)), "kwargs": encode(kwargs)}
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._sock is None:
                        self._sock = self._connect()
                    send(self._sock, request)
                    reply = receive(self._sock)
                    break
                except OSError as error:
                    if self._sock is not None:
                        self._sock.close()
                    self._sock = None
                    if attempt == 2:
                        raise errors.StorageError(
                            f"lost the connection to the run's supervisor: {error}"
                        ) from error
        if "error" in reply:
            info = reply["error"]
            cls = ERROR_TYPES.get(info["type"], errors.StorageError)
            if cls is errors.ValidationError:
                raise errors.ValidationError(
                    info.get("field") or "value",
                    info["message"].partition(": ")[2] or info["message"],
                )
            raise cls(info["message"])
        return decode(reply["result"])

    def upload_run_file(self, run_id: str, name: str, source: Any) -> None:
        self._call("upload_run_file", (run_id, name, self._payload(source)), {})

    def upload_model_file(self, model_name: str, upload_id: str, relpath: str, source: Any) -> None:
        self._call("upload_model_file", (model_name, upload_id, relpath, self._payload(source)), {})

    def upload_snapshot_blob(self, digest: str, source: Any) -> None:
        self._call("upload_snapshot_blob", (digest, self._payload(source)), {})

    def _payload(self, source: Any) -> Path | bytes:
        if isinstance(source, Path):
            real = os.path.realpath(source)
            if self.workdir is not None and Path(real).is_relative_to(self.workdir):
                return Path(real)
            return source.read_bytes()
        return bytes(source.read())

    def open_run_file(self, run_id: str, name: str) -> IO[bytes]:
        return io.BytesIO(self._call("open_run_file", (run_id, name), {}))

    def open_model_file(self, name: str, version: int, relpath: str) -> IO[bytes]:
        return io.BytesIO(self._call("open_model_file", (name, version, relpath), {}))

    def open_snapshot_blob(self, digest: str) -> IO[bytes]:
        return io.BytesIO(self._call("open_snapshot_blob", (digest,), {}))


def _forwarding(method: str) -> Any:
    def forward(self: ChannelBackend, *args: Any, **kwargs: Any) -> Any:
        return self._call(method, args, kwargs)

    forward.__name__ = method
    forward.__doc__ = getattr(Backend, method).__doc__
    return forward


# Every other contract method is a plain forward; generating them keeps the client in step
# with the contract when a method is added there.
for _method in Backend.__abstractmethods__:
    if _method not in vars(ChannelBackend):
        setattr(ChannelBackend, _method, _forwarding(_method))
ChannelBackend.__abstractmethods__ = frozenset()
