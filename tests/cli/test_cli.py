"""The ``modelyard`` command line against a real workspace.

Every user flow runs the real CLI as a subprocess (``python -m modelyard.cli.main``): each
process spends about 0.5 s importing modelyard, so calls that do not depend on each other start
together and each test groups several. The secondary checks of each flow (human tables, filters,
the error matrix) run in this process through click's ``CliRunner``, the same code without the
import cost.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import fsspec
import pytest
from click.testing import CliRunner

from modelyard import Experiment, Workspace, errors
from modelyard.cli.main import EXIT_CODES, cli
from tests.s3 import KEY, SECRET, S3Server, isolated_env

TIMEOUT_S = 120


@dataclass
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def ok(self) -> Result:
        assert self.returncode == 0, f"{self.args}: exit {self.returncode}\n{self.stderr}"
        return self

    def json(self) -> Any:
        return json.loads(self.ok().stdout)


@dataclass
class Pending:
    """A CLI process started by :func:`cli_start`."""

    args: tuple[str, ...]
    process: subprocess.Popen[str]

    def result(self) -> Result:
        stdout, stderr = self.process.communicate(timeout=TIMEOUT_S)
        return Result(self.args, self.process.returncode, stdout, stderr)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"}
    return {**env, **extra}


def cli_start(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Pending:
    """Start ``modelyard ARGS`` in ``cwd`` as a subprocess."""
    process = subprocess.Popen(
        [sys.executable, "-m", "modelyard.cli.main", *args],
        cwd=cwd,
        env=env or _env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Pending(args, process)


def cli_all(*pending: Pending) -> list[Result]:
    """Wait for processes started together."""
    return [p.result() for p in pending]


def cli_run(cwd: Path, *args: str) -> Result:
    """Run ``modelyard ARGS`` in ``cwd`` as a subprocess and wait for it."""
    return cli_start(cwd, *args).result()


def invoke(config: Path, *args: str) -> Result:
    """Run ``modelyard --workspace-config CONFIG ARGS`` in this process."""
    runner = CliRunner(env={"MODELYARD_CONFIG": None})
    full = ("--workspace-config", str(config), *args)
    result = runner.invoke(cli, full, catch_exceptions=False, prog_name="modelyard")
    return Result(full, result.exit_code, result.stdout, result.stderr)


def assert_error(result: Result, exit_code: int, *words: str) -> None:
    """The command failed with ``exit_code``, printed nothing on stdout, and a message without
    a traceback on stderr that holds each of ``words``."""
    assert result.returncode == exit_code, (result.args, result.returncode, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (result.args, result.stderr)


@dataclass
class Project:
    """A folder whose ./.modelyard/config.json names a workspace with two logged runs."""

    cwd: Path
    config: Path
    ws: Workspace
    run_id: str


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    cwd = tmp_path_factory.mktemp("project")
    ws = Workspace.create("demo", folder=cwd / ".modelyard" / "demo")
    config = ws.write_config(cwd)
    (cwd / "model.bin").write_bytes(b"weights")
    with Experiment(ws, "tf-mnist").start_logging(display_name="first") as run:
        for epoch in range(5):
            run.log("loss", 1.0 / (epoch + 1))
        run.log("acc [val]", 0.9)
        run.tag("stage", "test")
        run.upload_file("outputs/model/model.bin", cwd / "model.bin")
        run.upload_file("logs/events.txt", cwd / "model.bin")
    Experiment(ws, "tf-mnist").start_logging().fail("boom")
    yield Project(cwd, config, ws, run.id)


def test_a_workspace_on_postgresql_from_the_cli(tmp_path: Path, postgres_url: str) -> None:
    # A password in the URL (trust auth ignores it) is never shown back.
    with_password = postgres_url.replace("postgres@", "postgres:hunter2@", 1)
    created = cli_run(
        tmp_path, "workspace", "create", "team", "--database-url", with_password, "--json"
    ).json()
    assert created["database"].startswith("postgresql+psycopg://postgres:***@/")
    source = tmp_path / "src"
    source.mkdir()
    (source / "hello.py").write_text(
        "from modelyard import Run\nRun.get_context().log('x', 1.0)\nprint('hello')\n"
    )
    submitted = cli_run(
        tmp_path, "run", "submit", "--experiment", "e", "--wait", str(source), "hello.py"
    )
    assert "hello" in submitted.ok().stdout
    shown = cli_run(tmp_path, "workspace", "show").ok().stdout
    assert "postgresql+psycopg://postgres:***@" in shown and "hunter2" not in shown
    # The runs are in PostgreSQL, not in a SQLite file of the folder.
    assert not (tmp_path / ".modelyard" / "team" / "modelyard.db").exists()
    (listed,) = cli_run(tmp_path, "run", "list", "--experiment", "e", "--json").json()
    assert listed["status"] == "Completed"
    metrics = cli_run(tmp_path, "run", "metrics", listed["runId"], "--json").json()
    assert [(m["name"], m["lastValue"]) for m in metrics] == [("x", 1.0)]


def test_a_workspace_on_postgresql_and_s3_from_the_cli(
    tmp_path: Path, postgres_url: str, s3_server: S3Server
) -> None:
    storage_url, _ = s3_server.new_bucket("team")
    env = {k: v for k, v in isolated_env().items() if k != "MODELYARD_CONFIG"}
    created = cli_start(
        tmp_path,
        *("workspace", "create", "team", "--database-url", postgres_url),
        *("--storage-url", storage_url, "--storage-endpoint", s3_server.endpoint_url, "--json"),
        env=env,
    ).result()
    assert created.returncode == 0, created.stderr
    source = tmp_path / "src"
    source.mkdir()
    (source / "hello.py").write_text("print('hello from s3')\n")
    submitted = cli_start(
        tmp_path, "run", "submit", "--experiment", "e", "--wait", str(source), "hello.py", env=env
    ).result()
    assert "hello from s3" in submitted.ok().stdout
    (listed,) = cli_run(tmp_path, "run", "list", "--experiment", "e", "--json").json()
    # Read back by a client without AWS variables: the key and secret are the workspace's.
    logs = cli_run(tmp_path, "run", "logs", listed["runId"]).ok().stdout
    assert "hello from s3" in logs
    bucket = fsspec.filesystem("s3", **s3_server.storage_options)
    assert bucket.find(f"{storage_url}/runs/{listed['runId']}/user_logs")  # the live log
    assert bucket.find(f"{storage_url}/snapshots")
    assert not list((tmp_path / ".modelyard" / "team").rglob("std_log*"))
    assert KEY not in created.stdout and SECRET not in created.stdout


def test_workspace_create_show_and_config_lookup(tmp_path: Path) -> None:
    created = cli_run(tmp_path, "workspace", "create", "demo", "--json").json()
    assert created["name"] == "demo" and created["created"] is True
    config = tmp_path / ".modelyard" / "config.json"
    assert Path(created["config"]) == config and config.is_file()
    deeper = tmp_path / "sub" / "deeper"
    deeper.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    show = ("workspace", "show", "--json")
    in_sub, by_option, by_env, conflict, bad_name, no_config = cli_all(
        cli_start(deeper, *show),
        cli_start(tmp_path, "--workspace-config", str(config), *show),
        cli_start(tmp_path, *show, env=_env(MODELYARD_CONFIG=str(config))),
        cli_start(tmp_path, "workspace", "create", "demo", "--no-exist-ok"),
        cli_start(tmp_path, "workspace", "create", "bad name"),
        cli_start(tmp_path, "--workspace-config", str(elsewhere), "workspace", "show"),
    )
    for result in (in_sub, by_option, by_env):
        shown = result.json()
        assert (shown["name"], shown["id"]) == ("demo", created["id"])
        assert shown["defaultDatastore"] == "workspaceblobstore"
    assert_error(conflict, 4, "exists already", "--no-exist-ok")
    assert_error(bad_name, 2, "'bad name' is not a valid name")
    assert_error(no_config, 5, "no workspace config", "modelyard workspace create")

    create = ("workspace", "create", "--no-config", "--folder")
    again = invoke(config, *create, str(tmp_path / ".modelyard" / "demo"), "demo")
    assert "exists already" in again.ok().stdout
    other = invoke(config, *create, str(tmp_path / "o"), "other")
    assert "Created workspace 'other'" in other.ok().stdout
    assert (tmp_path / "o" / "workspace.json").is_file()
    assert json.loads(config.read_text())["workspace_name"] == "demo"
    human = invoke(config, "workspace", "show").ok().stdout
    assert re.search(r"^id\s+" + created["id"], human, re.M)


def test_run_list_show_metrics_download(project: Project) -> None:
    run_id, cwd = project.run_id, project.cwd
    download = ("run", "download", run_id, "--prefix", "outputs/", "--output", "out", "--json")
    listed, shown, summary, downloaded = cli_all(
        cli_start(cwd, "run", "list", "--json"),
        cli_start(cwd, "run", "show", run_id, "--json"),
        cli_start(cwd, "run", "metrics", run_id, "--json"),
        cli_start(cwd, *download),
    )
    runs = listed.json()
    assert [r["status"] for r in runs] == ["Failed", "Completed"]  # newest first
    details = shown.json()
    assert (details["runId"], details["status"]) == (run_id, "Completed")
    assert details["displayName"] == "first"
    assert details["tags"] == {"stage": "test"}
    assert details["files"] == ["logs/events.txt", "outputs/model/model.bin"]
    assert set(runs[1]) <= set(details)  # list and show speak the same keys
    assert [(m["name"], m["count"], m["lastValue"]) for m in summary.json()] == [
        ("loss", 5, 0.2),
        ("acc [val]", 1, 0.9),
    ]
    assert downloaded.json()["files"] == [os.path.join("out", "outputs", "model", "model.bin")]
    assert (cwd / "out/outputs/model/model.bin").read_bytes() == b"weights"
    assert not (cwd / "out/logs").exists()

    config = project.config
    series = invoke(config, "run", "metrics", run_id, "--name", "loss", "--json").json()
    points = [(p["step"], p["value"]) for p in series["points"]]
    assert points == [(i, 1 / (i + 1)) for i in range(5)]
    tagged = invoke(config, "run", "list", "-e", "tf-mnist", "--tag", "stage=test", "--json")
    assert [r["runId"] for r in tagged.json()] == [run_id]
    assert invoke(config, "run", "list", "--tag", "stage=other", "--json").json() == []
    lines = invoke(config, "run", "list", "--limit", "1").ok().stdout.splitlines()
    assert len(lines) == 3 and runs[0]["runId"] in lines[2]  # header, rule, one run
    table = invoke(config, "run", "metrics", run_id).ok().stdout
    assert [line.split()[:3] for line in table.splitlines()[2:]] == [
        ["loss", "5", "0.2"],
        ["acc", "[val]", "1"],  # brackets printed as they are, not read as rich markup
    ]
    assert "stage=test" in invoke(config, "run", "show", run_id).ok().stdout
    experiments = invoke(config, "experiment", "list", "--json").json()
    assert [(e["name"], e["runs"]) for e in experiments] == [("tf-mnist", 2)]

    assert_error(invoke(config, "run", "show", "nope"), 3, "Error: run 'nope' does not exist")
    as_json = invoke(config, "run", "show", "nope", "--json")
    assert_error(as_json, 3)
    assert json.loads(as_json.stderr)["error"]["code"] == "not_found"
    assert_error(invoke(config, "run", "list", "-e", "nosuch"), 3, "experiment 'nosuch'")
    assert_error(invoke(config, "run", "list", "-e", "bad name"), 2, "--experiment")
    assert_error(invoke(config, "run", "metrics", run_id, "--name", "nosuch"), 3, "'nosuch'")
    assert_error(invoke(config, "run", "download", run_id, "--prefix", "x/"), 3, "no files")
    assert_error(invoke(config, "run", "list", "--limit", "-1"), 2, "--limit")
    assert set(project.ws.experiments) == {"tf-mnist"}  # reading made no experiment


def test_model_register_list_show_download(project: Project) -> None:
    cwd, config = project.cwd, project.config
    (cwd / "clf").mkdir()
    (cwd / "clf" / "weights.bin").write_bytes(b"w1")
    tags = ("--tag", "area=mnist", "--tag", "reviewed", "--description", "first")
    first = cli_run(cwd, "model", "register", "clf", "--name", "clf", *tags, "--json").json()
    assert (first["id"], first["tags"], first["description"]) == (
        "clf:1",
        {"area": "mnist", "reviewed": ""},
        "first",
    )
    register = ("model", "register", "outputs/model", "--name", "clf", "--from-run")
    from_run, downloaded = cli_all(
        cli_start(cwd, *register, project.run_id, "--json"),
        cli_start(cwd, "model", "download", "clf:1", "--output", "dl", "--json"),
    )
    assert (from_run.json()["id"], from_run.json()["runId"]) == ("clf:2", project.run_id)
    path = Path(downloaded.json()["path"])
    assert path == cwd / "dl" / "clf" and (path / "weights.bin").read_bytes() == b"w1"

    versions = invoke(config, "model", "list", "--name", "clf", "--json").json()
    assert [m["id"] for m in versions] == ["clf:2", "clf:1"]
    latest = invoke(config, "model", "list", "--latest", "--json").json()
    assert [m["id"] for m in latest] == ["clf:2"]
    tagged = invoke(config, "model", "list", "--tag", "area=mnist", "--json").json()
    assert [m["id"] for m in tagged] == ["clf:1"]
    assert invoke(config, "model", "show", "clf:1", "--json").json()["files"] == ["clf/weights.bin"]
    assert invoke(config, "model", "show", "clf", "--json").json()["files"] == ["model/model.bin"]
    human = invoke(config, "model", "list").ok().stdout
    assert "clf:2" in human and "area=mnist, reviewed" in human
    dl = str(cwd / "dl")
    assert_error(invoke(config, "model", "download", "clf:1", "--output", dl), 4, "--exist-ok")
    replaced = invoke(config, "model", "download", "clf:1", "--output", dl, "--exist-ok")
    assert "Downloaded clf:1" in replaced.ok().stdout
    missing = str(cwd / "no" / "such")
    assert_error(invoke(config, "model", "register", missing, "--name", "x"), 2, "PATH:")
    bad_name = invoke(config, "model", "register", "clf", "--name", "bad name")
    assert_error(bad_name, 2, "--name: 'bad name' is not a valid name")
    # Keys are free text as in v1 ("Best Run"), without control characters.
    bad_tag = invoke(config, "model", "register", "clf", "--name", "clf", "--tag", "a\tb=1")
    assert_error(bad_tag, 2, "--tag: key 'a\\tb'")
    assert_error(
        invoke(config, "run", "download", project.run_id, "--prefix", "../x"), 2, "--prefix"
    )
    assert_error(invoke(config, "model", "show", "nosuch"), 3, "'nosuch'")
    assert_error(invoke(config, "model", "show", "clf:9"), 3, "clf")
    assert_error(invoke(config, "model", "show", "clf:latest"), 2, "NAME[:VERSION]")
    assert_error(invoke(config, "model", "list", "--tag", "=v"), 2, "has no key")


def test_datastore_list_upload_download(project: Project) -> None:
    cwd, config = project.cwd, project.config
    source = cwd / "data"
    (source / "train").mkdir(parents=True)
    (source / "train" / "a.bin").write_bytes(b"a" * 1000)
    (source / "labels.txt").write_text("0 1\n")
    uploaded = cli_run(cwd, "datastore", "upload", "data", "--target", "mnist", "--json").json()
    assert (uploaded["datastore"], uploaded["target"]) == ("workspaceblobstore", "mnist")
    downloaded, stores = cli_all(
        cli_start(cwd, "datastore", "download", "back", "--prefix", "mnist", "--json"),
        cli_start(cwd, "datastore", "list", "--json"),
    )
    assert downloaded.json()["files"] == 2
    assert (cwd / "back/mnist/train/a.bin").read_bytes() == b"a" * 1000
    assert (cwd / "back/mnist/labels.txt").read_text() == "0 1\n"
    assert [(s["name"], s["isDefault"]) for s in stores.json()] == [("workspaceblobstore", True)]
    assert "storage_options" not in stores.json()[0]

    (source / "labels.txt").write_text("changed\n")
    skipped = invoke(config, "datastore", "upload", str(source), "--target", "mnist")
    assert "skipped" in skipped.ok().stdout  # existing files stay without --overwrite
    invoke(config, "datastore", "upload", str(source), "--target", "mnist", "--overwrite").ok()
    back = str(cwd / "back")
    invoke(config, "datastore", "download", back, "--prefix", "mnist", "--overwrite").ok()
    assert (cwd / "back/mnist/labels.txt").read_text() == "changed\n"
    single = invoke(config, "datastore", "upload", str(source / "labels.txt"), "--target", "one")
    single.ok()
    invoke(config, "datastore", "download", back, "--prefix", "one").ok()
    assert (cwd / "back/one/labels.txt").read_text() == "changed\n"
    assert "workspaceblobstore" in invoke(config, "datastore", "list").ok().stdout
    nosuch = invoke(config, "datastore", "upload", str(source), "--datastore", "nosuch")
    assert_error(nosuch, 3, "nosuch")
    assert_error(invoke(config, "datastore", "upload", str(cwd / "nope")), 2, "does not exist")
    outside = invoke(config, "datastore", "upload", str(source), "--target", "../x")
    assert_error(outside, 2, "--target: '../x' leaves its root")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_help_on_every_command(tmp_path: Path) -> None:
    # One real process for the top level; every command's help in-process, from the same tree.
    top = cli_run(tmp_path, "--help").ok().stdout
    documented = {int(m) for m in re.findall(r"^\s+(\d+)\s+\S", top.split("Exit codes:")[1], re.M)}
    assert documented == {code for code, _text in EXIT_CODES}
    assert "--workspace-config" in top and "MODELYARD_CONFIG" in top

    runner = CliRunner()
    paths = list(_commands(cli))
    expected = {
        ("workspace", "create"),
        ("workspace", "show"),
        ("experiment", "list"),
        ("run", "list"),
        ("run", "show"),
        ("run", "metrics"),
        ("run", "download"),
        ("run", "submit"),
        ("run", "logs"),
        ("run", "cancel"),
        ("datastore", "list"),
        ("datastore", "upload"),
        ("datastore", "download"),
        ("model", "list"),
        ("model", "show"),
        ("model", "register"),
        ("model", "download"),
    }
    assert expected <= {tuple(p) for p in paths}
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Example" in result.output, path
        command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]  # type: ignore[assignment]
        short = command.get_short_help_str(limit=60)
        assert short and not short.endswith("..."), (path, short)


def test_every_error_exit_code_is_documented() -> None:
    documented = {code for code, _text in EXIT_CODES}
    tree = [errors.ModelyardError]
    while tree:
        error = tree.pop()
        assert error.exit_code in documented, error
        tree.extend(error.__subclasses__())
