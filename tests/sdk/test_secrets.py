"""Datastore credentials stay private: kept in a 0600 file apart from the database, and never
shown by the SDK, the CLI, a run's error or its logs."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard import Experiment, Workspace
from modelyard.backend.records import FAILED
from modelyard.datastore import Datastore
from modelyard.errors import ValidationError
from modelyard.script_run_config import ScriptRunConfig
from modelyard.store.secrets import SECRETS_FILE, SecretsFile
from tests.helpers import run_cli

KEY = "AKIA-key-6b1f0c2e"
SECRET = "s3cr3t-value-94d2a7"


def _database_bytes(ws: Workspace) -> bytes:
    """Every byte of the workspace's SQLite files, as another account would read them."""
    return b"".join(path.read_bytes() for path in ws.folder.glob("modelyard.db*") if path.is_file())


def _kept(ws: Workspace, name: str) -> dict[str, object]:
    """The storage options the workspace keeps for datastore ``name`` (never in a record)."""
    return SecretsFile(ws.folder / SECRETS_FILE).get(name)


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.mark.parametrize("umask", [0o022, 0o000], indirect=True, ids=["022", "000"])
def test_storage_options_live_in_a_private_file_not_in_the_database(
    tmp_path: Path, umask: int
) -> None:
    ws = Workspace.create("ws", folder=tmp_path / "ws")
    Datastore.register(ws, "raw", "memory://raw", key=KEY, secret=SECRET)

    data = _database_bytes(ws)
    assert data and KEY.encode() not in data and SECRET.encode() not in data
    secrets = ws.folder / SECRETS_FILE
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert [p.name for p in ws.folder.iterdir() if p.name.startswith(f".{SECRETS_FILE}")] == []
    # Another process's workspace object finds them, and the store opens with them; its
    # record names them only.
    again = Datastore.get(Workspace.get("ws", folder=tmp_path / "ws"), "raw")
    assert _kept(again.workspace, "raw") == {"key": KEY, "secret": SECRET}
    assert again._record.storage_options == {"key": "***", "secret": "***"}
    again.upload_files([__file__], target_path="code")


def test_registering_again_with_other_options_replaces_them(workspace: Workspace) -> None:
    Datastore.register(workspace, "raw", "memory://raw", key=KEY, secret=SECRET)
    Datastore.register(workspace, "raw", "memory://raw", overwrite=True, anon=True)
    assert _kept(workspace, "raw") == {"anon": True}
    assert SECRET not in (workspace.folder / SECRETS_FILE).read_text()


def _register_many(location: str, worker: int) -> None:
    ws = Workspace.get("ws", folder=location)
    for index in range(5):
        Datastore.register(
            ws, f"d{worker}-{index}", f"memory://d{worker}-{index}", token=f"t{worker}-{index}-xyz"
        )


def test_processes_registering_at_once_all_keep_their_credentials(tmp_path: Path) -> None:
    Workspace.create("ws", folder=tmp_path / "ws")
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_register_many, args=(str(tmp_path / "ws"), worker))
        for worker in range(6)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0

    ws = Workspace.get("ws", folder=tmp_path / "ws")
    found = {d.name: _kept(ws, d.name) for d in Datastore.list(ws)}
    for worker in range(6):
        for index in range(5):
            assert found[f"d{worker}-{index}"] == {"token": f"t{worker}-{index}-xyz"}


def test_details_repr_and_listings_show_option_names_only(workspace: Workspace) -> None:
    ds = Datastore.register(workspace, "raw", "memory://raw", key=KEY, secret=SECRET)

    details = Datastore.get(workspace, "raw").get_details()
    assert details["storageOptions"] == {"key": "***", "secret": "***"}
    assert (details["name"], details["url"], details["isDefault"]) == ("raw", "memory://raw", False)
    shown = [
        str(details),
        repr(ds),
        repr(Datastore.get(workspace, "raw")),
        repr(workspace.datastores),
        repr(Datastore.list(workspace)),
        repr(ds._record),  # what a traceback or a log line of the record would print
    ]
    for text in shown:
        assert KEY not in text and SECRET not in text, text


@pytest.fixture
def zipped(tmp_path: Path) -> Path:
    """A real zip archive for fsspec's zip:// filesystem, whose ``fo`` option (its path) plays
    the credential: fsspec's error quotes it when the archive cannot be opened."""
    path = tmp_path / f"archive-{SECRET}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data/a.txt", "hello")
    return path


def test_an_fsspec_error_at_register_does_not_quote_the_options(
    workspace: Workspace, zipped: Path
) -> None:
    missing = zipped.with_name(f"gone-{SECRET}.zip")
    with pytest.raises(ValidationError) as info:
        Datastore.register(workspace, "z", "zip://", fo=str(missing), password=KEY)

    message = str(info.value)
    assert SECRET not in message and KEY not in message
    assert "'fo'" in message and "'password'" in message  # which options, not their values
    assert "FileNotFoundError" in message


def test_a_datastore_that_fails_to_open_later_does_not_quote_them(
    workspace: Workspace, zipped: Path, tmp_path: Path
) -> None:
    Datastore.register(workspace, "z", "zip://", fo=str(zipped))  # opens: the archive is there
    zipped.unlink()

    with pytest.raises(ValidationError) as info:
        Datastore.get(workspace, "z").download(tmp_path / "again", show_progress=False)
    assert SECRET not in str(info.value)


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(cwd, *args)


def test_the_cli_shows_option_names_and_hides_values(tmp_path: Path, zipped: Path) -> None:
    ws = Workspace.create("demo", folder=tmp_path / "ws")
    ws.write_config(tmp_path)
    Datastore.register(ws, "raw", "memory://raw", key=KEY, secret=SECRET)
    Datastore.register(ws, "z", "zip://", fo=str(zipped))
    zipped.unlink()

    table = _cli(tmp_path, "datastore", "list")
    listed = _cli(tmp_path, "datastore", "list", "--json")
    failed = _cli(tmp_path, "datastore", "download", "back", "--datastore", "z")

    assert table.returncode == 0 and "key, secret" in table.stdout
    assert listed.returncode == 0
    options = {d["name"]: d["storageOptions"] for d in json.loads(listed.stdout)}
    assert options == {
        "raw": {"key": "***", "secret": "***"},
        "workspaceblobstore": {},
        "z": {"fo": "***"},
    }
    assert failed.returncode == ValidationError.exit_code
    assert "cannot be opened" in failed.stderr and "Traceback" not in failed.stderr
    for result in (table, listed, failed):
        for value in (KEY, SECRET):
            assert value not in result.stdout + result.stderr


def test_a_run_whose_datastore_fails_to_open_keeps_the_options_out_of_its_error(
    workspace: Workspace, zipped: Path, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print('never runs')\n")
    ds = Datastore.register(workspace, "z", "zip://", fo=str(zipped))
    zipped.unlink()

    run = Experiment(workspace, "exp").submit(
        ScriptRunConfig(str(source), "train.py", arguments=["--data", ds.as_mount()])
    )
    run.wait_for_completion(raise_on_error=False)

    assert run.get_status() == FAILED
    error = json.dumps(run.get_details().get("error"))
    assert "cannot be opened" in error and SECRET not in error
    logs = b"".join(
        run._backend.read_run_file(run.id, name)
        for name in run.get_file_names()
        if name.startswith(("system_logs/", "user_logs/"))
    )
    assert logs and SECRET.encode() not in logs
