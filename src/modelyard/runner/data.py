"""Turning a job's data references into local paths on this machine (the Starting phase).

- ``as_mount()`` of a datastore on the local filesystem is its folder itself; of a remote
  datastore, a read-through cache folder shared by the runs of this compute: files are fetched
  once and fetched again only when their size changed.
- ``as_download()`` copies the files into the run's working folder, at ``path_on_compute``
  when given, else ``<datastore>/<path>``.

Each resolved path is exported as ``MODELYARD_DATAREFERENCE_<name>``.

Example::

    paths = resolve(backend, spec.data_references(), workdir, cache_dir)
    paths["workspaceblobstore"]       # '/ws/datastores/workspaceblobstore/mnist'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from modelyard.backend.base import Backend
from modelyard.errors import ValidationError
from modelyard.names import clean_relpath
from modelyard.store import transfer
from modelyard.store.files import FileStore
from modelyard.store.secrets import open_datastore

ENV_PREFIX = "MODELYARD_DATAREFERENCE_"


def env_name(reference_name: str) -> str:
    """The environment variable that holds a data reference's local path."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", reference_name)


def _fetch(store: FileStore, prefix: str, target: Path) -> None:
    names = [info.path for info in store.list(prefix)]
    if not names and prefix and store.exists(prefix):
        names = [prefix]
    wanted = []
    for name in names:
        local = target / name
        if not (local.is_file() and local.stat().st_size == store.size(name)):
            wanted.append(name)
    if wanted:
        transfer.download(store, wanted, target, overwrite=True, show_progress=False)


def resolve(
    backend: Backend, references: list[dict[str, Any]], workdir: Path, cache_dir: Path
) -> dict[str, str]:
    """The local path of each data reference, by its name."""
    paths: dict[str, str] = {}
    for reference in references:
        name = reference["data_reference_name"]
        record = backend.get_datastore(reference["datastore_name"])
        # Its errors never quote the options: they become the run's error, seen by all.
        store = open_datastore(record.url, record.storage_options)
        relpath = clean_relpath(
            "path_on_datastore", reference.get("path_on_datastore") or "", allow_root=True
        )
        mode = reference.get("mode", "mount")
        if mode == "download":
            on_compute = reference.get("path_on_compute")
            base = workdir / clean_relpath(
                "path_on_compute", on_compute or record.name, allow_root=False
            )
            _fetch(store, relpath, base)
            local = base / relpath if relpath else base
        elif mode in ("mount", "direct"):
            if store.is_local:
                local = store.local_path(relpath)
            else:
                base = cache_dir / record.name
                _fetch(store, relpath, base)
                local = base / relpath if relpath else base
        else:
            raise ValidationError("mode", f"{mode!r} is not a data reference mode")
        paths[name] = str(local)
    return paths
