"""The SDK reads long lists and long metrics a page at a time, and the user sees all of them.

A real SQLite workspace; the backend's own calls are recorded (and made) to show that the
reads went in pages.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from modelyard.backend.base import METRIC_PAGE_SIZE, PAGE_SIZE
from modelyard.backend.records import QUEUED, SCALAR, MetricBatch
from modelyard.errors import NotFoundError
from modelyard.experiment import Experiment
from modelyard.run import Run
from modelyard.workspace import Workspace
from tests.helpers import serve_to_script


def _record_calls(
    monkeypatch: pytest.MonkeyPatch, workspace: Workspace, method: str
) -> list[dict[str, Any]]:
    """The keyword arguments of each call of ``method`` on the workspace's backend, which
    still makes every call."""
    calls: list[dict[str, Any]] = []
    real = getattr(workspace._backend, method)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(workspace._backend, method, recorded)
    return calls


def _points(name: str, first: int, count: int, process: int | None = None) -> MetricBatch:
    return MetricBatch(
        name=name,
        kind=SCALAR,
        batch_id=uuid.uuid4().hex,
        values=[float(i) for i in range(first, first + count)],
        steps=list(range(first, first + count)),
        times=[0.0] * count,
        process=process,
    )


def test_a_million_point_metric_is_read_in_pages(
    workspace: Workspace, experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = experiment.start_logging()
    total, batch = 1_000_000, 50_000
    # Two processes of a distributed run take turns, a batch each.
    workspace._backend.log_metrics(
        run.id,
        [_points("loss", first, batch, first // batch % 2) for first in range(0, total, batch)],
    )
    calls = _record_calls(monkeypatch, workspace, "get_metric_series")

    history = run.get_metric_history("loss")
    assert [point.step for point in history] == list(range(total))
    assert history[-1].value == total - 1
    assert all(call["limit"] == METRIC_PAGE_SIZE for call in calls)
    assert [call["start"] for call in calls] == list(range(0, total + 1, METRIC_PAGE_SIZE))

    calls.clear()
    of_one = run.get_metric_history("loss", process=1)
    assert len(of_one) == total // 2
    assert of_one[0].step == batch and of_one[-1].step == total - 1
    assert len(calls) == total // METRIC_PAGE_SIZE + 1
    with pytest.raises(NotFoundError, match="no metric 'missing'"):
        run.get_metric_history("missing")


def test_get_runs_goes_on_past_one_page(
    workspace: Workspace, experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = workspace._backend
    count = PAGE_SIZE + 3
    for i in range(count):
        backend.create_run(f"r{i:04}", experiment.name, run_type="script", status=QUEUED)
    calls = _record_calls(monkeypatch, workspace, "list_runs")

    runs = [run.id for run in experiment.get_runs()]
    assert runs == [f"r{i:04}" for i in reversed(range(count))]
    assert len(calls) == 2 and calls[1]["after"] is not None


@pytest.fixture
def script_run(workspace: Workspace, experiment: Experiment) -> Iterator[Run]:
    """A run as its script sees it: through the channel to a supervisor's server."""
    side = serve_to_script(workspace, experiment.start_logging())
    yield side.run
    side.server.stop()


def test_a_script_reads_its_run_in_pages_over_the_channel(
    workspace: Workspace, experiment: Experiment, script_run: Run
) -> None:
    backend = workspace._backend
    points = 2 * METRIC_PAGE_SIZE + 7
    backend.log_metrics(script_run.id, [_points("acc", 0, points)])
    assert [p.step for p in script_run.get_metric_history("acc")] == list(range(points))

    many = PAGE_SIZE + 2
    for i in range(many):
        backend.upload_run_file(script_run.id, f"outputs/f{i:04}.txt", io.BytesIO(b"x"))
        backend.create_run(
            f"child{i:04}",
            experiment.name,
            run_type="child",
            status=QUEUED,
            parent_id=script_run.id,
        )
    assert script_run.get_file_names() == [f"outputs/f{i:04}.txt" for i in range(many)]
    children = [child.id for child in script_run.get_children()]
    assert children == [f"child{i:04}" for i in reversed(range(many))]
