"""Turning a job's data references into local paths on this machine (the Starting phase).

- ``as_mount()`` of a datastore on the local filesystem is its folder itself; of a remote
  datastore, a read-through cache folder shared by the runs of this compute: files are fetched
  once and fetched again only when their size changed.
- The files come through the store the backend opens in this process with the datastore's
  credentials (an embedded workspace's), else through the backend's datastore-file calls (a
  supervisor whose backend is a server's client): no credential reaches the run either way,
  and a folder is mounted in place only where the backend has it on this machine.
- ``as_download()`` copies the files into the run's working folder, at ``path_on_compute``
  when given, else ``<datastore>/<path>``.

Each resolved path is exported as ``MODELYARD_DATAREFERENCE_<name>``.

A dataset input (``ds.as_named_input(name)``, its config holds the dataset's definition) is
made local the same way: ``as_download()`` copies its files into the working folder (at
``path_on_compute``, else the input's name); ``as_mount()`` and a plain named input give the
folder of a local datastore named whole in place, and otherwise a copy in the compute's cache
(``<cache>/datasets/<definition hash>``, fetched again only when a file's size changed). The
run's processes learn what each became from ``MODELYARD_INPUT_DATASETS``
(:func:`dataset_environment`), and the run records its inputs in the property
``modelyard.inputDatasets`` (:func:`record_inputs`).

Example::

    paths = resolve(backend, spec.data_references(), workdir, cache_dir)
    paths["workspaceblobstore"]       # '/ws/datastores/workspaceblobstore/mnist'
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from modelyard.backend.base import Backend, every_item
from modelyard.backend.dataset_files import (
    INPUTS_ENV,
    ROW_STEPS,
    FileGroup,
    find_files,
    relative_paths,
    select_files,
)
from modelyard.errors import ValidationError
from modelyard.names import clean_relpath
from modelyard.runner.job import INPUT_DATASETS_PROPERTY
from modelyard.store import transfer
from modelyard.store.files import FileStore, local_url

ENV_PREFIX = "MODELYARD_DATAREFERENCE_"


def env_name(reference_name: str) -> str:
    """The environment variable that holds a data reference's local path."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", reference_name)


def _fetch(backend: Backend, name: str, store: FileStore | None, prefix: str, target: Path) -> None:
    """Copy the datastore's files at or below ``prefix`` into ``target``, leaving those there
    already at their size."""
    if store is not None:
        listed = store.list(prefix)
    else:
        listed = list(
            every_item(
                lambda limit, after: backend.list_datastore_files(
                    name, prefix, limit=limit, after=after
                )
            )
        )
    wanted = []
    for info in listed:
        local = target / info.path
        if not (local.is_file() and local.stat().st_size == info.size):
            wanted.append(info)
    if not wanted:
        return
    if store is not None:
        transfer.download(store, wanted, target, overwrite=True, show_progress=False)
    else:
        transfer.download_through(
            lambda path: backend.open_datastore_file(name, path),
            wanted,
            target,
            overwrite=True,
            show_progress=False,
        )


def resolve(
    backend: Backend, references: list[dict[str, Any]], workdir: Path, cache_dir: Path
) -> dict[str, str]:
    """The local path of each data reference, by its name."""
    paths: dict[str, str] = {}
    for reference in references:
        name = reference["data_reference_name"]
        if "dataset" in reference:
            paths[name] = str(_resolve_dataset(backend, reference, workdir, cache_dir))
            continue
        record = backend.get_datastore(reference["datastore_name"])
        # Its errors never quote the options: they become the run's error, seen by all.
        store = backend.local_datastore_store(record.name)
        relpath = clean_relpath(
            "path_on_datastore", reference.get("path_on_datastore") or "", allow_root=True
        )
        mode = reference.get("mode", "mount")
        if mode == "download":
            on_compute = reference.get("path_on_compute")
            base = workdir / clean_relpath(
                "path_on_compute", on_compute or record.name, allow_root=False
            )
            _fetch(backend, record.name, store, relpath, base)
            local = base / relpath if relpath else base
        elif mode in ("mount", "direct"):
            if store is not None and store.is_local:
                local = store.local_path(relpath)
            else:
                base = cache_dir / record.name
                _fetch(backend, record.name, store, relpath, base)
                local = base / relpath if relpath else base
        else:
            raise ValidationError("mode", f"{mode!r} is not a data reference mode")
        paths[name] = str(local)
    return paths


