"""What the pages show, read from the backend as JSON-ready dicts (no HTTP here).

Every function takes the workspace's :class:`~modelyard.backend.base.Backend` and only reads:
the UI never changes a run. Times are Unix seconds; the pages format them.

Example::

    experiments(backend)      # [{"name": "mnist", "runs": 3, "statusCounts": {...}, ...}]
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from modelyard.backend.base import Backend, every_item
from modelyard.backend.records import (
    NOT_STARTED,
    QUEUED,
    SCALAR,
    TERMINAL_STATES,
    FileInfo,
    MetricInfo,
    RunRecord,
)
from modelyard.backend.snapshot_manifest import ManifestEntry, parse_manifest
from modelyard.errors import NotFoundError
from modelyard.model_arguments import recorded
from modelyard.run_details import (
    HYPERPARAMETERS_PROPERTY,
    SNAPSHOT_PROPERTY,
    job_of,
    log_file_names,
    run_definition,
)
from modelyard.runner.local_compute import COMPUTE_PROPERTY, LOCAL
from modelyard.train.hyperdrive.plan import PRIMARY_METRIC_PROPERTY
from modelyard.ui.run_filter import parse_metric_filter

# Rows of a table metric (log_row / log_table) sent to a page: enough to read, bounded.
MAX_TABLE_ROWS = 1000
# How far back the compute page charts a cluster's node counts.
NODE_HISTORY_S = 24 * 3600


def _all_runs(backend: Backend, experiment: str, **filters: Any) -> list[RunRecord]:
    return list(
        every_item(
            lambda limit, after: backend.list_runs(experiment, limit=limit, after=after, **filters)
        )
    )


def run_row(record: RunRecord) -> dict[str, Any]:
    """The fields of a run's record that lists show."""
    return {
        "id": record.id,
        "experiment": record.experiment_name,
        "number": record.number,
        "displayName": record.display_name,
        "runType": record.run_type,
        "status": record.status,
        "parentId": record.parent_id,
        "createdAt": record.created_at,
        "startedAt": record.started_at,
        "endedAt": record.ended_at,
        "error": (record.error or {}).get("message"),
    }


def experiments(backend: Backend) -> list[dict[str, Any]]:
    """Each experiment with its number of top-level runs, its last run and its runs by status."""
    shown = []
    for record in every_item(
        lambda limit, after: backend.list_experiments(limit=limit, after=after)
    ):
        runs = _all_runs(backend, record.name)
        last = runs[0] if runs else None  # newest first
        shown.append(
            {
                "name": record.name,
                "createdAt": record.created_at,
                "runs": len(runs),
                "lastRun": run_row(last) if last else None,
                "statusCounts": dict(Counter(run.status for run in runs)),
            }
        )
    return shown


def _last_values(metrics: list[MetricInfo]) -> dict[str, Any]:
    return {info.name: info.last_value for info in metrics if info.kind == SCALAR}


def parameters(properties: dict[str, str], arguments: list[str]) -> dict[str, Any]:
    """A run's parameters: a tuning child's sampled configuration, else its script's
    ``--name value`` arguments (a flag alone counts as ``true``).

    Example::

        parameters({}, ["--lr", "0.1", "--fast"])     # {'--lr': '0.1', '--fast': True}
    """
    text = properties.get(HYPERPARAMETERS_PROPERTY)
    if text is not None:
        try:
            configuration = json.loads(text)
        except ValueError:
            configuration = None
        if isinstance(configuration, dict):
            return configuration
    found: dict[str, Any] = {}
    index = 0
    while index < len(arguments):
        word = arguments[index]
        if word.startswith("-") and len(word) > 1:
            following = arguments[index + 1] if index + 1 < len(arguments) else None
            if following is not None and not following.startswith("--"):
                found[word] = following
                index += 2
                continue
            found[word] = True
        index += 1
    return found


