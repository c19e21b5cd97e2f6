"""What the widget reads of a run (``RunWatcher`` through ``RunDetails``), on real workspaces:
a tuning run's children ranked by their primary metric, long series and logs kept bounded,
a failed run's error, a server that is away for a while."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from modelyard import Experiment, Workspace
from modelyard.backend.records import HYPERDRIVE_RUN_TYPE, RUNNING
from modelyard.errors import ValidationError
from modelyard.run import Run
from modelyard.train.hyperdrive.plan import PRIMARY_METRIC_PROPERTY
from modelyard.widgets import run_state
from modelyard.widgets.html import number
from tests.helpers import wait_for
from tests.server_process import ServerProcess
from tests.tcp_proxy import TcpProxy

pytest.importorskip("anywidget", reason="RunDetails needs the widgets extra")
from modelyard.widgets.run_details import RunDetails


def tuning_run(workspace: Workspace, goal: str) -> Run:
    """A tuning run's records as its driver writes them: the parent with its primary metric,
    children logging it."""
    experiment = Experiment(workspace, "tuned")
    record = workspace._backend.create_run(
        f"HD_{goal.lower()}",
        experiment.name,
        run_type=HYPERDRIVE_RUN_TYPE,
        status=RUNNING,
        properties={PRIMARY_METRIC_PROPERTY: json.dumps({"name": "acc", "goal": goal})},
    )
    parent = Run(experiment, record.id, _record=record)
    for values in ([0.2, 0.7, 0.4], [0.6, 0.65]):
        child = parent.child_run()
        for value in values:
            child.log("acc", value)
        child.complete()
    return parent


@pytest.mark.parametrize(
    ("goal", "best"), [("MAXIMIZE", ["0.65", "0.7"]), ("MINIMIZE", ["0.2", "0.6"])]
)
def test_a_tuning_run_lists_each_child_with_its_best_primary_metric(
    workspace: Workspace, goal: str, best: list[str]
) -> None:
    details = RunDetails(tuning_run(workspace, goal))

    assert details.primary_metric == {"name": "acc", "goal": goal}
    rows: list[dict[str, Any]] = details.children
    assert sorted(row["value"] for row in rows) == best
    assert {row["status"] for row in rows} == {"Completed"}
    assert details.following is False  # not shown: nothing follows it


def test_a_long_series_keeps_its_count_and_a_bounded_chart(workspace: Workspace) -> None:
    run = Experiment(workspace, "long").start_logging()
    total = run_state.MAX_CHART_POINTS * 3 + 7
    for step in range(total):
        run.log("loss", float(step))
    run.flush()

    loss = RunDetails(run).metrics["loss"]

    assert loss["count"] == total and loss["last"] == number(float(total - 1))
    assert run_state.MAX_CHART_POINTS // 2 <= len(loss["values"]) <= run_state.MAX_CHART_POINTS
    assert loss["steps"][0] == 0 and loss["steps"] == sorted(loss["steps"])
    # Evenly spaced: every k-th point, so the chart keeps the series' shape.
    gaps = {b - a for a, b in zip(loss["steps"], loss["steps"][1:], strict=False)}
    assert len(gaps) == 1


def test_the_log_tail_follows_from_its_offset_and_stays_bounded(workspace: Workspace) -> None:
    run = Experiment(workspace, "logged").start_logging()
    name = "user_logs/std_log.txt"
    details = RunDetails(run)
    assert details.log_tail == ""

    first = b"x" * (run_state.LOG_TAIL_CHARS + 100) + b"\n"
    run._backend.append_run_file(run.id, name, 0, first)
    details.refresh()
    assert len(details.log_tail) == run_state.LOG_TAIL_CHARS
    run._backend.append_run_file(run.id, name, len(first), "fin \u00e9\n".encode())
    details.refresh()

    assert details.log_tail.endswith("x\nfin \u00e9\n")
    assert len(details.log_tail) == run_state.LOG_TAIL_CHARS


def test_a_failed_run_shows_its_error_and_is_not_followed(workspace: Workspace) -> None:
    run = Experiment(workspace, "failing").start_logging()
    run.fail(ValueError("diverged <at> step 3"))

    details = RunDetails(run)
    details.start()

    assert details.status == "Failed" and details.ended
    assert details.error == "diverged <at> step 3"
    assert details.following is False and details.wait(timeout=0)


def test_only_a_run_of_a_workspace_can_be_shown() -> None:
    offline = Run.get_context()  # outside a run: an offline run, which no workspace holds
    with pytest.raises(
        ValidationError, match="run_instance: RunDetails shows a run of a workspace"
    ):
        RunDetails(offline)  # type: ignore[arg-type]


def test_the_widget_follows_on_through_a_server_briefly_away(
    http_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A server's workspace reached through a proxy that refuses for a while: the widget
    shows that it cannot read the run, keeps trying, and follows the run to its end."""
    user = f"u{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MODELYARD_TOKEN", http_server.user(user))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.setenv("MODELYARD_RETRY_S", "0")  # each failed read reaches the widget
    upstream = urlsplit(http_server.url)
    assert upstream.hostname is not None and upstream.port is not None
    proxy = TcpProxy.start(upstream.hostname, upstream.port)
    try:
        ws = Workspace.get(http_server.new_workspace(owner=user), server=proxy.endpoint_url)
        run = Experiment(ws, "remote").start_logging()
        details = RunDetails(run)
        details.start()

        proxy.set_mode("refuse")
        wait_for(lambda: details.follow_error)
        assert "could not read the run" in details.follow_error and details.following

        proxy.set_mode("forward")
        run.log("acc", 0.5)
        run.complete()

        assert details.wait(timeout=60)
        assert details.status == "Completed" and details.follow_error == ""
        assert details.metrics["acc"]["count"] == 1
    finally:
        proxy.stop()
