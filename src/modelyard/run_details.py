"""What v1's run details hold, read from a run's record, properties and files.

``Run.get_details()`` returns v1's keys (``runId``, ``target``, ``status``, ``startTimeUtc``,
``endTimeUtc``, ``properties``, ``inputDatasets``, ``outputDatasets``, ``runDefinition``,
``logFiles``, ``submittedBy``, ``warnings``, and ``error`` when the run failed) beside
modelyard's own (``tags``, ``number``, ``displayName``...). ``runDefinition`` is the run's job
description (``system_logs/job.json``) in v1's shape; ``logFiles`` maps the name of each log
file (``user_logs/...``, ``system_logs/...``) to where it is stored. This module also writes a
run's logs into a folder (``get_all_logs``) and its source snapshot as a zip
(``restore_snapshot``), both whole or not at all.

Example::

    details = run.get_details()
    details["runDefinition"]["script"], details["submittedBy"]     # ('train.py', 'alice')
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import zipfile
from pathlib import Path
from typing import Any

from modelyard.backend.base import Backend, every_item
from modelyard.backend.records import FileInfo, RunDetails
from modelyard.backend.snapshot_manifest import (
    ManifestError,
    check_digest,
    parse_manifest,
    sha256_hex,
)
from modelyard.errors import NotFoundError, StorageError, ValidationError
from modelyard.runner.job import (
    DOCKER_SETTINGS,
    INPUT_DATASETS_PROPERTY,
    JOB_FILE,
    RECORDED_PROPERTY_PREFIX,
    JobSpec,
)
from modelyard.runner.local_compute import COMPUTE_PROPERTY, LOCAL
from modelyard.store import local_tree

# Run properties this module reads (a run's properties are immutable: set at creation).
SNAPSHOT_PROPERTY = "modelyard.snapshot_id"
SUBMITTED_BY_PROPERTY = "modelyard.submitted_by"
# A tuning run's child: its sampled configuration, as JSON (v1's property of that name).
HYPERPARAMETERS_PROPERTY = "hyperparameters"
# The folders of a run's files that hold logs (system_logs/job.json is the definition).
LOG_PREFIXES = ("user_logs/", "system_logs/")
# v1's names of the communicator each kind of distributed job uses.
_COMMUNICATORS = {"mpi": "IntelMpi", "tensorflow": "ParameterServer", "pytorch": "Nccl"}


def current_account() -> str:
    """The name of the OS account this process runs as (who submits a run: v1's
    ``submittedBy``); its uid as text when the account has no name."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def log_file_names(backend: Backend, run_id: str) -> list[str]:
    """The names of the run's log files, sorted (paged underneath)."""
    names: list[str] = []
    for prefix in LOG_PREFIXES:
        names.extend(
            info.path
            for info in _files_below(backend, run_id, prefix.rstrip("/"))
            if info.path != JOB_FILE
        )
    return sorted(names)


def _files_below(backend: Backend, run_id: str, prefix: str) -> list[FileInfo]:
    def page(limit: int, after: str | None) -> list[FileInfo]:
        return backend.list_run_files(run_id, prefix, limit=limit, after=after)

    return list(every_item(page))


def read_whole(backend: Backend, run_id: str, name: str) -> str:
    """One of the run's text files, as text (bytes that are not UTF-8 shown as U+FFFD)."""
    chunks = []
    offset = 0
    while chunk := backend.read_run_file(run_id, name, offset, 8 << 20):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def job_of(backend: Backend, run_id: str) -> JobSpec | None:
    """The job a submitted run executes; None for a run that was not submitted."""
    try:
        return JobSpec.from_json(read_whole(backend, run_id, JOB_FILE))
    except NotFoundError:
        return None


def run_definition(spec: JobSpec | None, target: str) -> dict[str, Any]:
    """A job description in the shape of v1's ``runDefinition`` (an interactive run's holds
    its target only, as v1's did)."""
    if spec is None:
        return {"target": target, "script": None, "arguments": [], "framework": "Python"}
    arguments = []
    for argument in spec.arguments:
        if argument.data_reference is not None:
            name = argument.data_reference.get("data_reference_name", "")
            arguments.append(f"{argument.prefix}$AZUREML_DATAREFERENCE_{name}{argument.suffix}")
        else:
            arguments.append(argument.value or "")
    distributed = spec.distributed or {}
    kind = distributed.get("type")
    communicator = _COMMUNICATORS.get(str(kind), "None")
    if kind == "pytorch":
        communicator = str(distributed.get("communication_backend", "nccl")).capitalize()
    packages: dict[str, Any] = {
        "dependencies": [
            f"python={spec.python_version}" if spec.python_version else "python",
            *spec.conda_packages,
            {"pip": list(spec.pip_packages)},
        ]
    }
    return {
        "script": spec.script,
        "arguments": arguments,
        "target": spec.compute_target,
        "framework": "Python",
        "communicator": communicator,
        "nodeCount": spec.node_count,
        "maxRunDurationSeconds": spec.max_run_duration_seconds,
        "environment": {
            "name": spec.environment_name,
            "python": {
                "userManagedDependencies": spec.python_path is not None,
                "interpreterPath": spec.python_path or "python",
                "condaDependencies": packages,
            },
            "environmentVariables": dict(spec.environment_variables),
            "docker": {"enabled": False},
        },
        "dataReferences": {
            reference["data_reference_name"]: reference for reference in spec.data_references()
        },
        "mpi": {"processCountPerNode": spec.process_count_per_node},
        "tensorflow": {
            "workerCount": distributed.get("worker_count", 1),
            "parameterServerCount": distributed.get("parameter_server_count", 0),
        },
        "pyTorch": {"communicationBackend": distributed.get("communication_backend")},
        "mlFramework": spec.framework,
        "mlFrameworkVersion": spec.framework_version,
        "snapshotId": spec.snapshot_id,
    }