def runs_table(
    backend: Backend,
    experiment: str,
    *,
    statuses: list[str] | None = None,
    tags: dict[str, str | None] | None = None,
    properties: dict[str, str | None] | None = None,
    metric_expression: str | None = None,
) -> dict[str, Any]:
    """The runs of ``experiment`` that pass the filters, each with its tags, parameters and
    last metric values, and the names of every parameter and metric among them (the columns
    a page may add). ``metric_expression`` is :mod:`modelyard.ui.run_filter`'s syntax."""
    keep = parse_metric_filter(metric_expression) if metric_expression else None
    rows = []
    metric_names: set[str] = set()
    parameter_names: set[str] = set()
    for record in _all_runs(backend, experiment, tags=tags, properties=properties):
        if statuses and record.status not in statuses:
            continue
        metrics = _last_values(backend.list_metrics(record.id))
        if keep is not None and not keep(metrics):
            continue
        details = backend.get_run_details(record.id)
        spec = job_of(backend, record.id)
        params = parameters(details.properties, run_definition(spec, LOCAL)["arguments"])
        metric_names.update(metrics)
        parameter_names.update(params)
        rows.append(
            {**run_row(record), "tags": details.tags, "parameters": params, "metrics": metrics}
        )
    return {
        "experiment": experiment,
        "runs": rows,
        "metricNames": sorted(metric_names),
        "parameterNames": sorted(parameter_names),
    }


def _files(backend: Backend, run_id: str, prefix: str = "") -> list[FileInfo]:
    return list(
        every_item(
            lambda limit, after: backend.list_run_files(run_id, prefix, limit=limit, after=after)
        )
    )


def timeline(backend: Backend, record: RunRecord) -> list[dict[str, Any]]:
    """The run's states with when each began (Queued, Preparing, Running, ...); for a run
    made before the store kept them, what its record keeps (created, started, ended)."""
    changes = backend.get_run_status_history(record.id)
    if changes:
        return [{"status": change.status, "at": change.at} for change in changes]
    steps: list[dict[str, Any]] = [{"status": "Created", "at": record.created_at}]
    if record.started_at is not None:
        steps.append({"status": "Started", "at": record.started_at})
    if record.ended_at is not None:
        steps.append({"status": record.status, "at": record.ended_at})
    elif record.status not in (NOT_STARTED,):
        steps.append({"status": record.status, "at": None})
    return steps


def run_page(backend: Backend, run_id: str) -> dict[str, Any]:
    """Everything the run page shows but the metric points, logs and snapshot files."""
    details = backend.get_run_details(run_id)
    record = details.run
    spec = job_of(backend, run_id)
    definition = run_definition(spec, details.properties.get(COMPUTE_PROPERTY, LOCAL))
    metrics = backend.list_metrics(run_id)
    children = [
        {**run_row(child), "metrics": _last_values(backend.list_metrics(child.id))}
        for child in _all_runs(backend, record.experiment_name, parent_id=run_id)
    ]
    files = _files(backend, run_id)
    return {
        **run_row(record),
        "final": record.status in TERMINAL_STATES,
        "timeline": timeline(backend, record),
        "tags": details.tags,
        "properties": details.properties,
        "parameters": parameters(details.properties, definition["arguments"]),
        "script": definition.get("script"),
        "arguments": definition["arguments"],
        "target": definition.get("target"),
        "metrics": [
            {
                "name": info.name,
                "kind": info.kind,
                "count": info.count,
                "lastValue": info.last_value,
                "description": info.description,
            }
            for info in metrics
        ],
        "logFiles": log_file_names(backend, run_id),
        "files": [{"path": info.path, "size": info.size} for info in files],
        "children": children,
        "hasSnapshot": SNAPSHOT_PROPERTY in details.properties,
        "primaryMetric": recorded(details.properties, PRIMARY_METRIC_PROPERTY),
    }


def table_metric(backend: Backend, run_id: str, name: str) -> dict[str, Any]:
    """A metric that is not a chart (a table, rows, lists, images), point by point, the
    first :data:`MAX_TABLE_ROWS` points."""
    series = backend.get_metric_series(run_id, [name], limit=MAX_TABLE_ROWS)
    if not series:
        raise NotFoundError(f"run {run_id!r} has no metric {name!r}")
    return {"name": name, "kind": series[0].kind, "values": series[0].values}


def snapshot_entries(backend: Backend, run_id: str) -> list[ManifestEntry]:
    """The files of the run's source snapshot (none for a run without one)."""
    snapshot_id = backend.get_run_details(run_id).properties.get(SNAPSHOT_PROPERTY)
    if snapshot_id is None:
        return []
    return parse_manifest(backend.get_snapshot_manifest(snapshot_id), "snapshot manifest")


