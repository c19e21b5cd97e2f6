"""The channel between a run's processes and their supervisor, over a real Unix socket."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.backend.channel import ChannelBackend
from modelyard.backend.local import LocalBackend
from modelyard.backend.records import RUNNING, SCALAR, MetricBatch
from modelyard.errors import PermissionDeniedError, ValidationError
from modelyard.runner.channel import ChannelServer
from modelyard.runner.run_scope import RunScope


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[tuple[LocalBackend, ChannelBackend]]:
    """A client bound to run "r" of experiment "e", which was given datastore "raw"."""
    backend = LocalBackend(
        "ws", f"sqlite:///{tmp_path / 'c.db'}", (tmp_path / "files").as_posix(), base_dir=tmp_path
    )
    backend.create_run("r", "e", run_type="script", status=RUNNING)
    socket_path = str(Path(tempfile.mkdtemp(prefix="my-test-")) / "s")
    workdir = tmp_path / "wd"
    workdir.mkdir()
    server = ChannelServer(backend, socket_path, RunScope(backend, "r", "e", workdir, {"raw"}))
    server.start()
    yield backend, ChannelBackend(socket_path, "ws", str(workdir))  # type: ignore[abstract]
    server.stop()


def test_calls_records_streams_and_errors_cross_the_socket(
    channel: tuple[LocalBackend, ChannelBackend],
) -> None:
    backend, client = channel
    assert client.get_run("r").status == RUNNING
    client.log_metrics("r", [MetricBatch("loss", SCALAR, "b1", [0.5, 0.25], [0, 1], [0.0, 0.0])])
    assert backend.get_metric_series("r")[0].values == [0.5, 0.25]
    client.upload_run_file("r", "outputs/a.txt", io.BytesIO(b"bytes"))
    with client.open_run_file("r", "outputs/a.txt") as f:
        assert f.read() == b"bytes"
    with pytest.raises(PermissionDeniedError, match="'missing'"):
        client.get_run("missing")
    with pytest.raises(ValidationError) as info:
        client.upload_run_file("r", "../escape", io.BytesIO(b""))
    assert info.value.field == "name"


def test_datastore_credentials_never_reach_the_script(
    channel: tuple[LocalBackend, ChannelBackend],
) -> None:
    backend, client = channel
    backend.register_datastore("raw", "memory://raw", {"key": "AKIA-secret", "secret": "s3cr3t"})
    assert backend.get_datastore("raw").storage_options["secret"] == "s3cr3t"
    assert client.get_datastore("raw").storage_options == {}
    assert all(record.storage_options == {} for record in client.list_datastores())
