"""`modelyard run submit SOURCE_DIR SCRIPT [ARGS]`: which words are modelyard's, which the script's.

The rule (cli/script_command.py): modelyard's options anywhere before `--`; after SCRIPT every
other word goes to the script, except a long option one typo from one of modelyard's; after
`--` everything goes to the script. The parsing cases are read through click's own parsing
(`make_context`: the values the command would run with, nothing submitted); what a user sees
end to end runs as real processes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from modelyard import Run, Workspace
from modelyard.cli.main import cli
from tests.helpers import run_cli

TIMEOUT_S = 120


def parsed(*words: str) -> dict[str, Any]:
    """The values `modelyard run submit WORDS` runs with: the options, and the script's args."""
    run_group = cli.commands["run"]
    assert isinstance(run_group, click.Group)
    submit = run_group.commands["submit"]
    with submit.make_context("submit", list(words)) as ctx:
        return dict(ctx.params)


def refused(*words: str) -> str:
    """`modelyard run submit WORDS` as a usage error (exit 2): its message."""
    result = CliRunner().invoke(cli, ["run", "submit", *words], prog_name="modelyard")
    assert result.exit_code == 2, (words, result.output)
    assert "Traceback" not in result.output
    return result.stderr


@pytest.mark.parametrize(
    ("words", "experiment", "wait", "tags", "script_args"),
    [
        # The documented command: options after SCRIPT are modelyard's.
        (["./src", "train.py", "--experiment", "mnist", "--wait"], "mnist", True, (), ()),
        # Before SOURCE_DIR, between SOURCE_DIR and SCRIPT, and with '=' or an attached value.
        (["--wait", "./src", "-e", "mnist", "train.py"], "mnist", True, (), ()),
        (
            ["./src", "train.py", "--experiment=mnist", "--tag=k=v"],
            "mnist",
            False,
            (("k", "v"),),
            (),
        ),
        (["./src", "train.py", "-emnist"], "mnist", False, (), ()),
        # Other words after SCRIPT go to the script, in order, around modelyard's own.
        (
            ["./src", "train.py", "--lr", "0.1", "-e", "mnist", "data.csv", "-v", "--wait"],
            "mnist",
            True,
            (),
            ("--lr", "0.1", "data.csv", "-v"),
        ),
        # After '--' everything is the script's, modelyard's option names too.
        (
            ["-e", "mnist", "./src", "train.py", "--lr", "1", "--", "--wait", "-e", "x", "--"],
            "mnist",
            False,
            (),
            ("--lr", "1", "--wait", "-e", "x", "--"),
        ),
        # '--' before SOURCE_DIR: the positionals follow it, as written.
        (["-e", "mnist", "--", "./src", "train.py", "--wait"], "mnist", False, (), ("--wait",)),
        # A long option of the script that is no typo of modelyard's (--tags is, --tagged not).
        (
            ["./src", "train.py", "-e", "mnist", "--tagged", "--waiting"],
            "mnist",
            False,
            (),
            ("--tagged", "--waiting"),
        ),
    ],
)
def test_options_anywhere_before_the_separator(
    words: list[str],
    experiment: str,
    wait: bool,
    tags: tuple[tuple[str, str], ...],
    script_args: tuple[str, ...],
) -> None:
    params = parsed(*words)
    assert params["source_dir"] == "./src" and params["script"] == "train.py"
    assert (params["experiment_name"], params["wait"], params["tags"]) == (experiment, wait, tags)
    assert params["args"] == script_args


@pytest.mark.parametrize(
    ("words", "typed", "meant"),
    [
        (["--experimnt", "mnist", "./src", "train.py"], "--experimnt", "--experiment"),
        (["--wiat", "-e", "mnist", "./src", "train.py"], "--wiat", "--wait"),
        (["./src", "--wiat", "train.py", "-e", "mnist"], "--wiat", "--wait"),
    ],
)
def test_an_unknown_option_before_script_is_a_usage_error_with_a_suggestion(
    words: list[str], typed: str, meant: str
) -> None:
    message = refused(*words)
    assert f"No such option '{typed}'. Did you mean '{meant}'?" in message
    assert "Missing" not in message  # not "Missing option '--experiment'", nor SOURCE_DIR


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("--wiat", "--wait"),
        ("--experimnt", "--experiment"),
        ("--tags", "--tag"),
        ("--jsno", "--json"),
    ],
)
def test_a_typo_of_an_option_after_script_is_refused_and_says_how_to_pass_it(
    typed: str, meant: str
) -> None:
    message = refused("./src", "train.py", "-e", "mnist", typed)
    assert f"No such option '{typed}'. Did you mean '{meant}'?" in message
    assert f"put it after '--': modelyard run submit ... SCRIPT -- {typed}" in message
    # What the message says to do works: after '--' the script gets it.
    assert parsed("./src", "train.py", "-e", "mnist", "--", typed)["args"] == (typed,)


def test_help_states_the_rule_with_examples() -> None:
    result = CliRunner().invoke(cli, ["run", "submit", "--help"], prog_name="modelyard")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "read anywhere before '--', before or after SCRIPT" in text
    assert "(--wiat for --wait) is refused" in text
    assert "modelyard run submit ./src train.py --lr 0.1 --experiment mnist --wait" in text
    # --help after SCRIPT is modelyard's too, not an argument of the script.
    after = CliRunner().invoke(
        cli, ["run", "submit", "./src", "train.py", "--help"], prog_name="modelyard"
    )
    assert after.exit_code == 0 and after.output == result.output


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(cwd, *args, timeout=TIMEOUT_S)


def test_the_documented_command_waits_and_the_script_gets_its_own_arguments(tmp_path: Path) -> None:
    ws = Workspace.create("cli", folder=tmp_path / ".modelyard" / "cli")
    ws.write_config(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("import sys; print('got', sys.argv[1:])")

    done = _cli(
        tmp_path, "run", "submit", "./src", "train.py", "--experiment", "mnist", "--wait",
        "--lr", "0.1", "--", "--wait",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # It waited (--wait was modelyard's): the script's output and the final status are here.
    assert "got ['--lr', '0.1', '--wait']" in done.stdout
    assert "Status: Completed" in done.stdout

    typo = _cli(tmp_path, "run", "submit", "--experimnt", "mnist", "./src", "train.py")
    assert typo.returncode == 2 and typo.stdout == ""
    assert "No such option '--experimnt'. Did you mean '--experiment'?" in typo.stderr
    late = _cli(tmp_path, "run", "submit", "./src", "train.py", "-e", "mnist", "--wiat", "--json")
    assert late.returncode == 2 and "Did you mean '--wait'?" in late.stderr
    # Neither was submitted: the one run is the first.
    listed = json.loads(_cli(tmp_path, "--json", "run", "list").stdout)
    assert [r["runId"] for r in listed] == [done.stdout.split("Submitted run ")[1].split()[0]]
    assert Run.get(ws, listed[0]["runId"]).get_details()["runDefinition"]["arguments"] == [
        "--lr",
        "0.1",
        "--wait",
    ]