def _fetch_group(group: FileGroup, target: Path) -> None:
    """Copy the group's files into ``target``, leaving those there already at their size."""
    wanted = []
    for info in group.files:
        local = target / info.path
        if not (local.is_file() and local.stat().st_size == info.size):
            wanted.append(info)
    if wanted:
        transfer.download(group.store, wanted, target, overwrite=True, show_progress=False)


def _resolve_dataset(
    backend: Backend, reference: dict[str, Any], workdir: Path, cache_dir: Path
) -> Path:
    definition = reference["dataset"]["definition"]
    groups = find_files(backend, definition["sources"])
    if definition.get("type") == "file":  # a tabular dataset's row steps pick rows, not files
        steps = [s for s in definition.get("steps", []) if s.get("op") in ROW_STEPS]
        groups = select_files(groups, steps)
    relative_paths(groups)  # two sources with one path: refused before copying
    if reference.get("mode") == "download":
        target = workdir / clean_relpath(
            "path_on_compute",
            reference.get("path_on_compute") or reference["data_reference_name"],
        )
        for group in groups:
            transfer.download(group.store, group.files, target, overwrite=True, show_progress=False)
        return target
    if len(groups) == 1 and groups[0].in_place is not None:
        return groups[0].in_place
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    target = cache_dir / "datasets" / hashlib.sha256(text.encode()).hexdigest()[:32]
    for group in groups:
        _fetch_group(group, target)
    return target


def _local_definition(definition: dict[str, Any], path: str) -> dict[str, Any]:
    """The definition of a dataset input as its script reads it: the local folder the
    supervisor made, with the file steps already applied to it left out."""
    steps = definition.get("steps", [])
    if definition.get("type") == "file":
        steps = [s for s in steps if s.get("op") not in ROW_STEPS]
    return {**definition, "sources": [{"url": local_url(Path(path))}], "steps": steps}


def dataset_environment(
    run_id: str, references: list[dict[str, Any]], paths: dict[str, str]
) -> dict[str, str]:
    """The variable that tells the run's processes what became of its dataset inputs
    (``run.input_datasets``); empty when it has none."""
    inputs = {}
    for reference in references:
        if "dataset" not in reference:
            continue
        name = reference["data_reference_name"]
        dataset = reference["dataset"]
        inputs[name] = {
            "mode": reference.get("mode", "direct"),
            "path": paths[name],
            "definition": _local_definition(dataset["definition"], paths[name]),
            "id": dataset.get("id"),
            "name": dataset.get("name"),
            "version": dataset.get("version"),
        }
    if not inputs:
        return {}
    return {INPUTS_ENV: json.dumps({"run_id": run_id, "inputs": inputs}, sort_keys=True)}


def record_inputs(backend: Backend, run_id: str, references: list[dict[str, Any]]) -> None:
    """Record the run's dataset inputs in its property ``modelyard.inputDatasets``, as v1's
    ``get_details()["inputDatasets"]`` lists them: ``{"dataset": {"id", "name", "version"},
    "consumptionDetails": {"type": "RunInput", "inputName", "mechanism"}}`` (properties are
    immutable, and a retry records the same value)."""
    inputs = [
        {
            "dataset": {key: reference["dataset"].get(key) for key in ("id", "name", "version")},
            "consumptionDetails": {
                "type": "RunInput",
                "inputName": reference["data_reference_name"],
                "mechanism": reference.get("mode", "direct").capitalize(),
            },
        }
        for reference in references
        if "dataset" in reference
    ]
    if inputs:
        backend.add_run_properties(run_id, {INPUT_DATASETS_PROPERTY: json.dumps(inputs)})


def datastores_given(references: list[dict[str, Any]]) -> set[str]:
    """The datastores a run's references and dataset inputs name: those its script may read
    through its channel."""
    given: set[str] = set()
    for reference in references:
        if "dataset" in reference:
            sources = reference["dataset"]["definition"].get("sources", [])
            given.update(s["datastore"] for s in sources if "datastore" in s)
        else:
            given.add(reference["datastore_name"])
    return given
