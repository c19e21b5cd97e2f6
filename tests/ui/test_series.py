"""Downsampling for charts, the series a live chart reads, the compute page's queues and the
runs table's metric expressions (no server process needed)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard import Experiment, Workspace
from modelyard.backend.records import QUEUED
from modelyard.errors import ValidationError
from modelyard.runner.local_compute import COMPUTE_PROPERTY
from modelyard.ui.app import ui_app
from modelyard.ui.downsample import downsample
from modelyard.ui.run_filter import parse_metric_filter
from modelyard.ui.views import computes


def test_a_long_series_keeps_its_extremes_in_few_points() -> None:
    count = 1_000_000
    values: list[object] = [math.sin(i / 1000.0) for i in range(count)]
    values[123_457] = 50.0  # one spike and one dip, each a single point
    values[876_543] = -50.0
    values[10] = "not a number"
    steps, shown = downsample(list(range(count)), values, buckets=1000)
    assert len(steps) <= 4000
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == count - 1
    assert 123_457 in steps and 876_543 in steps
    numbers = [v for v in shown if v is not None]
    assert max(numbers) == 50.0 and min(numbers) == -50.0


def test_a_short_series_is_sent_whole_with_gaps_for_strings() -> None:
    assert downsample([0, 1, 2, 3], [0.5, True, "x", 2]) == ([0, 1, 2, 3], [0.5, 1.0, None, 2.0])


@pytest.mark.parametrize(
    ("text", "metrics", "kept"),
    [
        ("validation_acc > 0.9", {"validation_acc": 0.95}, True),
        ("validation_acc > 0.9", {"validation_acc": 0.9}, False),
        ("validation_acc > 0.9", {}, False),
        ("validation_acc >= 0.9 and loss < 0.2", {"validation_acc": 0.9, "loss": 0.1}, True),
        ("acc > 0.99 or not loss > 1", {"acc": 0.5, "loss": 0.5}, True),
        ("(acc > 0.99 or loss > 1) and acc > 0", {"acc": 0.5, "loss": 0.5}, False),
        ("`top 5` == 1", {"top 5": 1}, True),
        ("phase == 'eval'", {"phase": "eval"}, True),
        ("phase > 1", {"phase": "eval"}, False),  # a string never compares with a number
        ("done == true", {"done": True}, True),
        ("loss < 1e-3", {"loss": 0.0001}, True),
    ],
)
def test_metric_expressions(text: str, metrics: dict[str, object], kept: bool) -> None:
    assert parse_metric_filter(text)(metrics) is kept


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("validation_acc >", "ends too early"),
        ("acc > 0.9 loss < 1", "unexpected 'loss'"),
        ("__import__('os').system('x')", "cannot read"),
        ("__import__ (1)", "expected one of"),
        ("acc = 1", "cannot read '= 1'"),
        ("acc > banana", "expected a number"),
        ("(acc > 1", "ends too early"),
        ("(" * 60 + "acc > 1" + ")" * 60, "nested deeper"),
        ("  ", "empty"),
        ("a > 1 and " * 200 + "a > 1", "at most 1000 characters"),
    ],
)
def test_a_bad_expression_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValidationError, match="metric") as error:
        parse_metric_filter(text)
    assert says in str(error.value)


def test_a_live_runs_chart_reads_only_the_points_logged_since(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Experiment(workspace, "live").start_logging(outputs=False)
    backend = run._backend
    starts: list[int] = []
    real = backend.get_metric_series

    def recorded(run_id: str, names: list[str] | None = None, **kw: Any) -> Any:
        starts.append(kw.get("start", 0))
        return real(run_id, names, **kw)

    # The real backend, its reads counted: which points each chart asked for.
    monkeypatch.setattr(backend, "get_metric_series", recorded)
    client = TestClient(ui_app(backend))

    def chart() -> dict[str, Any]:
        answer = client.get(f"/api/runs/{run.id}/series", params={"name": "loss"})
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    for i in range(3000):
        run.log("loss", float(i % 97))
    run.flush()
    assert chart()["count"] == 3000
    assert chart()["count"] == 3000  # the same chart again reads nothing
    for i in range(3000, 5000):
        run.log("loss", float(-i))
    run.flush()
    grown = chart()
    assert starts == [0, 3000]
    whole = real(run.id, ["loss"])[0]
    assert (grown["steps"], grown["values"]) == downsample(whole.steps, whole.values)
    assert grown["count"] == 5000 and grown["downsampled"] and min(grown["values"]) == -4999.0
    run.complete()


def test_the_compute_page_lists_each_targets_queue(workspace: Workspace) -> None:
    backend = workspace._backend
    backend.create_compute("gpucluster", "AmlCompute", {"max_nodes": 4})
    experiment = Experiment(workspace, "queued")  # the experiment the runs belong to
    for run_id, where in [("on-gpu", "gpucluster"), ("here", None), ("gone", "deleted")]:
        backend.create_run(
            run_id,
            experiment.name,
            run_type="azureml.scriptrun",
            status=QUEUED,
            properties={COMPUTE_PROPERTY: where} if where else None,
        )
    queues = {entry["name"]: [row["id"] for row in entry["queued"]] for entry in computes(backend)}
    # A run of a target that is no longer there is on no page's queue, not the local one's.
    assert queues == {"local": ["here"], "gpucluster": ["on-gpu"]}
