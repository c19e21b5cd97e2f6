"""What the TensorBoard tests ask a running TensorBoard, and what they check is gone after."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import struct
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

needs_tensorboard = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None
    or importlib.util.find_spec("tensorboard") is None,
    reason="TensorFlow and TensorBoard are not installed (pip install -e '.[tensorflow]')",
)
SCRIPTS = Path(__file__).parent / "scripts"


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


def runs(url: str) -> list[str]:
    """The TensorBoard runs it shows (``/data/runs``)."""
    found: list[str] = get_json(url + "data/runs")
    return found


def scalars(url: str, run: str, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of one scalar of one run, as the scalars dashboard reads them; empty
    while TensorBoard has not loaded it."""
    query = urllib.parse.urlencode({"run": run, "tag": tag})
    try:
        points = get_json(f"{url}data/plugin/scalars/scalars?{query}")
    except urllib.error.HTTPError as error:
        if error.code in (400, 404):  # "No scalar data for run=..." until it is loaded
            return []
        raise
    return [(int(step), float(value)) for _wall_time, step, value in points]


def float32(value: float) -> float:
    """``value`` as TensorFlow stores a float scalar (32 bits), read back as a Python float."""
    rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    return rounded


def expected_loss(steps: int) -> list[tuple[int, float]]:
    """What scripts/write_scalars.py logs as ``loss``."""
    return [(step, float32(1 / (step + 1))) for step in range(steps)]


def expected_accuracy(steps: int) -> list[tuple[int, float]]:
    return [(step, step / 8) for step in range(steps)]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on the port (a connection is refused)."""
    with socket.socket() as probe:
        probe.settimeout(5)
        return probe.connect_ex((host, port)) != 0


def processes_naming(text: str) -> list[int]:
    """The processes (zombies left out) whose command line holds ``text``: TensorBoard and its
    data server are given the folder they read."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{entry.name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state != b"Z":
            found.append(int(entry.name))
    return found
