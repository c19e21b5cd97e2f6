"""The web UI's FastAPI application: its pages, its static files and the JSON they read.

``create_app(backend, token=..., host=..., port=...)`` serves one workspace's backend,
read-only:

- pages (one HTML shell; ``static/app.js`` draws the page its path names): ``/``
  (experiments), ``/experiments/{name}`` (runs table), ``/runs/{id}``, ``/compare?run=..``,
  ``/models``, ``/computes``;
- ``/api/...``: experiments, runs (filtered), a run, a metric (downsampled) and its CSV, logs
  from an offset, a file's download, the snapshot's files, a tuning run's children, models,
  compute targets (see each route);
- ``/static/...``: the scripts, styles and the vendored chart library.

Every request needs the token (``access.py``). Errors answer ``{"error": {"code",
"message"}}`` with their type's status (``modelyard.errors``).

Example::

    app = create_app(workspace._backend, token=secrets.token_urlsafe(32))
    uvicorn.run(app, host="127.0.0.1", port=8766)
"""

from __future__ import annotations

import csv
import html
import io
import math
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from modelyard.backend.base import METRIC_PAGE_SIZE, Backend
from modelyard.backend.records import SCALAR
from modelyard.errors import ModelyardError, NotFoundError, ValidationError
from modelyard.names import check_metric_name, clean_relpath, tag_filter
from modelyard.ui import views
from modelyard.ui.access import TokenGate
from modelyard.ui.downsample import DEFAULT_BUCKETS, downsample, numeric_values

_T = TypeVar("_T")
STATIC = Path(__file__).parent / "static"
# Bytes of a log sent in one answer: a page that follows a log asks again for the rest.
LOG_CHUNK = 256 << 10
# Points of scalar series kept in memory (16 bytes each: 128 MB), so that a chart opens
# again, and a live run's chart grows, without its points being read again.
CACHED_POINTS = 8_000_000
MAX_BUCKETS = 10_000
# Images a page may show inline; anything else (an SVG, which may hold a script) downloads.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
PAGES = ("/", "/experiments/{name}", "/runs/{run_id}", "/compare", "/models", "/computes")


def _pairs(field: str, given: list[str]) -> dict[str, str | None] | None:
    """``key=value`` (or ``key`` for any value) query values as a filter."""
    if not given:
        return None
    pairs: dict[str, str | None] = {}
    for item in given:
        key, sep, value = item.partition("=")
        pairs[key] = value if sep else None
    return tag_filter(pairs, field)


def _utf8_prefix(chunk: bytes) -> bytes:
    """``chunk`` less a UTF-8 character cut at its end (it comes whole with the next read)."""
    for back in range(1, min(4, len(chunk)) + 1):
        byte = chunk[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back
            continue
        if byte & 0x80 == 0:
            return chunk
        needed = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4
        return chunk if back >= needed else chunk[:-back]
    return chunk


def json_safe(value: _T) -> _T:
    """``value`` with NaN and infinite floats as the strings ``"NaN"``, ``"Infinity"`` and
    ``"-Infinity"``: JSON has no such numbers (FastAPI would send null), and a diverged run
    logs them.

    Example::

        json_safe({"loss": [1.0, float("nan")]})      # {'loss': [1.0, 'NaN']}
    """
    return cast(_T, _safe(value))


def _safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(item) for item in value]
    return value


