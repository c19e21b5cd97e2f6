"""``Tensorboard([run]).start()`` on real runs whose scripts write tf.summary scalars to ./logs,
read back from a real TensorBoard over HTTP as its scalars dashboard reads them."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from modelyard import Experiment, Run, ScriptRunConfig, Workspace
from modelyard.errors import ConfigError, ConflictError, ValidationError
from modelyard.tensorboard import Tensorboard
from modelyard.tensorboard.process import TensorboardProcess
from tests.helpers import wait_for
from tests.tensorboard.board import (
    SCRIPTS,
    expected_accuracy,
    expected_loss,
    needs_tensorboard,
    port_is_free,
    processes_naming,
    runs,
    scalars,
)

# Each test starts TensorBoard, which imports TensorFlow: 5-12 s here.
pytestmark = [needs_tensorboard, pytest.mark.slow]


def test_a_finished_runs_scalars_are_served_under_its_id(
    finished_run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A notebook's folder with a module named like one of the standard library's, which
    # TensorBoard imports: TensorBoard does not start from there, so it is not shadowed.
    (tmp_path / "grp.py").write_text("raise SystemExit('the grp.py of the current folder')\n")
    monkeypatch.chdir(tmp_path)
    tb = Tensorboard([finished_run], port=0)
    url = tb.start()
    root = tb.local_root
    assert root is not None and url.startswith("http://127.0.0.1:")
    try:
        assert runs(url) == [finished_run.id]
        assert scalars(url, finished_run.id, "loss") == expected_loss(5)
        assert scalars(url, finished_run.id, "accuracy") == expected_accuracy(5)
        assert not tb.following  # the run had ended: nothing to follow
        # The copy is the run's own files, under its id.
        copied = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        stored = sorted(n for n in finished_run.get_file_names() if n.startswith("logs/"))
        assert copied == [f"{finished_run.id}/{name.removeprefix('logs/')}" for name in stored]
        assert processes_naming(str(root))  # TensorBoard, reading that folder
    finally:
        tb.stop()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    assert processes_naming(str(root)) == []  # TensorBoard and its data server are gone
    assert port_is_free(port)
    assert not root.exists()  # the private copy goes with it
    tb.stop()  # again: nothing to do


def test_a_live_runs_new_points_appear_while_tensorboard_shows_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    run = Experiment(workspace, "live").submit(
        ScriptRunConfig(
            SCRIPTS,
            "write_scalars.py",
            arguments=["--steps", "6", "--first", "3", "--go-file", str(go)],
        )
    )
    # Started at once: the run has no logs/ yet, which is no error.
    with Tensorboard([run], port=0) as tb:
        assert tb.url is not None
        assert tb.following
        wait_for(lambda: scalars(tb.url, run.id, "loss") == expected_loss(3), timeout=180)
        assert run.get_status() == "Running"  # the script waits for the go file
        go.touch()
        wait_for(lambda: scalars(tb.url, run.id, "loss") == expected_loss(6), timeout=120)
        assert scalars(tb.url, run.id, "accuracy") == expected_accuracy(6)
        assert run.wait_for_completion()["status"] == "Completed"
        wait_for(lambda: not tb.following, timeout=60)  # the run ended: the copy stops
        root = tb.local_root
    assert root is not None and processes_naming(str(root)) == []


def test_two_runs_and_a_kept_local_root(
    finished_run: Run, workspace: Workspace, tmp_path: Path
) -> None:
    """A run without logs beside one with: only runs with event files are listed, named by
    their display names when asked (a submitted run's is its id); the given local_root is
    kept, and a Tensorboard with no runs serves what it holds (as in v1)."""
    empty = Experiment(workspace, "nothing").start_logging(display_name="no logs yet")
    empty.complete()
    assert finished_run.display_name == finished_run.id
    root = tmp_path / "tb-logs"
    with Tensorboard([finished_run, empty], local_root=root, port=0, use_display_name=True) as tb:
        assert runs(tb.url) == [finished_run.id]
    assert (root / finished_run.id).is_dir() and (root / "no logs yet").is_dir()
    with Tensorboard([], local_root=root, port=0) as again:
        assert scalars(again.url, finished_run.id, "loss") == expected_loss(5)


def test_a_port_in_use_is_named(finished_run: Run) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tb = Tensorboard([finished_run], port=port)
        with pytest.raises(ConflictError, match=f"port {port} on 127.0.0.1 is in use"):
            tb.start()
        assert tb.url is None


def test_a_port_taken_after_the_check_is_named_by_tensorboards_own_failure(
    tmp_path: Path,
) -> None:
    """The port is checked before TensorBoard starts; one taken in the seconds TensorBoard
    takes to bind it is reported from TensorBoard's own output."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = TensorboardProcess.start(tmp_path, "127.0.0.1", port, tmp_path / "tb.txt")
        with pytest.raises(ConflictError, match=f"could not listen on http://127.0.0.1:{port}/"):
            process.wait_until_answering()
    assert process.popen.returncode is not None


class _WithoutTensorboard(importlib.abc.MetaPathFinder):
    """Hides the tensorboard package from this process's imports: a machine without it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "tensorboard" or fullname.startswith("tensorboard."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


@pytest.fixture
def without_tensorboard() -> Iterator[None]:
    # The one thing made up here: uninstalling TensorBoard from the shared environment is
    # not an option, so its import is refused in this process instead.
    hidden = {
        name: module for name, module in sys.modules.items() if name.split(".")[0] == "tensorboard"
    }
    for name in hidden:
        del sys.modules[name]
    finder = _WithoutTensorboard()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.modules.update(hidden)


def test_without_tensorboard_installed_start_says_how_to_install_it(
    finished_run: Run, without_tensorboard: None
) -> None:
    with pytest.raises(ConfigError, match=r"pip install 'modelyard\[tensorflow\]'"):
        Tensorboard([finished_run], port=0).start()


def test_bad_arguments_are_named(finished_run: Run, workspace: Workspace) -> None:
    with pytest.raises(ValidationError, match="runs: expected a list of runs"):
        Tensorboard(finished_run)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="runs: item 0 is a str, not a Run"):
        Tensorboard([finished_run.id])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="runs: no runs given"):
        Tensorboard([])
    with pytest.raises(ValidationError, match="port: 70000 is not a port number"):
        Tensorboard([finished_run], port=70000)
    with pytest.raises(ValidationError, match="would share the folder"):
        Tensorboard([finished_run, finished_run])
    slashed = Experiment(workspace, "names").start_logging(display_name="a/b")
    slashed.complete()
    with pytest.raises(ValidationError, match=r"use_display_name: .*'a/b' cannot name a folder"):
        Tensorboard([slashed], use_display_name=True)
