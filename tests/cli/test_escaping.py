"""What the CLI prints for people cannot drive the terminal: control and format characters in
stored tags, properties, metric values and descriptions are shown escaped, in tables and in
key-value output alike, while ``--json`` keeps the exact values.

Runs the real ``modelyard`` entry point as subprocesses (see tests/cli/test_cli.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard import Experiment, Model, Workspace
from modelyard.cli.output import escape_control

TIMEOUT_S = 120
CLEAR_SCREEN = "\x1b[2J\x1b[31mpwned"
FAKE_LINE = "ok\nstatus  Completed"
RTL = "evil\u202etxt.exe"
C1 = "csi\x9b31m"


def _cli(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``modelyard ARGS`` in ``cwd``; commands that do not depend on each other start
    together, as each spends about 0.5 s importing modelyard."""
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "modelyard.cli.main", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _outputs(*started: subprocess.Popen[str]) -> list[str]:
    """The standard output of each command, which must have succeeded."""
    outputs = []
    for process in started:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
        assert process.returncode == 0, (process.args, stderr)
        outputs.append(stdout)
    return outputs


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    cwd = tmp_path_factory.mktemp("escaping")
    ws = Workspace.create("demo", folder=cwd / ".modelyard" / "demo")
    ws.write_config(cwd)
    with Experiment(ws, "exp").start_logging() as run:
        run.tag("stage", CLEAR_SCREEN)
        run.tag("note", FAKE_LINE)
        run.add_properties({"origin": RTL})
        run.log("comment", C1)
        run.log("banner", CLEAR_SCREEN)
    (cwd / "model.bin").write_bytes(b"weights")
    Model.register(
        ws, cwd / "model.bin", "clf", tags={"owner": CLEAR_SCREEN}, description=FAKE_LINE
    )
    return cwd, run.id


def _assert_escaped(text: str) -> None:
    for char in ("\x1b", "\u202e", "\x9b"):
        assert char not in text
    assert not any(line.startswith("status  Completed") for line in text.splitlines())


def test_tables_and_fields_show_control_characters_escaped(project: tuple[Path, str]) -> None:
    cwd, run_id = project
    show, metrics, history, models, model = _outputs(
        _cli(cwd, "run", "show", run_id),
        _cli(cwd, "run", "metrics", run_id),
        _cli(cwd, "run", "metrics", run_id, "--name", "banner"),
        _cli(cwd, "model", "list"),
        _cli(cwd, "model", "show", "clf:1"),
    )
    for text in (show, metrics, history, models, model):
        _assert_escaped(text)
    assert "stage=\\x1b[2J\\x1b[31mpwned" in show
    assert "note=ok\\nstatus  Completed" in show
    assert "origin=evil\\u202etxt.exe" in show
    assert "csi\\x9b31m" in metrics
    assert "\\x1b[2J\\x1b[31mpwned" in history
    assert "\\x1b[2J" in models
    assert "ok\\nstatus  Completed" in model


def test_json_output_keeps_the_exact_values(project: tuple[Path, str]) -> None:
    cwd, run_id = project
    show, model = _outputs(
        _cli(cwd, "run", "show", run_id, "--json"),
        _cli(cwd, "model", "show", "clf:1", "--json"),
    )
    assert "\x1b" not in show and "\x1b" not in model  # JSON escapes them itself
    details = json.loads(show)
    assert details["tags"] == {"stage": CLEAR_SCREEN, "note": FAKE_LINE}
    assert details["properties"]["origin"] == RTL
    assert json.loads(model)["description"] == FAKE_LINE


def test_escape_control_keeps_printable_text() -> None:
    assert escape_control("Lernrate 0,1 — Versuch [2] 学習\u3000率") == (
        "Lernrate 0,1 — Versuch [2] 学習\u3000率"
    )
    assert escape_control("a\tb\rc\x00\x7f\u200b") == "a\\tb\\rc\\x00\\x7f\\u200b"
    assert escape_control(escape_control(CLEAR_SCREEN)) == escape_control(CLEAR_SCREEN)


def test_error_messages_show_control_characters_escaped_line_by_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from click import Command, Context

    from modelyard.cli.main import _report

    with Context(Command("modelyard")) as ctx:
        _report(ctx, f"cannot read {CLEAR_SCREEN}\nlooked in: ./a", "storage_error", 7)
    err = capsys.readouterr().err
    _assert_escaped(err)
    assert err == "Error: cannot read \\x1b[2J\\x1b[31mpwned\nlooked in: ./a\n"
