"""What a scoring service process is started with, written beside it as ``runtime.json``.

Example::

    settings = ServiceSettings(entry_script="/srv/svc/source/score.py", source_directory=None,
                               model_dir="/srv/svc/models", host="127.0.0.1", port=6789)
    settings.write(Path("/srv/svc/runtime.json"))
    ServiceSettings.read(Path("/srv/svc/runtime.json")).port    # 6789
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from modelyard.store.private import write_private_file

SETTINGS_ENV = "MODELYARD_SERVING_SETTINGS"
# v1's limit on a scoring request's body was about 5 MB on ACI; a bigger one is refused (413).
DEFAULT_MAX_REQUEST_BYTES = 5 * 1024 * 1024


def key_digest(key: str) -> bytes:
    """What a service's key is checked by: its SHA-256, so that a replica on a cluster is
    given the digests only (Serve shows a deployment's config to whoever may read the
    cluster's)."""
    return hashlib.sha256(key.encode()).digest()


@dataclass
class ServiceSettings:
    """The service process's settings; paths are absolute."""

    entry_script: str
    source_directory: str | None
    model_dir: str
    host: str
    port: int
    workers: int = 1
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    keys_file: str | None = None  # auth_enabled: a 0600 JSON file of the accepted keys
    failed_file: str = ""  # written with init()'s traceback when it raises, or the limit passed
    cpu_cores: float | None = None  # None: no limit (serving/limits.py)
    memory_gb: float | None = None

    def write(self, path: Path) -> None:
        write_private_file(path, json.dumps(asdict(self), indent=2).encode())

    @classmethod
    def read(cls, path: Path) -> ServiceSettings:
        return cls(**json.loads(path.read_text()))
