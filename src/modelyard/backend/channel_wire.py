"""What travels on the channel between a run's processes and their supervisor.

The script side (:class:`~modelyard.backend.channel.ChannelBackend`) and the supervisor's side
(:class:`~modelyard.runner.channel.ChannelServer`) share this module and nothing else.

Wire format: a sequence of frames, each a 5-byte header (one kind byte, a 4-byte big-endian
length) and that many bytes:

=======  =================================================================================
kind     body
=======  =================================================================================
``M``    a message: JSON, at most ``MAX_MESSAGE_BYTES``
``D``    raw bytes of a file in a stream, 1 to ``FRAME_BYTES`` of them
=======  =================================================================================

A request is an ``M`` frame ``{"method", "args", "kwargs"}``; a reply is ``{"result"}`` or
``{"error": {"type", "message", "field"}}``. Records (dataclasses of ``backend/records.py``),
bytes and paths are tagged so that they come back as what they were; no other type is ever
constructed from the wire.

Files travel as **streams**, so neither side holds a whole file: a stream is any number of
``D`` frames closed by one ``M`` frame, ``{"end": null}`` when all was sent, or
``{"error": {...}}`` when the sender could not read its file (the receiver then fails the
call, and the connection stays in step). An upload (``UPLOAD_METHODS``) whose source is a
stream carries the tag ``{"__stream__": null}`` in place of the source, and its stream follows
the request at once; the server replies after the stream's end (an upload it refuses is read
to its end and dropped). A download (``STREAM_METHODS``) is answered ``{"result":
{"__stream__": null}}`` and its stream follows the reply; a reader that stops half-way drops
the connection (its next call makes a new one) rather than read the rest.

Anything else is a protocol error and the connection is closed: a frame of another kind, a
frame where the other kind was due, or one over its cap (refused from its header, before
anything is allocated for it).

A run's processes find their run through a small JSON file (the run context: run id,
experiment and workspace names, the socket's path; no database URL or credential) named by
``MODELYARD_RUN_CONTEXT``; in a distributed run ``MODELYARD_PROCESS_INDEX`` tells each process
its number.

Example::

    send(sock, {"method": "get_run", "args": encode(["r1"]), "kwargs": {}})
    decode(receive(sock)["result"])          # RunRecord(id='r1', ...)
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import socket
import struct
from pathlib import Path
from typing import IO, Any

from modelyard import errors
from modelyard.backend import records
from modelyard.store import metric_codec

# The environment variable naming the run context file, in every process of a run.
RUN_CONTEXT_ENV = "MODELYARD_RUN_CONTEXT"
# A distributed run's process number, which its metric points carry.
PROCESS_INDEX_ENV = "MODELYARD_PROCESS_INDEX"

# The most bytes of a file in one frame: large enough that a frame's header and system call
# cost nothing beside its bytes, small enough that a stream holds ~1 MiB at a time.
FRAME_BYTES = 1 << 20
# The largest message. A metric hand-over is at most ~32 MiB of values (metrics.FLUSH_BYTES
# plus one point of MAX_POINT_BYTES), more as escaped JSON; files never travel in messages.
# The cap is there so that a corrupt or hostile header is refused, not allocated.
MAX_MESSAGE_BYTES = 256 << 20

_HEADER = struct.Struct(">cI")
_MESSAGE, _DATA = b"M", b"D"
_RECORD_TYPES = {
    cls.__name__: cls
    for cls in vars(records).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls)
}
ERROR_TYPES = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, errors.ModelyardError)
}
# Methods whose result is a stream: the channel carries its frames and the client reads them.
STREAM_METHODS = {
    "open_run_file",
    "open_model_file",
    "open_snapshot_blob",
    "open_datastore_file",
}
# Methods taking a file source (this argument): a path the run's scope lets the supervisor
# read, or a stream that follows the request.
UPLOAD_METHODS = {
    "upload_run_file": "source",
    "upload_model_file": "source",
    "upload_snapshot_blob": "source",
    "upload_datastore_file": "source",
}


class ProtocolError(ConnectionError):
    """The other side broke the wire format (or a cap): the connection cannot go on."""


class MessageTooLarge(errors.ValidationError):
    """A message over ``MAX_MESSAGE_BYTES`` (``size`` bytes) was not sent."""

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(
            "message",
            f"a channel message of {size:,} bytes is over the limit of {MAX_MESSAGE_BYTES:,}: "
            "send less in one call (files travel as streams)",
        )


class NotJSON(errors.ValidationError):
    """A message holding a value JSON cannot carry (an object, a tuple as a dict key) was
    not sent; ``reason`` is what the JSON encoder said."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__("message", f"holds a value that is not JSON data: {reason}")


class StreamTag:
    """Stands in a request or a reply for the stream that follows it (see the module
    docstring); :data:`STREAM` is its one instance."""

    def __repr__(self) -> str:
        return "STREAM"


STREAM = StreamTag()


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
    if value is STREAM:
        return {"__stream__": None}
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
        if "__stream__" in value:
            return STREAM
        return {key: decode(item) for key, item in value.items()}
    return value


def error_to_wire(error: BaseException) -> dict[str, Any]:
    """The ``{"type", "message", "field"}`` form of an error (any other exception travels as
    a StorageError naming its type)."""
    if isinstance(error, errors.ModelyardError):
        return {
            "type": type(error).__name__,
            "message": str(error),
            "field": getattr(error, "field", None),
        }
    return {"type": "StorageError", "message": f"{type(error).__name__}: {error}", "field": None}


