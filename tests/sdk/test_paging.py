"""The SDK reads long lists and long metrics a page at a time, and the user sees all of them.

A real SQLite workspace; the backend's own calls are recorded (and made) to show that the
reads went in pages.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from modelyard.backend.base import METRIC_PAGE_SIZE, PAGE_SIZE
from modelyard.backend.records import QUEUED, SCALAR, MetricBatch
from modelyard.errors import NotFoundError
from modelyard.experiment import Experiment
from modelyard.workspace import Workspace


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


def test_a_million_point_metric_is_read_in_pages(
    workspace: Workspace, experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = experiment.start_logging()
    total, batch = 1_000_000, 50_000
    # Two processes of a distributed run take turns, a batch each.
    workspace._backend.log_metrics(
        run.id,
        [
            MetricBatch(
                name="loss",
                kind=SCALAR,
                batch_id=uuid.uuid4().hex,
                values=[float(i) for i in range(first, first + batch)],
                steps=list(range(first, first + batch)),
                times=[0.0] * batch,
                process=first // batch % 2,
            )
            for first in range(0, total, batch)
        ],
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
