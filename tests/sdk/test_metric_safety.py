"""Every accepted metric point is stored, or the call that gave it fails.

Real threads, real forked and killed processes, a real SQLite workspace and the real channel
socket between a script and its supervisor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from modelyard import metrics
from modelyard.backend.records import LIST, MetricBatch
from modelyard.errors import MetricsNotStoredError, ValidationError
from modelyard.experiment import Experiment
from modelyard.run import Run
from modelyard.runner.channel import ChannelServer
from modelyard.runner.run_scope import RunScope
from modelyard.store import tables as t
from modelyard.workspace import Workspace
from tests.helpers import serve_to_script, wait_for


def _stored(workspace: Workspace, run: Run, name: str) -> list[object]:
    """What the store holds for one metric, read straight from the backend."""
    series = workspace._backend.get_metric_series(run.id, [name])
    return series[0].values if series else []


def test_eight_threads_lose_no_point_and_keep_their_order(experiment: Experiment) -> None:
    run = experiment.start_logging()
    threads, per_thread = 8, 100_000
    barrier = threading.Barrier(threads)

    def log(thread: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            run.log("value", float(thread * per_thread + i))

    workers = [threading.Thread(target=log, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    run.flush()

    history = run.get_metric_history("value")
    assert len(history) == threads * per_thread
    by_thread: dict[int, list[float]] = {}
    for point in history:
        by_thread.setdefault(int(point.value) // per_thread, []).append(point.value)
    for thread, values in by_thread.items():
        assert values == [float(thread * per_thread + i) for i in range(per_thread)]
    # Points without a step get the metric's next index: no two threads share one.
    assert sorted(point.step for point in history) == list(range(threads * per_thread))


def test_every_kind_of_point_is_safe_from_threads(experiment: Experiment, tmp_path: Path) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n not really an image, just bytes")
    run = experiment.start_logging()
    threads, per_thread = 6, 300
    barrier = threading.Barrier(threads)

    def log(thread: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            run.log_list("lists", [thread, i])
            run.log_row("rows", thread=thread, i=i)
            run.log_table("tables", {"thread": [thread], "i": [i]})
        for _ in range(3):
            run.log_image("pictures", path=image)

    workers = [threading.Thread(target=log, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    got = run.get_metrics()
    assert len(got["lists"]) == threads * per_thread
    assert len(got["rows"]["i"]) == threads * per_thread
    assert len(got["tables"]["i"]) == threads * per_thread
    for thread in range(threads):
        assert [i for t, i in got["lists"] if t == thread] == list(range(per_thread))
    # Each image got a file of its own: none overwrote another's.
    pictures = got["pictures"]
    assert len(pictures) == len(set(pictures)) == threads * 3
    assert set(pictures) <= set(run.get_file_names())


@pytest.mark.parametrize(
    ("value", "step", "field", "words"),
    [
        (10**5000, None, "value", "does not fit the 64 bits"),
        (2**63, None, "value", "does not fit the 64 bits"),
        (np.uint64(2**64 - 1), None, "value", "does not fit the 64 bits"),
        (1.0, 2**70, "step", "does not fit the 64 bits"),
        ("x" * (metrics.MAX_TEXT_CHARS + 1), None, "value", "over the limit"),
        (object(), None, "value", "takes a number, string or bool"),
    ],
    ids=["int-5000-digits", "int-2**63", "numpy-uint64-max", "step-2**70", "long-text", "object"],
)
def test_values_the_store_cannot_hold_are_refused_at_the_call(
    experiment: Experiment, value: object, step: int | None, field: str, words: str
) -> None:
    run = experiment.start_logging()
    run.log("loss", 0.5)
    with pytest.raises(ValidationError, match=words) as info:
        run.log("loss", value, step=step)
    assert info.value.field == field
    assert "'loss'" in str(info.value)
    run.log("loss", 0.25)
    run.flush()
    assert run.get_metrics()["loss"] == [0.5, 0.25]


def test_bad_values_never_cost_good_points(experiment: Experiment) -> None:
    run = experiment.start_logging()
    good = 0
    for i in range(6_000):
        bad = i % 3 == 0
        try:
            if bad:
                run.log("mixed", 10**40 if i % 2 else 2.0, step=2**70 if not i % 2 else None)
            else:
                run.log("mixed", i)
                good += 1
        except ValidationError:
            assert bad
    with pytest.raises(ValidationError):
        run.log_list("lists", [1, 10**30])
    with pytest.raises(ValidationError):
        run.log_row("rows", big=2**64)
    with pytest.raises(ValidationError):
        run.log_table("tables", {"big": [1, 2**64]})
    run.flush()
    assert run.get_metrics()["mixed"] == [i for i in range(6_000) if i % 3]
    assert good == 4_000


def test_a_point_over_the_size_limit_is_refused(
    experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limit lowered for the test, so the test need not build 16 MiB tables.
    monkeypatch.setattr(metrics, "MAX_POINT_BYTES", 10_000)
    run = experiment.start_logging()
    with pytest.raises(ValidationError, match="over the limit of 10,000"):
        run.log_list("big", [0.5] * 2_000)
    run.log_list("big", [0.5] * 100)
    run.flush()
    assert run.get_metrics()["big"] == [0.5] * 100


def test_a_refused_batch_takes_no_other_points_with_it(
    experiment: Experiment, workspace: Workspace
) -> None:
    run = experiment.start_logging()
    # Another process logged "shape" as a list; this one logs it as a scalar: the store
    # refuses that batch, and only that batch.
    workspace._backend.log_metrics(run.id, [MetricBatch("shape", LIST, "b1", [[1, 2]], [0], [0.0])])
    for i in range(1_000):
        run.log("good", i)
    run.log("shape", 3.0)
    with pytest.raises(MetricsNotStoredError) as info:
        run.flush()
    assert info.value.lost == {"shape": 1}
    assert "1 logged metric point could not be stored" in str(info.value)
    assert "'shape'" in str(info.value) and "was logged as list" in str(info.value)
    assert _stored(workspace, run, "good") == list(range(1_000))

    # The error was reported once, and never inside a later log() call: not even the ones
    # that hand batches to the sender (past FLUSH_POINTS).
    for i in range(metrics.FLUSH_POINTS + 10):
        run.log("after", i)
    run.flush()
    assert len(_stored(workspace, run, "after")) == metrics.FLUSH_POINTS + 10


def test_complete_ends_the_run_then_reports_lost_points(
    experiment: Experiment, workspace: Workspace
) -> None:
    run = experiment.start_logging()
    workspace._backend.log_metrics(run.id, [MetricBatch("shape", LIST, "b1", [[1]], [0], [0.0])])
    run.log("shape", 1.0)
    run.log("shape", 2.0)
    with pytest.raises(MetricsNotStoredError, match="2 logged metric points"):
        run.complete()
    assert run.get_status() == "Completed"


def test_a_batch_too_large_for_one_transaction_is_split(
    experiment: Experiment, workspace: Workspace
) -> None:
    run = experiment.start_logging()
    text = "t" * metrics.MAX_TEXT_CHARS
    count = 40  # 40 MiB of text, over two MAX_BATCH_BYTES
    for i in range(count):
        run.log("notes", f"{i:02d}{text[2:]}")
    run.flush()
    stored = _stored(workspace, run, "notes")
    assert [str(value)[:2] for value in stored] == [f"{i:02d}" for i in range(count)]
    with workspace._backend.db.read() as conn:  # type: ignore[attr-defined]
        chunks = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.metric_chunks.join(t.metrics))
            .where(t.metrics.c.run_id == run.id, t.metrics.c.name == "notes")
        ).scalar()
    assert chunks >= 3


@pytest.fixture
def channel_run(
    workspace: Workspace, experiment: Experiment
) -> Iterator[tuple[Run, str, RunScope]]:
    """A run as a submitted script sees it: on the channel to a supervisor's server (which
    the test stops and starts), with points of "a" and "b" logged already."""
    side = serve_to_script(workspace, experiment.start_logging())
    script_run, socket_path, scope, server = side.run, side.socket_path, side.scope, side.server
    script_run.log("a", -1)
    script_run.log("b", -1)
    script_run.flush()
    server.stop()  # the supervisor's socket is gone
    yield script_run, socket_path, scope


def _flush_in_background(run: Run) -> tuple[threading.Event, list[BaseException]]:
    done = threading.Event()
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            run.flush()
        except BaseException as error:
            errors.append(error)
        done.set()

    threading.Thread(target=flush).start()
    return done, errors


def test_a_channel_briefly_gone_is_retried(
    workspace: Workspace, channel_run: tuple[Run, str, RunScope]
) -> None:
    script_run, socket_path, scope = channel_run
    for i in range(100):
        script_run.log("a", i)
    done, errors = _flush_in_background(script_run)
    # Nothing can be stored while the socket is gone, so flush() is still waiting.
    assert not done.wait(0.5)
    server = ChannelServer(workspace._backend, socket_path, scope)
    server.start()
    try:
        assert done.wait(60)
    finally:
        server.stop()
    assert errors == []
    assert _stored(workspace, script_run, "a") == [-1, *range(100)]


def test_a_lasting_failure_is_reported_with_counts_at_flush(
    workspace: Workspace,
    channel_run: tuple[Run, str, RunScope],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "RETRY_SECONDS", 0.3)
    script_run, socket_path, scope = channel_run
    for i in range(100):
        script_run.log("a", i)
    for i in range(50):
        script_run.log("b", i)
    with pytest.raises(MetricsNotStoredError) as info:
        script_run.flush()  # no supervisor listens any more
    assert info.value.lost == {"a": 100, "b": 50}
    assert "150 logged metric points could not be stored" in str(info.value)
    assert "lost the connection to the run's supervisor" in str(info.value)

    server = ChannelServer(workspace._backend, socket_path, scope)
    server.start()
    try:
        script_run.log("a", 100)
        script_run.flush()  # reported once: this flush has nothing to report
    finally:
        server.stop()
    assert _stored(workspace, script_run, "a") == [-1, 100]


def test_points_that_wait_are_stored_without_another_call(
    experiment: Experiment, workspace: Workspace
) -> None:
    run = experiment.start_logging()
    for i in range(5):
        run.log("slow", i)
    # The loop stopped logging; the sender stores the points within FLUSH_SECONDS anyway.
    wait_for(lambda: _stored(workspace, run, "slow") == [0, 1, 2, 3, 4], timeout=30)


def _python(script: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def test_a_killed_process_keeps_what_it_flushed(workspace: Workspace) -> None:
    process = _python(
        f"""
        from modelyard import Workspace, Experiment
        ws = Workspace.get("test-ws", folder={str(workspace.folder)!r})
        run = Experiment(ws, "killed").start_logging()
        for i in range(10_000):
            run.log("x", i)
        run.flush()
        print(run.id, flush=True)
        i = 10_000
        while True:  # logs on, never flushing again, until killed
            run.log("x", i)
            i += 1
        """
    )
    assert process.stdout is not None
    run_id = process.stdout.readline().strip()
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored = Run(Experiment(workspace, "killed"), run_id).get_metrics()["x"]
    assert stored[:10_000] == list(range(10_000))
    assert stored == list(range(len(stored)))


def test_lost_points_are_reported_at_exit(workspace: Workspace) -> None:
    process = _python(
        f"""
        from modelyard import Workspace, Experiment
        from modelyard.backend.records import LIST, MetricBatch
        ws = Workspace.get("test-ws", folder={str(workspace.folder)!r})
        run = Experiment(ws, "exit").start_logging()
        ws._backend.log_metrics(run.id, [MetricBatch("shape", LIST, "b", [[1]], [0], [0.0])])
        for i in range(7):
            run.log("shape", float(i))
        """
    )
    _, stderr = process.communicate(timeout=120)
    assert "7 logged metric points could not be stored" in stderr
    assert "'shape'" in stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_store_its_parents_points_again(
    experiment: Experiment, workspace: Workspace
) -> None:
    run = experiment.start_logging()
    for i in range(1_000):
        run.log("parent", i)  # pending in the parent when it forks
    pid = os.fork()
    if pid == 0:  # the child: logs its own points, stores them, leaves
        code = 0
        try:
            run.log("child", 1.0)
            run.flush()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    run.flush()
    assert _stored(workspace, run, "parent") == list(range(1_000))
    assert _stored(workspace, run, "child") == [1.0]


def test_the_store_refuses_what_it_cannot_hold_as_a_validation_error(
    experiment: Experiment, workspace: Workspace
) -> None:
    run = experiment.start_logging()
    with pytest.raises(ValidationError, match="'x': a point cannot be stored"):
        workspace._backend.log_metrics(
            run.id, [MetricBatch("x", "scalar", "b", [1.0], [2**70], [0.0])]
        )
    assert _stored(workspace, run, "x") == []


def test_a_flush_returns_while_other_threads_keep_logging(experiment: Experiment) -> None:
    run = experiment.start_logging()
    stop = threading.Event()

    def log_forever() -> None:
        i = 0
        while not stop.is_set():
            run.log("busy", i)
            i += 1
            if i % 50_000 == 0:
                time.sleep(0)

    worker = threading.Thread(target=log_forever)
    worker.start()
    try:
        run.log("mine", 1.0)
        run.flush()  # waits for what came before it, not for the other thread to stop
        assert run.get_metrics("mine") == {"mine": 1.0}
    finally:
        stop.set()
        worker.join()
