"""The HTML that notebooks show for runs, experiments, workspaces, models and datastores.

Every ``_repr_html_`` of the SDK delegates here, so the escaping lives in one module: each
value from a user (names, tags, ids, metric names, URLs) goes through :func:`text`, which is
``html.escape`` with quotes; markup is built only from this module's own literals and from
:class:`Markup` values made here. Logged images become small ``data:`` thumbnails read from
the run's files, within a size cap, so a notebook stays small and needs no server.

The functions read records and the Backend contract only (never the SDK nouns), so any SDK
object can call them without a cycle.

Example::

    from modelyard.widgets import html as repr_html

    repr_html.run_html(ws._backend, run_record)    # '<div class="modelyard-run">...</div>'
"""

from __future__ import annotations

import base64
import html
import math
import time
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

from modelyard.backend.base import Backend
from modelyard.backend.records import (
    IMAGE,
    DatastoreRecord,
    MetricInfo,
    ModelRecord,
    RunRecord,
)
from modelyard.errors import NotFoundError
from modelyard.progress import format_duration
from modelyard.store.secrets import scrub

# Thumbnails: a few images, each small, so one cell's output stays well under a megabyte
# (Jupyter warns about outputs over 10 MB, and every byte is saved in the .ipynb).
MAX_THUMBNAILS = 6
MAX_THUMBNAIL_BYTES = 256 * 1024
THUMBNAIL_PX = 96
# Listings show this many rows, then say how many more there are.
MAX_ROWS = 50
# An experiment's runs are counted up to this many (then shown as 1000+).
MAX_RUNS_COUNTED = 1000
# Metrics shown in a run's table.
MAX_METRICS = 30
SIGNIFICANT_DIGITS = 4

# Image types a browser shows in <img> from a data: URI. SVG is left out: it is a document
# that can carry scripts and links, not just pixels.
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}

_STYLE = (
    "<style>.modelyard-repr table{border-collapse:collapse;margin:2px 0}"
    ".modelyard-repr th,.modelyard-repr td{border:1px solid #ccc;padding:2px 6px;"
    "text-align:left;vertical-align:top}"
    f".modelyard-repr img{{max-width:{THUMBNAIL_PX}px;max-height:{THUMBNAIL_PX}px;margin:2px}}"
    "</style>"
)


class Markup(str):
    """HTML this module built itself: :func:`cell` puts it in as it is, unescaped."""


def text(value: object) -> str:
    """``value`` as text safe anywhere in HTML, attributes included.

    Example::

        text("<img src=x onerror=alert(1)>")   # '&lt;img src=x onerror=alert(1)&gt;'
    """
    if isinstance(value, Markup):
        return str(value)
    return html.escape("" if value is None else str(value), quote=True)


def number(value: object) -> str:
    """A metric value as people read it: floats to 4 significant digits, lists and tables
    by their size.

    Example::

        number(0.912345678)      # '0.9123'
        number([1, 2, 3])        # '[3 values]'
    """
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    if isinstance(value, list):
        return f"[{len(value)} values]"
    if isinstance(value, dict):
        return f"{{{len(value)} columns}}"
    return str(value)


def duration(record: RunRecord, now: float | None = None) -> str:
    """How long the run ran (or has been running), as ``12.3 s`` or ``4 m 05 s``."""
    if record.started_at is None:
        return "-"
    return format_duration(max(0.0, (record.ended_at or now or time.time()) - record.started_at))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Markup:
    """A table of escaped cells (a :class:`Markup` cell goes in as it is)."""
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{text(v)}</td>" for v in row) + "</tr>" for row in rows)
    return Markup(f"<table><tr>{head}</tr>{body}</table>")


def _block(kind: str, title: str, *parts: str) -> str:
    return (
        f'{_STYLE}<div class="modelyard-repr modelyard-{kind}">'
        f"<strong>{text(title)}</strong>{''.join(parts)}</div>"
    )


def _more(shown: int, total: int | None) -> str:
    if total is None:
        return f"<p>First {shown} shown; iterate for the others.</p>"
    if total > shown:
        return f"<p>{total - shown} more not shown.</p>"
    return ""


def metrics_table(metrics: Sequence[MetricInfo]) -> Markup:
    """Each metric's last value (rounded) and its number of points."""
    rows = [
        (m.name, number(m.last_value) if m.kind != IMAGE else "image", m.count)
        for m in metrics[:MAX_METRICS]
    ]
    more = _more(len(rows), len(metrics)) if len(metrics) > MAX_METRICS else ""
    return Markup(table(("Metric", "Last value", "Points"), rows) + more)


