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
from typing import IO, Any

from modelyard import errors
from modelyard.backend import records
from modelyard.backend.base import Backend
from modelyard.backend.channel_wire import (
    FRAME_BYTES,
    STREAM,
    STREAM_METHODS,
    UPLOAD_METHODS,
    MessageTooLarge,
    ProtocolError,
    StreamReader,
    decode,
    encode,
    error_to_wire,
    receive,
    send,
    send_stream,
)
from modelyard.runner.run_scope import RunScope

_SIGNATURES = {
    method: inspect.signature(getattr(Backend, method)) for method in Backend.__abstractmethods__
}


class _Handler(socketserver.BaseRequestHandler):
    """One connection (one process of the run, or one of its threads or open streams): its
    calls one after another."""

    server: _Server

    def setup(self) -> None:
        with self.server.connections_lock:
            self.server.connections.add(self.request)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.request)

    def handle(self) -> None:
        sock: socket.socket = self.request
        while True:
            try:
                request = receive(sock)
                self.server.channel.serve(request, sock)
            except ProtocolError as error:
                # Out of step: say why (best effort), then drop the connection.
                with contextlib.suppress(OSError):
                    send(
                        sock,
                        {"error": error_to_wire(errors.ValidationError("message", str(error)))},
                    )
                return
            except OSError:
                return  # the process went away, or dropped a stream it stopped reading


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
    Files go up and down as streams of bounded frames (``channel_wire``), so the supervisor
    holds at most a few MiB of a file a script uploads or reads, whatever its size.
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

    def serve(self, request: dict[str, Any], sock: socket.socket) -> None:
        """Answer one request read from ``sock``: read the stream of an upload that follows
        it, send the reply, and the stream of a download after it. OSError (and
        ProtocolError) when the connection cannot go on."""
        reader = StreamReader(sock) if STREAM in _flat(request) else None
        upload = io.BufferedReader(reader, FRAME_BYTES) if reader is not None else None
        try:
            reply, download = self.dispatch(request, upload)
        finally:
            if reader is not None:
                # An upload refused (or failed) before its end is read to the end and dropped.
                reader.drain()
        try:
            try:
                send(sock, reply)
            except MessageTooLarge as error:
                too_large = errors.ValidationError(
                    "message",
                    f"the answer to {request.get('method')} is {error.size:,} bytes, over the "
                    "limit of one channel message: ask for less in one call (read_run_file's "
                    "size, a page's limit) or open the file as a stream",
                )
                send(sock, {"error": error_to_wire(too_large)})
                return
            if download is not None:
                send_stream(sock, download)  # a failed read ends the stream with its error
        finally:
            if download is not None:
                download.close()

    def dispatch(
        self, request: dict[str, Any], upload: IO[bytes] | None = None
    ) -> tuple[dict[str, Any], IO[bytes] | None]:
        """The reply to ``request``, and the stream to send after it (a download's): the
        call decided by the scope and made on the backend. ``upload`` reads the stream that
        followed an upload's request."""
        method = request.get("method")
        if method not in Backend.__abstractmethods__:
            return {"error": {"type": "UserError", "message": f"unknown call {method!r}"}}, None
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
                    return {"result": encode(wished)}, None
            source_field = UPLOAD_METHODS.get(method)
            if source_field is not None:
                source = arguments[source_field]
                if source is STREAM and upload is not None:
                    arguments[source_field] = upload
                elif isinstance(source, Path):
                    arguments[source_field] = self.scope.check_source(source_field, source)
                else:
                    raise errors.ValidationError(
                        source_field, "send a path inside the run's working folder or a stream"
                    )
            elif upload is not None:
                raise errors.ValidationError("args", f"{method} takes no stream")
            result = getattr(self.backend, method)(*call.args[1:], **call.kwargs)
            if (
                method == "update_run_status"
                and arguments["status"] in (records.QUEUED, records.CANCEL_REQUESTED)
                and self.on_queue_change is not None
            ):
                self.on_queue_change()
            result = self.scope.answer(method, arguments, result)
            if method in STREAM_METHODS:
                return {"result": encode(STREAM)}, result
            return {"result": encode(_without_credentials(result))}, None
        except Exception as error:
            return {"error": error_to_wire(error)}, None


def _flat(value: Any) -> list[Any]:
    """The values in a request as it came (not decoded), at any depth: a request with a
    stream's tag anywhere in it is followed by a stream."""
    if isinstance(value, dict):
        if value == {"__stream__": None}:
            return [STREAM]
        return [item for entry in value.values() for item in _flat(entry)]
    if isinstance(value, list | tuple):
        return [item for entry in value for item in _flat(entry)]
    return [value]


def _without_credentials(result: Any) -> Any:
    """Datastore records with their storage options left out: those hold credentials, and the
    run's processes get none (their data comes as data references the supervisor resolved)."""
    if isinstance(result, records.DatastoreRecord):
        return dataclasses.replace(result, storage_options={})
    if isinstance(result, list):
        return [_without_credentials(item) for item in result]
    return result
