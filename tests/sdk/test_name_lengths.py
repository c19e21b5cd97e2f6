"""Lengths checked where they bite: an accepted experiment name can hold runs, and display
names are printable text of bounded length."""

from __future__ import annotations

import pytest

from modelyard import Experiment, Workspace
from modelyard.errors import ValidationError
from modelyard.names import MAX_EXPERIMENT_NAME_LENGTH


def test_the_longest_accepted_experiment_name_holds_runs(workspace: Workspace) -> None:
    name = "e" * MAX_EXPERIMENT_NAME_LENGTH
    experiment = Experiment(workspace, name)
    with experiment.start_logging() as run:
        run.log("loss", 0.5)
        child = run.child_run()
        child.complete()
    assert len(run.id) <= 255
    assert [r.id for r in experiment.get_runs()] == [run.id]
    assert run.get_metrics()["loss"] == 0.5
    assert name in workspace.experiments


@pytest.mark.parametrize("length", [MAX_EXPERIMENT_NAME_LENGTH + 1, 255])
def test_a_longer_experiment_name_is_refused_saying_the_maximum(
    workspace: Workspace, length: int
) -> None:
    with pytest.raises(ValidationError) as info:
        Experiment(workspace, "e" * length)
    assert info.value.field == "name"
    assert f"at most {MAX_EXPERIMENT_NAME_LENGTH}" in str(info.value)
    assert workspace.experiments == {}


@pytest.mark.parametrize(
    "display_name",
    [
        "x" * 10_000 + "\x00\x1b[2J",
        "run\x00one",
        "\x1b[31mred\x1b[0m",
        "tab\there",
        "line\nbreak",
        "evil\u202etxt.exe",  # a right-to-left override
        "x" * 256,
    ],
    ids=["10k-nul-esc", "nul", "esc", "tab", "newline", "rtl-override", "256-chars"],
)
def test_a_display_name_with_control_characters_or_too_long_is_refused(
    experiment: Experiment, display_name: str
) -> None:
    with pytest.raises(ValidationError) as info:
        experiment.start_logging(display_name=display_name)
    assert info.value.field == "display_name"
    assert list(experiment.get_runs()) == []


def test_printable_display_names_are_kept(experiment: Experiment) -> None:
    for display_name in ("x" * 255, "Lernrate 0,1 — Versuch [2] (ü)"):
        with experiment.start_logging(display_name=display_name) as run:
            pass
        assert run.display_name == display_name
    with experiment.start_logging(display_name="parent") as run:
        with pytest.raises(ValidationError) as info:
            run.child_run(name="child\x1b[2J")
        assert info.value.field == "name"
        assert run.child_run(name="child 1").display_name == "child 1"