def error_from_wire(info: dict[str, Any]) -> errors.ModelyardError:
    """The inverse of :func:`error_to_wire`: the same error type, message and field."""
    message = str(info.get("message", ""))
    cls = ERROR_TYPES.get(str(info.get("type")), errors.StorageError)
    if issubclass(cls, errors.ValidationError):
        field = str(info.get("field") or "value")
        error = cls(field, message.removeprefix(f"{field}: "))
        return error
    try:
        return cls(message)
    except TypeError:  # an error made from more than a message (MetricsNotStoredError)
        return errors.StorageError(message)


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one message; MessageTooLarge or NotJSON (nothing sent) when it is over the cap
    or holds what JSON cannot carry."""
    try:
        body = json.dumps(message, separators=(",", ":")).encode()
    except (TypeError, ValueError) as error:
        raise NotJSON(str(error)) from None
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(len(body))
    sock.sendall(_HEADER.pack(_MESSAGE, len(body)))
    sock.sendall(body)


def send_stream(sock: socket.socket, source: IO[bytes]) -> Exception | None:
    """Send ``source`` as a stream (``D`` frames, then the end message) and return None; when
    reading ``source`` fails, end the stream with that error and return it (the connection
    stays in step). Errors of the socket itself are raised."""
    while True:
        try:
            chunk = source.read(FRAME_BYTES)
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise errors.ValidationError(
                    "source",
                    f"read {type(chunk).__name__}, not bytes: open the file in binary mode",
                )
        except Exception as error:
            send(sock, {"error": error_to_wire(error)})
            return error
        if not chunk:
            send(sock, {"end": None})
            return None
        view = memoryview(chunk)
        for start in range(0, len(view), FRAME_BYTES):
            part = view[start : start + FRAME_BYTES]
            sock.sendall(_HEADER.pack(_DATA, len(part)))
            sock.sendall(part)


def _receive_into(sock: socket.socket, buffer: memoryview) -> None:
    while buffer:
        count = sock.recv_into(buffer)
        if not count:
            raise ConnectionError("the channel closed")
        buffer = buffer[count:]


def _receive_header(sock: socket.socket) -> tuple[bytes, int]:
    header = bytearray(_HEADER.size)
    _receive_into(sock, memoryview(header))
    kind, length = _HEADER.unpack(header)
    if kind == _MESSAGE and length > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            f"a channel message of {length:,} bytes is over the limit of {MAX_MESSAGE_BYTES:,}"
        )
    if kind == _DATA and not 0 < length <= FRAME_BYTES:
        raise ProtocolError(f"a data frame of {length:,} bytes (1 to {FRAME_BYTES:,} allowed)")
    if kind not in (_MESSAGE, _DATA):
        raise ProtocolError(f"a frame of unknown kind {kind!r}")
    return kind, length


def _receive_body(sock: socket.socket, length: int) -> dict[str, Any]:
    body = bytearray(length)
    _receive_into(sock, memoryview(body))
    try:
        message = json.loads(body)
    except ValueError as error:
        raise ProtocolError(f"a channel message that is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a channel message that is not a JSON object")
    return message


def receive(sock: socket.socket) -> dict[str, Any]:
    """The next message; ProtocolError when a data frame (or anything else) comes instead."""
    kind, length = _receive_header(sock)
    if kind != _MESSAGE:
        raise ProtocolError("a data frame where a message was due")
    return _receive_body(sock, length)


class StreamReader(io.RawIOBase):
    """Reads one stream (see the module docstring) from ``sock`` as the caller reads: the
    bytes of each frame go from the socket into the caller's buffer. At the stream's end
    ``done`` is True and the connection is in step again; an error the sender ended the
    stream with is raised by the read that reaches it. After an OSError (the connection
    lost, a ProtocolError) ``broken`` is True and the connection cannot be used again."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.done = False
        self.broken = False
        self._left = 0  # bytes of the current data frame still on the socket
        self._failure: errors.ModelyardError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.broken:
            raise ProtocolError("the stream broke off before its end")
        try:
            return self._readinto(memoryview(buffer).cast("B"))
        except OSError:
            self.broken = True  # the connection is out of step for good
            raise

    def _readinto(self, view: memoryview) -> int:
        if not view:
            return 0
        while not self._left:
            if self.done:
                if self._failure is not None:
                    raise self._failure
                return 0
            kind, length = _receive_header(self.sock)
            if kind == _DATA:
                self._left = length
            else:
                end = _receive_body(self.sock, length)
                self.done = True
                if "error" in end:
                    self._failure = error_from_wire(end["error"])
                elif set(end) != {"end"}:
                    raise ProtocolError("a message inside a stream that does not end it")
        count = self.sock.recv_into(view[: min(len(view), self._left)])
        if not count:
            raise ConnectionError("the channel closed in the middle of a stream")
        self._left -= count
        return count

    def drain(self) -> None:
        """Read (and drop) what is left of the stream, so the connection is in step."""
        scratch = bytearray(FRAME_BYTES)
        try:
            while self.readinto(scratch):
                pass
        except errors.ModelyardError:
            pass  # the sender's own failure: the stream is over all the same
