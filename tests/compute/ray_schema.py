"""Ray's own checks of cluster configs, run in a child interpreter that may not use the network.

``ray up`` fills a config in from Ray's defaults for its provider (``prepare_config``) and then
checks it against Ray's schema (``validate_config``) before it calls any cloud. The child does
the same, with an audit hook that fails any socket connection or name lookup, so a check that
needed a cloud account or the network would fail here rather than pass by reaching out.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

import pytest

_CHILD = r"""
import json, sys

def no_network(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                 "socket.gethostbyaddr", "urllib.Request"):
        raise RuntimeError(f"network use during validation: {event} {args!r}")

sys.addaudithook(no_network)
from ray.autoscaler._private.util import prepare_config, validate_config

results = []
for config in json.load(sys.stdin):
    try:
        validate_config(config)
        prepared = prepare_config(json.loads(json.dumps(config)))
        validate_config(prepared)
        results.append({"error": None, "prepared": prepared})
    except Exception as e:
        # jsonschema's message is one line; its str() adds the whole schema.
        message = getattr(e, "message", None) or str(e)
        results.append({"error": f"{type(e).__name__}: {message}", "prepared": None})
print(json.dumps(results))
"""


def ray_checks(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each config, Ray's verdict (``error``: None when valid) and the config as ``ray up``
    fills it in (``prepared``). Skips the test when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (pip install 'modelyard[cluster]')")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(configs),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return results
