"""Packing a batch of metric points into one binary blob, and back.

A chunk holds ``count`` points of one metric: values, steps (int64) and times (float64 seconds
since the epoch). Values are packed as float64 or int64 arrays when every value of the chunk is
a float or an int (the common case: a million floats pack and unpack in milliseconds), and as
JSON otherwise (strings, booleans, lists, rows, mixed types).

Layout: 1 byte encoding (``f``, ``i`` or ``j``), a uint32 count, the steps, the times, then the
values (for ``j``: UTF-8 JSON of the list of values). Little-endian throughout.

Example::

    >>> decode(encode([0.5, 0.75], [0, 1], [1.0, 2.0]))
    ([0.5, 0.75], [0, 1], [1.0, 2.0])
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from typing import Any

_HEADER = struct.Struct("<cI")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _to_bytes(kind: str, items: list[Any]) -> bytes:
    packed = array(kind, items)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def _from_bytes(kind: str, data: bytes | memoryview) -> list[Any]:
    packed = array(kind)
    packed.frombytes(data)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tolist()


def _value_encoding(values: list[Any]) -> bytes:
    # `type(v) is float` rather than isinstance: bool is an int and must round-trip as bool.
    if all(type(v) is float for v in values):
        return b"f"
    if all(type(v) is int for v in values) and all(_INT64_MIN <= v <= _INT64_MAX for v in values):
        return b"i"
    return b"j"


def encode(values: list[Any], steps: list[int], times: list[float]) -> bytes:
    """Pack parallel lists of values, steps and times (all the same length)."""
    count = len(values)
    if not (len(steps) == len(times) == count):
        raise ValueError("values, steps and times must have the same length")
    encoding = _value_encoding(values)
    if encoding == b"f":
        body = _to_bytes("d", values)
    elif encoding == b"i":
        body = _to_bytes("q", values)
    else:
        body = json.dumps(values, separators=(",", ":"), allow_nan=True).encode()
    return b"".join(
        (_HEADER.pack(encoding, count), _to_bytes("q", steps), _to_bytes("d", times), body)
    )


def decode(payload: bytes) -> tuple[list[Any], list[int], list[float]]:
    """Unpack a blob made by :func:`encode` into (values, steps, times)."""
    view = memoryview(payload)
    encoding, count = _HEADER.unpack_from(view)
    offset = _HEADER.size
    steps = _from_bytes("q", view[offset : offset + 8 * count])
    offset += 8 * count
    times = _from_bytes("d", view[offset : offset + 8 * count])
    offset += 8 * count
    if encoding == b"f":
        values = _from_bytes("d", view[offset:])
    elif encoding == b"i":
        values = _from_bytes("q", view[offset:])
    else:
        values = json.loads(bytes(view[offset:]))
    return values, steps, times