def hyperdrive(backend: Backend, run_id: str) -> dict[str, Any]:
    """A tuning run's children as rows of parameters and their best primary metric, with the
    best value found so far after each child ended (the best-metric-over-time chart)."""
    details = backend.get_run_details(run_id)
    config = recorded(details.properties, PRIMARY_METRIC_PROPERTY) or {}
    metric = config.get("name")
    maximize = str(config.get("goal", "")).lower().startswith("max")
    rows = []
    for child in _all_runs(backend, details.run.experiment_name, parent_id=run_id):
        child_details = backend.get_run_details(child.id)
        values = []
        if metric:
            values = [
                float(value)
                for series in backend.get_metric_series(child.id, [metric])
                for value in series.values
                if isinstance(value, int | float) and not isinstance(value, bool)
            ]
        best = (max(values) if maximize else min(values)) if values else None
        rows.append(
            {
                **run_row(child),
                "parameters": parameters(child_details.properties, []),
                "best": best,
            }
        )
    over_time = []
    best_so_far: float | None = None
    for row in sorted(rows, key=lambda r: r["endedAt"] or float("inf")):
        if row["best"] is None or row["endedAt"] is None:
            continue
        if best_so_far is None or (row["best"] > best_so_far) == maximize:
            best_so_far = row["best"]
        over_time.append({"at": row["endedAt"], "best": best_so_far, "runId": row["id"]})
    return {
        "metric": metric,
        "goal": config.get("goal"),
        "children": rows,
        "bestOverTime": over_time,
    }


def models(backend: Backend) -> list[dict[str, Any]]:
    """Every model version, newest first, with its run and that run's experiment."""
    shown = []
    for record in every_item(lambda limit, after: backend.list_models(limit=limit, after=after)):
        experiment = None
        if record.run_id is not None:
            try:
                experiment = backend.get_run(record.run_id).experiment_name
            except NotFoundError:
                experiment = None
        files = _model_files(backend, record.name, record.version)
        shown.append(
            {
                "name": record.name,
                "version": record.version,
                "createdAt": record.created_at,
                "description": record.description,
                "tags": record.tags,
                "properties": record.properties,
                "runId": record.run_id,
                "experiment": experiment,
                "files": [{"path": info.path, "size": info.size} for info in files],
            }
        )
    return shown


def _model_files(backend: Backend, name: str, version: int) -> list[FileInfo]:
    return list(
        every_item(
            lambda limit, after: backend.list_model_files(name, version, limit=limit, after=after)
        )
    )


def computes(backend: Backend) -> list[dict[str, Any]]:
    """Compute targets (``local`` first) with their node counts, how they changed over the
    last NODE_HISTORY_S, and the runs queued there."""
    targets = list(every_item(lambda limit, after: backend.list_computes(limit=limit, after=after)))
    # One query per target, as its admission reads its queue, not one per queued run; a run
    # naming no target is the local compute's.
    by_target = {
        target.name: backend.list_runs_in_states(
            [QUEUED], properties={COMPUTE_PROPERTY: target.name}
        )
        for target in targets
    }
    on_targets = {record.id for records in by_target.values() for record in records}
    by_target[LOCAL] = [
        record
        for record in backend.list_runs_in_states([QUEUED])
        if record.id not in on_targets
        and backend.get_run_details(record.id).properties.get(COMPUTE_PROPERTY, LOCAL) == LOCAL
    ]
    shown: list[dict[str, Any]] = [
        {"name": LOCAL, "type": "local", "state": "Succeeded", "nodes": {}, "queued": []}
    ]
    since = time.time() - NODE_HISTORY_S
    for target in targets:
        history = backend.get_compute_node_history(target.name, since)
        shown.append(
            {
                "name": target.name,
                "type": target.compute_type,
                "state": target.state,
                "nodes": target.nodes,
                # Its node counts over the last NODE_HISTORY_S, each change with its time.
                "history": [{"at": change.at, "nodes": change.nodes} for change in history],
                "updatedAt": target.updated_at,
                "errors": [str(error.get("message", error)) for error in target.errors],
                "queued": [],
            }
        )
    for entry in shown:
        entry["queued"] = [run_row(record) for record in by_target.get(entry["name"], [])]
    return shown