def _warnings(properties: dict[str, str]) -> list[str]:
    """What the run was asked for and did not get, in words."""
    asked = [
        RECORDED_PROPERTY_PREFIX + name
        for name in DOCKER_SETTINGS
        if RECORDED_PROPERTY_PREFIX + name in properties
    ]
    if not asked:
        return []
    return [
        "docker was not used: the run ran in the Python environment modelyard built for it; "
        f"its docker settings are recorded in its properties ({', '.join(asked)})"
    ]


def v1_details(backend: Backend, details: RunDetails, summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` (the record's keys) with v1's other keys of ``Run.get_details()``."""
    record = details.run
    target = details.properties.get(COMPUTE_PROPERTY, LOCAL)
    try:
        datasets = json.loads(details.properties.get(INPUT_DATASETS_PROPERTY, "[]"))
    except ValueError:
        datasets = []
    result = dict(summary)
    result.update(
        target=target,
        tags=details.tags,
        properties=details.properties,
        inputDatasets=datasets if isinstance(datasets, list) else [],
        outputDatasets=[],
        runDefinition=run_definition(job_of(backend, record.id), target),
        logFiles={
            name: backend.run_file_url(record.id, name)
            for name in log_file_names(backend, record.id)
        },
        submittedBy=details.properties.get(SUBMITTED_BY_PROPERTY),
        warnings=_warnings(details.properties),
    )
    if record.error is not None:
        result["error"] = record.error
    return result


def _check_folder(field: str, folder: Path) -> None:
    if os.path.lexists(folder) and not folder.is_dir():
        raise ValidationError(field, f"{folder} exists and is not a folder; give a folder")


def download_logs(backend: Backend, run_id: str, destination: Path) -> list[str]:
    """Write every log file of the run below ``destination`` (keeping ``user_logs/...``);
    each appears whole or not at all, and no link below ``destination`` is followed
    (ValidationError, field ``destination``, before any file is written)."""
    _check_folder("destination", destination)
    names = log_file_names(backend, run_id)
    root = os.fspath(destination)
    local_tree.check_folders(root, names, field="destination")
    written = []
    for name in names:
        with (
            backend.open_run_file(run_id, name) as source,
            local_tree.open_write(root, name, field="destination") as out,
        ):
            while chunk := source.read(8 << 20):
                out.write(chunk)
        written.append(os.fspath(destination / name))
    return written


def write_snapshot_zip(backend: Backend, snapshot_id: str, folder: Path) -> str:
    """Write snapshot ``snapshot_id`` as ``<folder>/<snapshot_id>.zip`` (members are the
    snapshot's relative paths, with their executable bits); returns its path. The zip appears
    whole or not at all; each file's bytes are checked against the snapshot's digest."""
    check_digest("snapshot_id", snapshot_id)
    _check_folder("path", folder)
    data = backend.get_snapshot_manifest(snapshot_id)
    if sha256_hex(data) != snapshot_id:
        raise StorageError(f"snapshot {snapshot_id} came back corrupt: its bytes changed")
    try:
        entries = parse_manifest(data, "snapshot manifest")
    except ManifestError as error:
        raise StorageError(f"snapshot {snapshot_id} cannot be read: {error}") from error
    name = f"{snapshot_id}.zip"
    with (
        local_tree.open_write(os.fspath(folder), name, field="path") as out,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for entry in sorted(entries, key=lambda item: item.relpath):
            member = zipfile.ZipInfo(entry.relpath, date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = (0o100755 if entry.executable else 0o100644) << 16
            digest = hashlib.sha256()
            with backend.open_snapshot_blob(entry.sha256) as blob, archive.open(member, "w") as z:
                while chunk := blob.read(8 << 20):
                    digest.update(chunk)
                    z.write(chunk)
            if digest.hexdigest() != entry.sha256:
                raise StorageError(
                    f"the stored bytes of {entry.relpath!r} in snapshot {snapshot_id} changed; "
                    "submit the run's source again"
                )
    return os.fspath(folder / name)