def _data_uri(backend: Backend, run_id: str, name: str) -> str | None:
    """The run file ``name`` as a ``data:`` URI, or None when it is not a small image."""
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    mime = _IMAGE_TYPES.get(suffix)
    if mime is None:
        return None
    try:
        data = backend.read_run_file(run_id, name, 0, MAX_THUMBNAIL_BYTES + 1)
    except NotFoundError:
        return None
    if not data or len(data) > MAX_THUMBNAIL_BYTES:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnails(backend: Backend, run_id: str, metrics: Sequence[MetricInfo]) -> Markup:
    """The last image of each image metric as a thumbnail (a few, each under the cap)."""
    images = []
    for metric in metrics:
        if metric.kind != IMAGE or not isinstance(metric.last_value, str):
            continue
        uri = _data_uri(backend, run_id, metric.last_value)
        if uri is not None:
            images.append(
                f'<img src="{text(uri)}" alt="{text(metric.name)}" title="{text(metric.name)}">'
            )
        if len(images) == MAX_THUMBNAILS:
            break
    return Markup("<div>" + "".join(images) + "</div>" if images else "")


def run_html(backend: Backend, record: RunRecord, portal_url: str | None = None) -> str:
    """A run: ids, status, duration, a link to its page in the web UI, its metrics' last
    values and its images."""
    metrics = backend.list_metrics(record.id)
    summary = table(
        ("Experiment", "Id", "Name", "Type", "Status", "Duration"),
        [
            (
                record.experiment_name,
                record.id,
                record.display_name,
                record.run_type,
                record.status,
                duration(record),
            )
        ],
    )
    parts: list[str] = [summary]
    if portal_url is not None:
        link = text(portal_url)
        parts.append(f'<p><a href="{link}" target="_blank" rel="noopener">{link}</a></p>')
    if metrics:
        parts += [metrics_table(metrics), thumbnails(backend, record.id, metrics)]
    return _block("run", f"Run {record.display_name}", *parts)


def run_rows(records: Sequence[RunRecord]) -> Markup:
    """A table of runs, one row each."""
    return table(
        ("Experiment", "Id", "Name", "Type", "Status", "Duration"),
        [
            (r.experiment_name, r.id, r.display_name, r.run_type, r.status, duration(r))
            for r in records
        ],
    )


def runs_html(records: Sequence[RunRecord], complete: bool) -> str:
    """A listing of runs (``exp.get_runs()``); ``complete`` says whether these are all."""
    shown = records[:MAX_ROWS]
    more = _more(len(shown), len(records) if complete else None)
    return _block("runs", "Runs", run_rows(shown), more)


def experiment_html(name: str, workspace_name: str, runs: Sequence[RunRecord]) -> str:
    """An experiment, its number of runs and the newest of them."""
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    counts = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    count = f"{len(runs)}+" if len(runs) >= MAX_RUNS_COUNTED else str(len(runs))
    summary = table(
        ("Name", "Workspace", "Runs", "By status"), [(name, workspace_name, count, counts or "-")]
    )
    newest = run_rows(runs[:5]) if runs else Markup("")
    return _block("experiment", f"Experiment {name}", summary, newest)


def workspace_html(
    name: str,
    location: str,
    resource_group: str,
    where: str,
    experiments: Sequence[str],
) -> str:
    """A workspace: where it is and its experiments."""
    listed = ", ".join(experiments[:MAX_ROWS]) + (" ..." if len(experiments) > MAX_ROWS else "")
    return _block(
        "workspace",
        f"Workspace {name}",
        table(
            ("Name", "Where", "Resource group", "Location", "Experiments"),
            [(name, public_url(where), resource_group, location, listed or "-")],
        ),
    )


def public_url(url: str, secrets: dict[str, object] | None = None) -> str:
    """``url`` without a user name or password in it, and with every secret option value
    replaced by ``***``: what can be shown.

    Example::

        public_url("s3://key:secret@bucket/data")   # 's3://bucket/data'
    """
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return scrub(url, dict(secrets or {}))


def datastore_html(record: DatastoreRecord) -> str:
    """A datastore: name, URL and whether it is the default; its credentials never (only the
    names of its options)."""
    return _block(
        "datastore",
        f"Datastore {record.name}",
        table(
            ("Name", "URL", "Default", "Options"),
            [
                (
                    record.name,
                    public_url(record.url, record.storage_options),
                    "yes" if record.is_default else "no",
                    ", ".join(sorted(record.storage_options)) or "-",
                )
            ],
        ),
    )


def _model_row(record: ModelRecord) -> tuple[object, ...]:
    tags = ", ".join(f"{k}: {v}" if v else k for k, v in sorted(record.tags.items()))
    return (
        record.name,
        record.version,
        record.run_id or "-",
        tags or "-",
        record.description or "",
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.created_at)),
    )


_MODEL_HEADERS = ("Name", "Version", "Run", "Tags", "Description", "Registered")


def model_html(record: ModelRecord) -> str:
    """A model version: its run, tags and description."""
    return _block("model", f"Model {record.id}", table(_MODEL_HEADERS, [_model_row(record)]))


def models_html(records: Sequence[ModelRecord]) -> str:
    """A listing of model versions (``Model.list``)."""
    shown = records[:MAX_ROWS]
    return _block(
        "models",
        "Models",
        table(_MODEL_HEADERS, [_model_row(r) for r in shown]),
        _more(len(shown), len(records)),
    )
