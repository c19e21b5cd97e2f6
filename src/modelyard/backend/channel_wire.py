"""What travels on the channel between a run's processes and their supervisor.

The script side (:class:`~modelyard.backend.channel.ChannelBackend`) and the supervisor's side
(:class:`~modelyard.runner.channel.ChannelServer`) share this module and nothing else.

Wire format: each message is a 4-byte big-endian length and a JSON body. A request is
``{"method", "args", "kwargs"}``; a reply is ``{"result"}`` or ``{"error": {"type", "message",
"field"}}``. Records (dataclasses of ``backend/records.py``), bytes and paths are tagged so that
they come back as what they were; no other type is ever constructed from the wire.

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
import json
import socket
import struct
from pathlib import Path
from typing import Any

from modelyard import errors
from modelyard.backend import records
from modelyard.store import metric_codec

# The environment variable naming the run context file, in every process of a run.
RUN_CONTEXT_ENV = "MODELYARD_RUN_CONTEXT"
# A distributed run's process number, which its metric points carry.
PROCESS_INDEX_ENV = "MODELYARD_PROCESS_INDEX"

_LENGTH = struct.Struct(">I")
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
# Methods whose result is a stream: the channel carries the bytes and the client re-wraps them.
STREAM_METHODS = {"open_run_file", "open_model_file", "open_snapshot_blob"}
# Methods taking a file source (this argument): bytes from the wire become a stream again,
# and a path must be one the run's scope lets the supervisor read.
UPLOAD_METHODS = {
    "upload_run_file": "source",
    "upload_model_file": "source",
    "upload_snapshot_blob": "source",
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


def send(sock: socket.socket, message: dict[str, Any]) -> None:
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


def receive(sock: socket.socket) -> dict[str, Any]:
    (length,) = _LENGTH.unpack(_receive_exactly(sock, _LENGTH.size))
    message: dict[str, Any] = json.loads(_receive_exactly(sock, length))
    return message
