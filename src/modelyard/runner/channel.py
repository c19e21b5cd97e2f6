"""The supervisor's end of the channel between a run's processes and their supervisor.

A user's script never touches the database, the file store or any credentials: its
``Run.get_context()`` gets a :class:`~modelyard.backend.channel.ChannelBackend`, which forwards
each Backend call over a Unix socket to the supervisor's :class:`ChannelServer`, which decides
it with the run's scope (``run_scope.py``) and makes it on the real backend. The wire format is
in :mod:`modelyard.backend.channel_wire`.

Example::

    server = ChannelServer(backend, "/tmp/run.sock", scope)   # in the supervisor
    server.start()
    ...
    server.stop()
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyard import errors
from modelyard.backend import records
from modelyard.backend.base import Backend
from modelyard.backend.channel_wire import (
    STREAM_METHODS,
    UPLOAD_METHODS,
    decode,
    encode,
    receive,
    send,
)
from modelyard.runner.run_scope import RunScope

_SIGNATURES = {
    method: inspect.signature(getattr(Backend, method)) for method in Backend.__abstractmethods__
}


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
                request = receive(self.request)
            except (ConnectionError, OSError):
                return
            send(self.request, self.server.channel.dispatch(request))


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

    def __init__(
        self,
        backend: Backend,
        socket_path: str,
        scope: RunScope,
        on_queue_change: Callable[[], object] | None = None,
    ) -> None:
        self.backend = backend
        self.socket_path = socket_path
        self.scope = scope
        # Called when the run's processes queue or cancel a child run (exp.submit in a
        # script): they cannot reach the compute themselves, so the supervisor tells it.
        self.on_queue_change = on_queue_change
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
            source_field = UPLOAD_METHODS.get(method)
            if source_field is not None:
                source = arguments[source_field]
                if isinstance(source, bytes):
                    arguments[source_field] = io.BytesIO(source)
                elif isinstance(source, Path):
                    arguments[source_field] = self.scope.check_source(source_field, source)
                else:
                    raise errors.ValidationError(source_field, "send a path or bytes")
            result = getattr(self.backend, method)(*call.args[1:], **call.kwargs)
            if (
                method == "update_run_status"
                and arguments["status"] in (records.QUEUED, records.CANCEL_REQUESTED)
                and self.on_queue_change is not None
            ):
                self.on_queue_change()
            if method in STREAM_METHODS:
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
