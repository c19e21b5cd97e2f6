"""The local channel between a run's processes and their supervisor.

A user's script never touches the database, the file store or any credentials: its
``Run.get_context()`` gets a :class:`ChannelBackend`, which forwards each Backend call over a
Unix socket to the supervisor's :class:`ChannelServer`, which makes the call on the real
backend. The same Run class works on both sides.

Wire format: each message is a 4-byte big-endian length and a JSON body. A request is
``{"method", "args", "kwargs"}``; a reply is ``{"result"}`` or ``{"error": {"type", "message",
"field"}}``. Records (dataclasses of ``backend/records.py``), bytes and paths are tagged so that
they come back as what they were; no other type is ever constructed from the wire.

Example::

    server = ChannelServer(backend, "/tmp/run.sock", scope)   # in the supervisor
    server.start()
    client = ChannelBackend("/tmp/run.sock")              # in the script
    client.get_run(run_id).status
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import inspect
import io
import json
import os
import socket
import socketserver
import struct
import threading
from pathlib import Path
from typing import IO, Any

from modelyard import errors
from modelyard.backend import records
from modelyard.backend.base import Backend
from modelyard.runner.run_scope import RunScope
from modelyard.store import metric_codec

_LENGTH = struct.Struct(">I")
_RECORD_TYPES = {
    cls.__name__: cls
    for cls in vars(records).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls)
}
_ERROR_TYPES = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, errors.ModelyardError)
}
# Methods whose result is a stream: the channel carries the bytes and the client re-wraps them.
_STREAM_METHODS = {"open_run_file", "open_model_file", "open_snapshot_blob"}
# Methods taking a file source (this argument): bytes from the wire become a stream again,
# and a path must be one the run's scope lets the supervisor read.
_UPLOAD_METHODS = {
    "upload_run_file": "source",
    "upload_model_file": "source",
    "upload_snapshot_blob": "source",
}
_SIGNATURES = {
    method: inspect.signature(getattr(Backend, method)) for method in Backend.__abstractmethods__
}


def encode(value: Any) -> Any:
    """A JSON-ready form of ``value`` (records, bytes and paths tagged)."""
    if isinstance(value, records.MetricBatch):
        # Points travel packed (a million floats: ~30 ms, against seconds as JSON lists).
        packed = metric_codec.encode(value.values, value.steps, value.times)
        return {
            "__metric_batch__": [
                value.name,
                value.kind,
                value.batch_id,
                value.description,
                value.process,
            ],
            "points": base64.b64encode(packed).decode(),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "__record__": type(value).__name__,
            "fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    return value


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(item) for item in value]
    if isinstance(value, dict):
        if "__metric_batch__" in value:
            name, kind, batch_id, description, *process = value["__metric_batch__"]
            values, steps, times = metric_codec.decode(base64.b64decode(value["points"]))
            return records.MetricBatch(
                name, kind, batch_id, values, steps, times, description, *process[:1]
            )
        if "__record__" in value:
            cls = _RECORD_TYPES[value["__record__"]]
            return cls(**{key: decode(item) for key, item in value["fields"].items()})
        if "__bytes__" in value:
            return base64.b64decode(value["__bytes__"])
        if "__path__" in value:
            return Path(value["__path__"])
        return {key: decode(item) for key, item in value.items()}
    return value


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(_LENGTH.pack(len(body)) + body)


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("the channel closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(sock: socket.socket) -> dict[str, Any]:
    (length,) = _LENGTH.unpack(_receive_exactly(sock, _LENGTH.size))
    message: dict[str, Any] = json.loads(_receive_exactly(sock, length))
    return message


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def setup(self) -> None:
        with self.server.connections_lock:
            self.server.connections.add(self.request)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.request)

    def handle(self) -> None:
        while True:
            try:
                request = _receive(self.request)
            except (ConnectionError, OSError):
                return
            _send(self.request, self.server.channel.dispatch(request))


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    channel: ChannelServer

    def __init__(self, socket_path: str) -> None:
        super().__init__(socket_path, _Handler)
        # Open connections, so that stopping the server ends them too: a stopped supervisor
        # answers nobody, rather than serving on through connections made before.
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()


class ChannelServer:
    """Serves a backend to the run's processes over a Unix socket (in the supervisor); each
    call is first decided by ``scope`` (``run_scope.py``): the processes reach their run only.
    """

    def __init__(self, backend: Backend, socket_path: str, scope: RunScope) -> None:
        self.backend = backend
        self.socket_path = socket_path
        self.scope = scope
        self._server = _Server(socket_path)
        self._server.channel = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="modelyard-channel", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._server.connections_lock:
            for connection in self._server.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        Path(self.socket_path).unlink(missing_ok=True)

    def dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        method = request.get("method")
        if method not in Backend.__abstractmethods__:
            return {"error": {"type": "UserError", "message": f"unknown call {method!r}"}}
        try:
            try:
                call = _SIGNATURES[method].bind(
                    self.backend,
                    *decode(request.get("args", [])),
                    **decode(request.get("kwargs", {})),
                )
            except TypeError as error:
                raise errors.ValidationError("args", f"{method}: {error}") from None
            arguments = call.arguments
            self.scope.authorize(method, arguments)
            if method == "update_run_status":
                wished = self.scope.record_wish(arguments)
                if wished is not None:
                    return {"result": encode(wished)}
            source_field = _UPLOAD_METHODS.get(method)
            if source_field is not None:
                source = arguments[source_field]
                if isinstance(source, bytes):
                    arguments[source_field] = io.BytesIO(source)
                elif isinstance(source, Path):
                    arguments[source_field] = self.scope.check_source(source_field, source)
                else:
                    raise errors.ValidationError(source_field, "send a path or bytes")
            result = getattr(self.backend, method)(*call.args[1:], **call.kwargs)
            if method in _STREAM_METHODS:
                with result:
                    result = result.read()
            result = self.scope.answer(method, arguments, result)
            return {"result": encode(_without_credentials(result))}
        except errors.ModelyardError as error:
            return {
                "error": {
                    "type": type(error).__name__,
                    "message": str(error),
                    "field": getattr(error, "field", None),
                }
            }
        except Exception as error:
            return {
                "error": {"type": "StorageError", "message": f"{type(error).__name__}: {error}"}
            }


def _without_credentials(result: Any) -> Any:
    """Datastore records with their storage options left out: those hold credentials, and the
    run's processes get none (their data comes as data references the supervisor resolved)."""
    if isinstance(result, records.DatastoreRecord):
        return dataclasses.replace(result, storage_options={})
    if isinstance(result, list):
        return [_without_credentials(item) for item in result]
    return result


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
                    _send(self._sock, request)
                    reply = _receive(self._sock)
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
            cls = _ERROR_TYPES.get(info["type"], errors.StorageError)
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