def _attachment(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return f"attachment; filename*=UTF-8''{urllib.parse.quote(base, safe='')}"


@dataclass
class _Points:
    """A metric series read so far, and its charts by bucket count."""

    steps: np.ndarray[Any, np.dtype[np.int64]]
    values: np.ndarray[Any, np.dtype[np.float64]]
    charts: dict[int, dict[str, Any]] = field(default_factory=dict)


class _SeriesCache:
    """The scalar series charts were drawn from, the most recently used ones up to
    :data:`CACHED_POINTS` points in all. A series only grows (points are appended in logging
    order), so a live run's chart, asked again every few seconds, reads only the points
    logged since it was last read, not the whole series again."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.lock = threading.Lock()
        self.items: OrderedDict[tuple[str, str], _Points] = OrderedDict()

    def chart(self, run_id: str, name: str, count: int, buckets: int) -> dict[str, Any] | None:
        """The chart of at least ``count`` points of the series; None when it has none."""
        with self.lock:
            points = self.items.get((run_id, name))
            if points is not None:
                self.items.move_to_end((run_id, name))
        if points is None or len(points.values) < count:
            points = self._read_on(run_id, name, points)
            if points is None:
                return None
        chart = points.charts.get(buckets)
        if chart is None:
            steps, values = downsample(points.steps, points.values, buckets)
            chart = {
                "name": name,
                "kind": SCALAR,
                "count": len(points.values),
                "steps": steps,
                "values": values,
                "downsampled": len(steps) < len(points.values),
            }
            points.charts[buckets] = chart
        return chart

    def _read_on(self, run_id: str, name: str, points: _Points | None) -> _Points | None:
        # One call, not pages of METRIC_PAGE_SIZE: the UI's backend is in this process, where
        # a page costs a query of its own (1,000,000 points: 1.1 s at once, 1.9 s in pages,
        # here under load).
        start = 0 if points is None else len(points.values)
        found = self.backend.get_metric_series(run_id, [name], start=start)
        if not found:
            return points
        new = found[0]
        steps = np.asarray(new.steps, dtype=np.int64)
        values = numeric_values(new.values)
        if points is not None:
            steps = np.concatenate([points.steps, steps])
            values = np.concatenate([points.values, values])
        grown = _Points(steps, values)
        with self.lock:
            self.items[(run_id, name)] = grown
            self.items.move_to_end((run_id, name))
            held = sum(len(item.values) for item in self.items.values())
            while held > CACHED_POINTS and len(self.items) > 1:
                held -= len(self.items.popitem(last=False)[1].values)
        return grown


def create_app(
    backend: Backend, *, token: str, host: str = "127.0.0.1", port: int = 8766
) -> FastAPI:
    """The UI of ``backend``'s workspace; requests need ``token`` and a Host header naming
    ``host``:``port`` (see ``access.py``).

    Example::

        app = create_app(ws._backend, token="s3cret", port=8766)
    """
    app = ui_app(backend)
    app.add_middleware(TokenGate, token=token, host=host, port=port)
    return app


def index_page(base: str) -> bytes:
    """The pages' HTML shell for a UI served below ``base`` (``/``, ``/ui/<workspace>/``):
    its script and style paths, and the base the script puts its paths below."""
    text = (STATIC / "index.html").read_text()
    text = text.replace('"/static/', f'"{html.escape(base)}static/')
    meta = f'<meta name="modelyard-base" content="{html.escape(base)}">'
    return text.replace("<head>", f"<head>\n{meta}", 1).encode()


def ui_app(backend: Backend, base: str = "/") -> FastAPI:
    """The UI's pages and JSON of ``backend``'s workspace, with no access check of its own:
    :func:`create_app` adds the token's, a server its accounts' (``server/ui_pages.py``).
    ``base`` is the path it is served below, which its pages' links keep.

    Example::

        app = ui_app(hub.backend("team"), base="/ui/team/")
    """
    app = FastAPI(title="modelyard UI", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    cache = _SeriesCache(backend)
    shell = index_page(base)

    @app.exception_handler(ModelyardError)
    def _error(request: Request, error: ModelyardError) -> JSONResponse:
        status = error.http_status if 400 <= error.http_status < 500 else 500
        return JSONResponse(
            {"error": {"code": error.code, "message": str(error)}}, status_code=status
        )

    def page() -> Response:
        return Response(shell, media_type="text/html", headers={"Cache-Control": "no-store"})

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)

    @app.get("/api/workspace")
    def workspace() -> dict[str, Any]:
        record = backend.get_workspace()
        return {"name": record.name, "id": record.id}

    @app.get("/api/experiments")
    def experiments() -> list[dict[str, Any]]:
        return json_safe(views.experiments(backend))

    @app.get("/api/experiments/{name}/runs")
    def runs(
        name: str,
        status: list[str] = Query(default=[]),  # noqa: B008 - FastAPI's way to declare it
        tag: list[str] = Query(default=[]),  # noqa: B008
        prop: list[str] = Query(default=[], alias="property"),  # noqa: B008
        metric: str | None = None,
    ) -> dict[str, Any]:
        if all(record.name != name for record in backend.list_experiments()):
            raise NotFoundError(f"experiment {name!r} does not exist in this workspace")
        table = views.runs_table(
            backend,
            name,
            statuses=[s for s in status if s],
            tags=_pairs("tag", tag),
            properties=_pairs("property", prop),
            metric_expression=metric or None,
        )
        return json_safe(table)

    @app.get("/api/runs/{run_id}")
    def run(run_id: str) -> dict[str, Any]:
        return json_safe(views.run_page(backend, run_id))

    @app.get("/api/runs/{run_id}/series")
    def series(run_id: str, name: str, buckets: int = DEFAULT_BUCKETS) -> dict[str, Any]:
        check_metric_name("name", name)
        if not 1 <= buckets <= MAX_BUCKETS:
            raise ValidationError("buckets", f"give a number from 1 to {MAX_BUCKETS}")
        info = next((m for m in backend.list_metrics(run_id) if m.name == name), None)
        if info is None:
            raise NotFoundError(f"run {run_id!r} has no metric {name!r}")
        if info.kind != SCALAR:
            return json_safe({**views.table_metric(backend, run_id, name), "count": info.count})
        chart = cache.chart(run_id, name, info.count, buckets)
        if chart is None:
            raise NotFoundError(f"run {run_id!r} has no metric {name!r}")
        return chart

    @app.get("/api/runs/{run_id}/series.csv")
    def series_csv(run_id: str, name: str) -> StreamingResponse:
        check_metric_name("name", name)
        if not backend.get_metric_series(run_id, [name], limit=1):
            raise NotFoundError(f"run {run_id!r} has no metric {name!r}")

        def rows() -> Iterator[str]:
            yield "step,value,time\n"
            start = 0
            while True:
                page = backend.get_metric_series(
                    run_id, [name], start=start, limit=METRIC_PAGE_SIZE
                )
                if not page:
                    return
                out = io.StringIO()
                writer = csv.writer(out, lineterminator="\n")
                writer.writerows(zip(page[0].steps, page[0].values, page[0].times, strict=True))
                yield out.getvalue()
                start += len(page[0].values)
                if len(page[0].values) < METRIC_PAGE_SIZE:
                    return

        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": _attachment(f"{run_id}-{name}.csv")},
        )

    @app.get("/api/runs/{run_id}/logs")
    def logs(run_id: str, name: str, offset: int = 0) -> dict[str, Any]:
        clean = clean_relpath("name", name)
        if offset < 0:
            raise ValidationError("offset", "give a byte offset from 0 up")
        backend.get_run(run_id)
        try:
            chunk = backend.read_run_file(run_id, clean, offset, LOG_CHUNK)
        except NotFoundError:
            return {"name": clean, "text": "", "offset": offset, "exists": False}
        # A character cut at the end comes whole with the next read (unless it is all
        # there is, at the end of a file that ended mid-character).
        whole = _utf8_prefix(chunk) or chunk
        return {
            "name": clean,
            "text": whole.decode("utf-8", errors="replace"),
            "offset": offset + len(whole),
            "exists": True,
            "more": len(chunk) == LOG_CHUNK,
        }

    def _stream(handle: Any) -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(1 << 20):
                yield chunk

    @app.get("/api/runs/{run_id}/file")
    def run_file(run_id: str, name: str, inline: bool = False) -> StreamingResponse:
        clean = clean_relpath("name", name)
        handle = backend.open_run_file(run_id, clean)
        suffix = Path(clean).suffix.lower()
        if inline and suffix in IMAGE_TYPES:
            return StreamingResponse(_stream(handle), media_type=IMAGE_TYPES[suffix])
        # Downloads are never shown as pages: a run's HTML file cannot run in the UI's origin.
        return StreamingResponse(
            _stream(handle),
            media_type="application/octet-stream",
            headers={"Content-Disposition": _attachment(clean)},
        )

    @app.get("/api/runs/{run_id}/snapshot")
    def snapshot(run_id: str) -> list[dict[str, Any]]:
        return [
            {"path": entry.relpath, "size": entry.size, "executable": entry.executable}
            for entry in sorted(views.snapshot_entries(backend, run_id), key=lambda e: e.relpath)
        ]

    @app.get("/api/runs/{run_id}/snapshot/file")
    def snapshot_file(run_id: str, name: str) -> StreamingResponse:
        clean = clean_relpath("name", name)
        entry = next(
            (e for e in views.snapshot_entries(backend, run_id) if e.relpath == clean), None
        )
        if entry is None:
            raise NotFoundError(f"the snapshot of run {run_id!r} has no file {clean!r}")
        return StreamingResponse(
            _stream(backend.open_snapshot_blob(entry.sha256)),
            media_type="application/octet-stream",
            headers={"Content-Disposition": _attachment(clean)},
        )

    @app.get("/api/runs/{run_id}/hyperdrive")
    def tuning(run_id: str) -> dict[str, Any]:
        return json_safe(views.hyperdrive(backend, run_id))

    @app.get("/api/models")
    def models() -> list[dict[str, Any]]:
        return json_safe(views.models(backend))

    @app.get("/api/models/{name}/{version}/file")
    def model_file(name: str, version: int, path: str) -> StreamingResponse:
        clean = clean_relpath("path", path)
        return StreamingResponse(
            _stream(backend.open_model_file(name, version, clean)),
            media_type="application/octet-stream",
            headers={"Content-Disposition": _attachment(clean)},
        )

    @app.get("/api/computes")
    def computes() -> list[dict[str, Any]]:
        return json_safe(views.computes(backend))

    return app
