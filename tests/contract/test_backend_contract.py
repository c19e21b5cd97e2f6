"""The backend contract (backend/base.py), run against every backend.

:class:`BackendContract` holds the tests; each backend is a subclass that provides the
``backend`` fixture, all of them real: a SQLite file with files in a folder, a SQLite file
with files on fsspec's in-memory filesystem (no local folder, and no append: its live logs
are chunks, as on object stores), a real PostgreSQL (tests/postgres.py) with files in a
folder, PostgreSQL with files on a real S3 endpoint (moto's server, tests/s3.py), and the
script-side channel (a ChannelBackend over a real socket to a ChannelServer serving a SQLite
file and a folder, with a scope that allows every call: the suite checks the transport, and
tests/runner/test_run_scope.py the scope), and the HTTP backend (a RemoteBackend of a real
modelyard server process, tests/server_process.py: one on SQLite and folders, one on PostgreSQL and
S3; as the server's admin, who may make every call: tests/server/test_http_authz.py checks
who else may).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from modelyard.backend.base import Backend, every_item, page_key
from modelyard.backend.local import LocalBackend
from modelyard.backend.records import (
    CANCEL_REQUESTED,
    CANCELED,
    COMPLETED,
    FAILED,
    NOT_RESPONDING,
    PREPARING,
    PROVISIONING,
    QUEUED,
    RUNNING,
    SCALAR,
    STARTING,
    MetricBatch,
    RunRecord,
)
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.backend.snapshot_manifest import ManifestEntry, encode_manifest
from modelyard.errors import (
    ComputeTargetException,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from modelyard.runner.run_scope import RunScope
from tests.helpers import UnscopedForTransportTests, channel_to, wait_for
from tests.s3 import S3Server
from tests.server_process import ServerProcess

# What ComputeTarget.create stores for AmlCompute.provisioning_configuration(...).
GPU_CLUSTER = {"vm_size": "STANDARD_NC6", "min_nodes": 0, "max_nodes": 4, "provider": "local"}

# Leases that run out at once (the tests poll for their end) and leases that never do.
SHORT_LEASE_S = 0.05
LONG_LEASE_S = 3600.0
EXPIRY_REASON = (
    r"the run's lease held by {} expired at \d{{4}}-\d\d-\d\dT[\d:.]+Z: "
    "its supervisor or node stopped answering"
)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _batch(name: str, values: list[float], batch_id: str | None = None) -> MetricBatch:
    return MetricBatch(
        name=name,
        kind=SCALAR,
        batch_id=batch_id or uuid.uuid4().hex,
        values=values,
        steps=list(range(len(values))),
        times=[0.0] * len(values),
    )


def _in_pages(
    list_page: Callable[[int, str | None], list[Any]],
    size: int,
    between: Callable[[], None] = lambda: None,
) -> list[Any]:
    """Every item of a list call read ``size`` at a time, ``between`` called after the first
    page; the pages are checked to be full until the last."""
    items: list[Any] = []
    after: str | None = None
    while True:
        page = list_page(size, after)
        assert len(page) <= size
        items.extend(page)
        if len(page) < size:
            return items
        if after is None:
            between()
        after = page_key(page[-1])


class BackendContract:
    """The tests every backend passes; a subclass gives the ``backend`` fixture."""

    def test_experiments_are_created_once(self, backend: Backend) -> None:
        first = backend.ensure_experiment("e")
        assert backend.ensure_experiment("e") == first
        assert [e.name for e in backend.list_experiments()] == ["e"]
        with pytest.raises(ValidationError):
            backend.ensure_experiment("bad name")

    def test_create_run_is_idempotent_on_its_id(self, backend: Backend) -> None:
        run = backend.create_run("r1", "e", run_type="script", status=QUEUED, tags={"a": "1"})
        again = backend.create_run("r1", "e", run_type="script", status=QUEUED, tags={"a": "1"})
        assert again == run and run.number == 1
        assert backend.create_run("r2", "e", run_type="script", status=QUEUED).number == 2
        with pytest.raises(ConflictError):
            backend.create_run("r1", "other", run_type="script", status=QUEUED)
        with pytest.raises(NotFoundError):
            backend.create_run("r3", "e", run_type="x", status=QUEUED, parent_id="missing")

    def test_status_moves_forward_and_final_states_stay(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="script", status=QUEUED)
        running = backend.update_run_status("r", RUNNING)
        assert running.started_at is not None and running.ended_at is None
        done = backend.update_run_status("r", COMPLETED)
        assert done.ended_at is not None
        assert backend.update_run_status("r", COMPLETED) == done  # a retry is a no-op
        with pytest.raises(ConflictError):
            backend.update_run_status("r", FAILED)
        with pytest.raises(ValidationError):
            backend.update_run_status("r", "Exploded")
        with pytest.raises(NotFoundError, match="'nope'"):
            backend.update_run_status("nope", RUNNING)

    def test_a_runs_status_history_keeps_each_change_in_order(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="script", status=QUEUED)
        backend.claim_run("r", "agent-1", 30.0)
        backend.claim_run("r", "agent-1", 30.0)  # a renewal: no change
        backend.update_run_status("r", RUNNING)
        backend.update_run_status("r", RUNNING)  # a retry: no change
        backend.update_run_status("r", COMPLETED)
        backend.update_run_status("r", COMPLETED)

        history = backend.get_run_status_history("r")

        assert [change.status for change in history] == [QUEUED, PREPARING, RUNNING, COMPLETED]
        times = [change.at for change in history]
        assert times == sorted(times)
        record = backend.get_run("r")
        assert times[0] == record.created_at and times[-1] == record.ended_at
        with pytest.raises(NotFoundError, match="'nope'"):
            backend.get_run_status_history("nope")

    def test_failed_runs_keep_their_error(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="script", status=RUNNING)
        backend.update_run_status("r", FAILED, error={"message": "exit code 3", "exit_code": 3})
        assert backend.get_run("r").error == {"message": "exit code 3", "exit_code": 3}

    def test_a_retried_metric_batch_is_stored_once(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="script", status=RUNNING)
        batch = _batch("loss", [0.5, 0.4], batch_id="b1")
        backend.log_metrics("r", [batch])
        backend.log_metrics("r", [batch])
        backend.log_metrics("r", [_batch("loss", [0.3])])
        (series,) = backend.get_metric_series("r")
        assert series.values == [0.5, 0.4, 0.3]
        (info,) = backend.list_metrics("r")
        assert (info.count, info.last_value) == (3, 0.3)

    def test_metric_points_keep_the_process_that_logged_them(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="script", status=RUNNING)
        first, second = _batch("loss", [0.9, 0.8]), _batch("loss", [0.7])
        first.process, second.process = 0, 1
        backend.log_metrics("r", [first])
        backend.log_metrics("r", [second])
        backend.log_metrics("r", [_batch("plain", [1.0])])
        loss, plain = backend.get_metric_series("r")
        assert (loss.values, loss.processes) == ([0.9, 0.8, 0.7], [0, 0, 1])
        assert plain.processes is None  # no point came from a process of a distributed run
        bad = _batch("loss", [0.1])
        bad.process = -1
        with pytest.raises(ValidationError, match="process"):
            backend.log_metrics("r", [bad])

    def test_metric_kinds_cannot_mix(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="script", status=RUNNING)
        backend.log_metrics("r", [_batch("m", [1.0])])
        wrong = _batch("m", [1.0])
        wrong.kind = "list"
        with pytest.raises(ValidationError, match="logged as scalar"):
            backend.log_metrics("r", [wrong])
        with pytest.raises(NotFoundError):
            backend.log_metrics("missing", [_batch("m", [1.0])])

    def test_list_runs_filters(self, backend: Backend) -> None:
        backend.create_run(
            "a", "e", run_type="s", status=QUEUED, tags={"t": "1"}, properties={"p": "x"}
        )
        backend.create_run("b", "e", run_type="s", status=QUEUED, tags={"t": "2"})
        backend.create_run("c", "e", run_type="s", status=QUEUED, parent_id="a")
        assert [r.id for r in backend.list_runs("e")] == ["b", "a"]
        assert [r.id for r in backend.list_runs("e", tags={"t": "1"})] == ["a"]
        assert [r.id for r in backend.list_runs("e", tags={"t": None})] == ["b", "a"]
        assert [r.id for r in backend.list_runs("e", properties={"p": "x"})] == ["a"]
        assert [r.id for r in backend.list_runs("e", parent_id="a")] == ["c"]
        assert {r.id for r in backend.list_runs("e", include_children=True)} == {"a", "b", "c"}

    def test_run_files_stream_up_and_down(self, backend: Backend, tmp_path: Path) -> None:
        backend.create_run("r", "e", run_type="s", status=RUNNING)
        backend.upload_run_file("r", "outputs/a.bin", io.BytesIO(b"abc"))
        local = tmp_path / "local.txt"
        local.write_bytes(b"from disk")
        backend.upload_run_file("r", "outputs/b.txt", local)
        backend.upload_run_file("r", "outputs/b.txt", io.BytesIO(b"replaced"))
        assert [(f.path, f.size) for f in backend.list_run_files("r")] == [
            ("outputs/a.bin", 3),
            ("outputs/b.txt", 8),
        ]
        assert [f.path for f in backend.list_run_files("r", "outputs/a.bin")] == ["outputs/a.bin"]
        with backend.open_run_file("r", "outputs/b.txt") as f:
            assert f.read() == b"replaced"
        with pytest.raises(NotFoundError):
            backend.open_run_file("r", "outputs/none")
        with pytest.raises(ValidationError):
            backend.upload_run_file("r", "../x", io.BytesIO(b""))

    def test_datastores(self, backend: Backend) -> None:
        # A server's workspace has its default datastore from the start; a bare backend none.
        before = [d.name for d in backend.list_datastores()]
        first = backend.register_datastore("one", "memory://one", {})
        assert first.is_default == (not before)  # the first datastore is the default
        backend.register_datastore("two", "relative/folder", {"anon": True})
        assert backend.register_datastore("two", "relative/folder", {"anon": True}).name == "two"
        with pytest.raises(ConflictError, match="overwrite=True"):
            backend.register_datastore("two", "memory://elsewhere", {})
        backend.register_datastore("two", "memory://elsewhere", {}, overwrite=True)
        backend.set_default_datastore("two")
        assert backend.get_datastore().name == "two"
        assert [
            (d.name, d.is_default) for d in backend.list_datastores() if d.name not in before
        ] == [
            ("one", False),
            ("two", True),
        ]
        with pytest.raises(NotFoundError):
            backend.get_datastore("three")
        with pytest.raises(NotFoundError):
            backend.set_default_datastore("three")

    def test_model_versions_and_retried_creation(self, backend: Backend) -> None:
        backend.upload_model_file("m", "u1", "model/w.bin", io.BytesIO(b"w1"))
        first = backend.create_model("m", "u1", "model", tags={"a": "1"})
        assert backend.create_model("m", "u1", "model", tags={"a": "1"}) == first  # retry
        backend.upload_model_file("m", "u2", "model/w.bin", io.BytesIO(b"w2"))
        second = backend.create_model("m", "u2", "model")
        assert (first.version, second.version) == (1, 2)
        assert [f.path for f in backend.list_model_files("m", 2)] == ["model/w.bin"]
        with backend.open_model_file("m", 2, "model/w.bin") as f:
            assert f.read() == b"w2"
        assert backend.get_model("m").version == 2
        backend.delete_model("m", 2)
        backend.upload_model_file("m", "u3", "model/w.bin", io.BytesIO(b"w3"))
        assert backend.create_model("m", "u3", "model").version == 3  # never reused
        updated = backend.update_model_tags("m", 1, add={"b": "2"}, remove=["a"])
        assert updated.tags == {"b": "2"}
        assert [m.id for m in backend.list_models(latest=True)] == ["m:3"]

    def test_urls_of_run_files_and_models_name_them(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="s", status=RUNNING)
        backend.upload_run_file("r", "user_logs/std_log.txt", io.BytesIO(b"log"))
        backend.upload_model_file("m", "u1", "model/w.bin", io.BytesIO(b"w1"))
        model = backend.create_model("m", "u1", "model")
        file_url = backend.run_file_url("r", "user_logs/std_log.txt")
        model_url = backend.model_url(model)
        assert "r" in file_url and file_url.endswith("user_logs/std_log.txt")
        assert "m" in model_url
        if file_url.startswith("/"):  # a folder of this machine: the paths hold the files
            assert Path(file_url).read_bytes() == b"log"
            assert (Path(model_url) / "model" / "w.bin").read_bytes() == b"w1"
        else:
            assert "://" in file_url and "://" in model_url

    def test_models_from_run_files(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="s", status=RUNNING)
        backend.upload_run_file("r", "outputs/model/a.txt", io.BytesIO(b"a"))
        backend.upload_run_file("r", "outputs/model/sub/b.txt", io.BytesIO(b"b"))
        root = backend.stage_model_from_run("m", "u", "r", "outputs/model")
        record = backend.create_model("m", "u", root, run_id="r")
        assert record.run_id == "r" and record.root_name == "model"
        assert [f.path for f in backend.list_model_files("m", 1)] == [
            "model/a.txt",
            "model/sub/b.txt",
        ]

    def test_environment_versions_follow_their_content(self, backend: Backend) -> None:
        first = backend.register_environment(
            "env", {"pip_packages": ["six"], "python_version": None}
        )
        assert (first.name, first.version) == ("env", 1)
        # Unchanged content (or a retried call) makes no new version; the key order is no change.
        reordered = {"python_version": None, "pip_packages": ["six"]}
        assert backend.register_environment("env", reordered) == first
        assert backend.register_environment("env", first.definition) == first
        second = backend.register_environment("env", {"pip_packages": ["six", "attrs"]})
        assert second.version == 2 and second.content_hash != first.content_hash
        assert backend.register_environment("env", first.definition).version == 3  # changed back
        assert backend.get_environment("env").version == 3
        assert backend.get_environment("env", 2).definition == {"pip_packages": ["six", "attrs"]}
        backend.register_environment("another", {})
        assert [(e.name, e.version) for e in backend.list_environments()] == [
            ("another", 1),
            ("env", 3),
            ("env", 2),
            ("env", 1),
        ]
        assert [e.version for e in backend.list_environments("env")] == [3, 2, 1]
        with pytest.raises(NotFoundError, match="'env' \\(version 9\\)"):
            backend.get_environment("env", 9)
        with pytest.raises(NotFoundError):
            backend.get_environment("missing")
        with pytest.raises(ValidationError):
            backend.register_environment("bad name", {})

    # -- idempotent deletes --------------------------------------------------------------

    def test_a_retried_model_delete_is_not_an_error(self, backend: Backend) -> None:
        for upload in ("u1", "u2"):
            backend.upload_model_file("m", upload, "model/w.bin", io.BytesIO(b"w"))
            backend.create_model("m", upload, "model")
        backend.delete_model("m", 1)
        backend.delete_model("m", 1)  # the retry of a call whose reply was lost
        backend.delete_model("m", 7)  # a version that never was: nothing to do either
        backend.delete_model("never", 1)
        with pytest.raises(NotFoundError):
            backend.get_model("m", 1)
        with pytest.raises(NotFoundError):
            backend.list_model_files("m", 1)
        assert [m.id for m in backend.list_models()] == ["m:2"]
        assert [f.path for f in backend.list_model_files("m", 2)] == ["model/w.bin"]

    # -- pages -----------------------------------------------------------------------------

    def test_runs_read_in_pages_are_each_there_once_in_order(self, backend: Backend) -> None:
        for i in range(25):
            backend.create_run(f"r{i:02}", "e", run_type="s", status=QUEUED, tags={"t": "x"})
        backend.create_run("child", "e", run_type="s", status=QUEUED, parent_id="r03")
        everything = backend.list_runs("e")
        assert len(everything) == 25

        def add_one() -> None:
            backend.create_run("late", "e", run_type="s", status=QUEUED, tags={"t": "x"})

        paged = _in_pages(
            lambda limit, after: backend.list_runs("e", tags={"t": "x"}, limit=limit, after=after),
            10,
            add_one,
        )
        # Newest first: the run added between pages sorts before the cursor, so it is not
        # read; none is read twice or left out.
        assert [r.id for r in paged] == [r.id for r in everything]
        assert backend.list_runs("e", limit=1)[0].id == "late"
        with_children = backend.list_runs("e", include_children=True)
        assert [
            r.id
            for r in _in_pages(
                lambda limit, after: backend.list_runs(
                    "e", include_children=True, limit=limit, after=after
                ),
                4,
            )
        ] == [r.id for r in with_children]
        assert backend.list_runs("e", parent_id="r03", limit=5) == [backend.get_run("child")]

    # -- datastore files -------------------------------------------------------------------

    @pytest.fixture
    def datastore_location(self) -> tuple[str, dict[str, Any]]:
        """Where the datastore-file tests keep their datastore, as (URL, storage options): a
        folder of the workspace (a URL without a scheme); a backend on S3 gives a bucket."""
        return "datastores/contract", {}

    def test_datastore_files_go_up_and_down_through_the_backend(
        self, backend: Backend, datastore_location: tuple[str, dict[str, Any]], tmp_path: Path
    ) -> None:
        backend.register_datastore("d", *datastore_location)
        local = tmp_path / "b.txt"
        local.write_bytes(b"from disk")

        assert backend.upload_datastore_file("d", "mnist/a.bin", io.BytesIO(b"abc")) is True
        assert backend.upload_datastore_file("d", "mnist/sub/b.txt", local) is True
        # Without overwrite an existing file is left as it is, from a stream or a path.
        assert backend.upload_datastore_file("d", "mnist/a.bin", io.BytesIO(b"other")) is False
        assert backend.upload_datastore_file("d", "mnist/sub/b.txt", tmp_path / "b.txt") is False
        with backend.open_datastore_file("d", "mnist/a.bin") as stream:
            assert stream.read() == b"abc"
        replaced = io.BytesIO(b"replaced")
        assert backend.upload_datastore_file("d", "mnist/a.bin", replaced, overwrite=True)

        everything = [("mnist/a.bin", 8), ("mnist/sub/b.txt", 9)]
        assert [(f.path, f.size) for f in backend.list_datastore_files("d")] == everything
        assert [f.path for f in backend.list_datastore_files("d", "mnist/sub")] == [
            "mnist/sub/b.txt"
        ]
        assert [f.path for f in backend.list_datastore_files("d", "mnist/a.bin")] == ["mnist/a.bin"]
        assert backend.list_datastore_files("d", "nothing") == []
        paged = _in_pages(
            lambda limit, after: backend.list_datastore_files("d", limit=limit, after=after), 1
        )
        assert [(f.path, f.size) for f in paged] == everything
        with backend.open_datastore_file("d", "mnist/a.bin") as stream:
            assert stream.read() == b"replaced"

    def test_datastore_file_paths_stay_inside_the_datastore(
        self, backend: Backend, datastore_location: tuple[str, dict[str, Any]]
    ) -> None:
        backend.register_datastore("d", *datastore_location)
        for bad in ["../x", "a/../../x", "/etc/passwd", "back\\slash", "nul\x00byte", ""]:
            with pytest.raises(ValidationError) as caught:
                backend.upload_datastore_file("d", bad, io.BytesIO(b"x"))
            assert caught.value.field == "relpath"
            with pytest.raises(ValidationError) as caught:
                backend.open_datastore_file("d", bad)
            assert caught.value.field == "relpath"
            if bad:
                with pytest.raises(ValidationError) as caught:
                    backend.list_datastore_files("d", bad)
                assert caught.value.field == "prefix"
        assert backend.list_datastore_files("d") == []
        with pytest.raises(NotFoundError, match=r"'missing\.txt'"):
            backend.open_datastore_file("d", "missing.txt")
        with pytest.raises(NotFoundError, match="'nope'"):
            backend.list_datastore_files("nope")
        with pytest.raises(NotFoundError, match="'nope'"):
            backend.upload_datastore_file("nope", "a.txt", io.BytesIO(b"x"))
        with pytest.raises(NotFoundError, match="'nope'"):
            backend.open_datastore_file("nope", "a.txt")

    def test_datastore_records_carry_no_credentials(self, backend: Backend) -> None:
        key, secret = "AKIA-contract-7f3e", "contract-s3cr3t-91ab"
        options = {"key": key, "secret": secret, "client_kwargs": {"region_name": "eu-west-1"}}
        registered = backend.register_datastore("s", f"memory://s-{uuid.uuid4().hex}", options)

        records = [registered, backend.get_datastore("s"), *backend.list_datastores()]
        for record in records:
            shown = json.dumps(record.storage_options) + repr(record)
            assert key not in shown and secret not in shown and "eu-west-1" not in shown
            assert set(record.storage_options.values()) <= {"***"}  # the names at most
        # The backend still has them: registering the same again is no change.
        assert backend.register_datastore("s", registered.url, options).name == "s"

    @pytest.mark.parametrize(
        ("url", "options", "field"),
        [
            ("http://169.254.169.254/latest/meta-data", {}, "url"),
            ("https://example.com/data", {}, "url"),
            ("simplecache::s3://bucket/raw", {}, "url"),
            (
                "s3://bucket/raw",
                {"client_kwargs": {"endpoint_url": "http://169.254.169.254"}},
                "storage_options",
            ),
            ("s3://bucket/raw", {"endpoint_url": "http://[fd00:ec2::254]/"}, "storage_options"),
            ("s3://bucket/raw", {"endpoint_url": "http://0xa9fea9fe:80"}, "storage_options"),
            (
                "s3://bucket/raw",
                {"endpoint_url": "http://[::ffff:169.254.169.254]"},
                "storage_options",
            ),
            (
                "gs://bucket/raw",
                {"endpoint_url": "http://metadata.google.internal/"},
                "storage_options",
            ),
        ],
    )
    def test_datastores_that_would_reach_metadata_services_are_refused(
        self, backend: Backend, url: str, options: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            backend.register_datastore("evil", url, options)
        assert caught.value.field == field
        assert "evil" not in [d.name for d in backend.list_datastores()]

    def test_experiments_and_datastores_read_in_pages(self, backend: Backend) -> None:
        before = [d.name for d in backend.list_datastores()]  # a server's: its default one
        for i in range(25):
            backend.ensure_experiment(f"e{i:02}")
            backend.register_datastore(f"d{i:02}", f"data/{i}", {})
        experiments = _in_pages(
            lambda limit, after: backend.list_experiments(limit=limit, after=after),
            10,
            lambda: backend.ensure_experiment("e99"),  # sorts after the cursor: read once
        )
        assert [e.name for e in experiments] == [f"e{i:02}" for i in range(25)] + ["e99"]
        datastores = _in_pages(
            lambda limit, after: backend.list_datastores(limit=limit, after=after),
            10,
            lambda: backend.register_datastore("d00a", "data/a", {}),  # before it
        )
        assert [d.name for d in datastores] == sorted([f"d{i:02}" for i in range(25)] + before)
        assert datastores[0].is_default == (not before)

    def test_models_read_in_pages(self, backend: Backend) -> None:
        for i in range(25):
            name = f"m{i % 3}"
            backend.upload_model_file(name, f"u{i}", "w.bin", io.BytesIO(b"w"))
            backend.create_model(name, f"u{i}", "w.bin", tags={"even": str(i % 2 == 0)})
        everything = backend.list_models()
        assert len(everything) == 25

        def delete_one() -> None:
            # The last item of the first page goes: its cursor still leads on.
            backend.delete_model(everything[9].name, everything[9].version)

        paged = _in_pages(
            lambda limit, after: backend.list_models(limit=limit, after=after), 10, delete_one
        )
        assert [m.id for m in paged] == [m.id for m in everything]
        latest = backend.list_models(latest=True)
        assert sorted(m.name for m in latest) == ["m0", "m1", "m2"]
        assert (
            _in_pages(
                lambda limit, after: backend.list_models(latest=True, limit=limit, after=after), 2
            )
            == latest
        )
        # ``latest`` is the newest version among those the tags keep.
        newest_odd = backend.list_models("m0", tags={"even": "False"}, latest=True, limit=1)
        assert [m.id for m in newest_odd] == [
            next(m.id for m in everything if m.name == "m0" and m.tags["even"] == "False")
        ]

    def test_dataset_versions_follow_their_definition(self, backend: Backend) -> None:
        first_def = {"type": "file", "sources": [{"datastore": "d", "path": "a/*.gz"}]}
        first = backend.create_dataset("mnist", first_def, description="digits", tags={"k": "v"})
        assert (first.name, first.version, first.tags) == ("mnist", 1, {"k": "v"})
        # A retry, or the same definition again (keys in any order): the same version.
        same = {"sources": [{"path": "a/*.gz", "datastore": "d"}], "type": "file"}
        assert backend.create_dataset("mnist", same) == first
        assert backend.create_dataset("mnist", same, create_new_version=True) == first
        changed = {"type": "file", "sources": [{"datastore": "d", "path": "b"}]}
        with pytest.raises(ConflictError, match="create_new_version=True"):
            backend.create_dataset("mnist", changed)
        second = backend.create_dataset("mnist", changed, create_new_version=True)
        assert second.version == 2 and second.id != first.id
        assert backend.get_dataset("mnist") == second
        assert backend.get_dataset("mnist", 1) == first
        assert backend.get_dataset_by_id(first.id) == first
        assert backend.find_dataset("mnist", 3) is None
        with pytest.raises(NotFoundError, match="'mnist'"):
            backend.get_dataset("mnist", 3)
        with pytest.raises(NotFoundError):
            backend.get_dataset_by_id("no-such-id")
        with pytest.raises(ValidationError):
            backend.create_dataset("bad name", first_def)
        with pytest.raises(ValidationError, match="definition"):
            backend.create_dataset("x", {"not": float("nan")})
        backend.create_dataset("iris", {"type": "tabular", "sources": []})
        assert [(d.name, d.version) for d in backend.list_datasets()] == [
            ("iris", 1),
            ("mnist", 2),
            ("mnist", 1),
        ]
        assert [(d.name, d.version) for d in backend.list_datasets(latest=True)] == [
            ("iris", 1),
            ("mnist", 2),
        ]
        assert [d.version for d in backend.list_datasets("mnist")] == [2, 1]

    def test_racing_dataset_registrations_get_distinct_versions(self, backend: Backend) -> None:
        outcomes: list[Any] = []
        barrier = threading.Barrier(3)

        def register(definition: dict[str, Any]) -> None:
            barrier.wait()
            outcomes.append(backend.create_dataset("d", definition, create_new_version=True))

        # Three retries of one registration, then three of distinct definitions at once.
        same = [threading.Thread(target=register, args=({"i": 0},)) for _ in range(3)]
        distinct = [threading.Thread(target=register, args=({"i": i},)) for i in range(1, 4)]
        for group in (same, distinct):
            barrier.reset()
            outcomes.clear()
            for thread in group:
                thread.start()
            for thread in group:
                thread.join()
            assert len(outcomes) == 3
            if group is same:
                assert outcomes == [backend.get_dataset("d", 1)] * 3
        assert sorted(record.version for record in outcomes) == [2, 3, 4]
        assert [d.version for d in backend.list_datasets("d")] == [4, 3, 2, 1]

    def test_datasets_read_in_pages(self, backend: Backend) -> None:
        for i in range(13):
            backend.create_dataset(f"d{i % 3}", {"i": i}, create_new_version=True)
        everything = backend.list_datasets()
        paged = _in_pages(
            lambda limit, after: backend.list_datasets(limit=limit, after=after),
            5,
            lambda: backend.create_dataset("zz", {}),  # sorts after the cursor
        )
        assert [(d.name, d.version) for d in paged] == [(d.name, d.version) for d in everything] + [
            ("zz", 1)
        ]
        latest = every_item(
            lambda limit, after: backend.list_datasets(latest=True, limit=limit, after=after), 2
        )
        assert [(d.name, d.version) for d in latest] == [("d0", 5), ("d1", 4), ("d2", 4), ("zz", 1)]

    def test_environments_read_in_pages(self, backend: Backend) -> None:
        for i in range(25):
            backend.register_environment(f"env{i % 4}", {"i": i})
        everything = backend.list_environments()
        paged = _in_pages(
            lambda limit, after: backend.list_environments(limit=limit, after=after),
            10,
            lambda: backend.register_environment("zz", {}),  # sorts after the cursor
        )
        assert [(e.name, e.version) for e in paged] == [(e.name, e.version) for e in everything] + [
            ("zz", 1)
        ]
        assert [e.version for e in backend.list_environments("env1", limit=3)] == [6, 5, 4]

    def test_run_and_model_files_read_in_pages(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="s", status=RUNNING)
        for i in range(25):
            backend.upload_run_file("r", f"outputs/f{i:02}.txt", io.BytesIO(b"x" * i))
        paged = _in_pages(
            lambda limit, after: backend.list_run_files("r", "outputs", limit=limit, after=after),
            10,
            lambda: backend.upload_run_file("r", "outputs/g.txt", io.BytesIO(b"g")),
        )
        assert [(f.path, f.size) for f in paged] == [
            (f"outputs/f{i:02}.txt", i) for i in range(25)
        ] + [("outputs/g.txt", 1)]
        root = backend.stage_model_from_run("m", "u", "r", "outputs")
        backend.create_model("m", "u", root, run_id="r")
        model_files = _in_pages(
            lambda limit, after: backend.list_model_files("m", 1, limit=limit, after=after), 10
        )
        assert [f.path for f in model_files] == [f.path for f in backend.list_model_files("m", 1)]
        assert len(model_files) == 26

    def test_every_item_reads_all_pages(self, backend: Backend) -> None:
        for i in range(7):
            backend.ensure_experiment(f"e{i}")
        calls: list[str | None] = []

        def list_page(limit: int, after: str | None) -> list[Any]:
            calls.append(after)
            return backend.list_experiments(limit=limit, after=after)

        names = [e.name for e in every_item(list_page, page_size=3)]
        assert names == [f"e{i}" for i in range(7)]
        assert calls == [None, "e2", "e5"]

    def test_bad_page_arguments_are_refused(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="s", status=RUNNING)
        for call in (
            lambda: backend.list_runs("e", limit=0),
            lambda: backend.list_experiments(limit=-1),
            lambda: backend.list_run_files("r", limit=0),
            lambda: backend.get_metric_series("r", limit=0),
        ):
            with pytest.raises(ValidationError, match="limit"):
                call()
        for call in (
            lambda: backend.list_runs("e", after="not a cursor"),
            lambda: backend.list_models(after="1.5/m"),
            lambda: backend.list_environments(after="env/x"),
        ):
            with pytest.raises(ValidationError, match="after"):
                call()
        with pytest.raises(ValidationError, match="start"):
            backend.get_metric_series("r", start=-1)

    def test_metric_series_read_in_pages(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="s", status=RUNNING)
        values = [float(i) for i in range(25)]
        # Batches of 7 points: pages of 10 start and end inside stored batches.
        batches = []
        for first in range(0, 25, 7):
            batch = _batch("loss", values[first : first + 7])
            batch.steps = list(range(first, first + len(batch.values)))
            batch.process = first // 7 % 2
            batches.append(batch)
        backend.log_metrics("r", batches)
        backend.log_metrics("r", [_batch("acc", [0.5, 0.6])])
        whole = backend.get_metric_series("r", ["loss"])[0]
        pages = [backend.get_metric_series("r", ["loss"], start=s, limit=10) for s in (0, 10, 20)]
        assert [len(page[0].values) for page in pages] == [10, 10, 5]
        assert [v for page in pages for v in page[0].values] == values
        assert [s for page in pages for s in page[0].steps] == list(range(25))
        assert [p for page in pages for p in page[0].processes or []] == whole.processes
        assert backend.get_metric_series("r", ["loss"], start=25, limit=10) == []
        both = backend.get_metric_series("r", start=1, limit=3)
        assert [(s.name, s.values) for s in both] == [
            ("loss", [1.0, 2.0, 3.0]),
            ("acc", [0.6]),
        ]
        assert backend.get_metric_series("r", ["loss"], start=24)[0].values == [24.0]

    # -- run leases ------------------------------------------------------------------------

    def test_a_claim_gives_a_queued_run_to_one_worker(self, backend: Backend) -> None:
        queued = backend.create_run("r", "e", run_type="s", status=QUEUED)
        assert (queued.lease_holder, queued.lease_expires_at) == (None, None)

        claimed = backend.claim_run("r", "agent-1", 30.0)

        assert claimed is not None
        assert (claimed.id, claimed.status, claimed.lease_holder) == ("r", PREPARING, "agent-1")
        assert claimed.lease_expires_at is not None
        assert backend.get_run("r") == claimed
        assert backend.claim_run("r", "agent-2", 30.0) is None  # held: nobody else gets it
        assert backend.get_run("r").lease_holder == "agent-1"

    def test_the_holder_claiming_again_renews_its_lease(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="s", status=QUEUED)
        first = backend.claim_run("r", "agent-1", 30.0)
        again = backend.claim_run("r", "agent-1", LONG_LEASE_S)  # a retry, with a longer lease
        assert first is not None and first.lease_expires_at is not None
        assert again is not None and again.lease_expires_at is not None
        assert (again.status, again.lease_holder) == (PREPARING, "agent-1")
        assert again.lease_expires_at > first.lease_expires_at + LONG_LEASE_S - 60

    def test_only_queued_runs_can_be_claimed(self, backend: Backend) -> None:
        backend.create_run("running", "e", run_type="s", status=RUNNING)
        backend.create_run("done", "e", run_type="s", status=QUEUED)
        backend.update_run_status("done", COMPLETED)
        backend.create_run("canceled", "e", run_type="s", status=QUEUED)
        backend.update_run_status("canceled", CANCEL_REQUESTED)
        for run_id in ("running", "done", "canceled"):
            assert backend.claim_run(run_id, "agent-1", 30.0) is None
            assert backend.get_run(run_id).lease_holder is None
        with pytest.raises(NotFoundError, match="'missing'"):
            backend.claim_run("missing", "agent-1", 30.0)
        backend.create_run("q", "e", run_type="s", status=QUEUED)
        for worker, lease in (("bad worker", 30.0), ("agent-1", 0), ("agent-1", float("nan"))):
            with pytest.raises(ValidationError):
                backend.claim_run("q", worker, lease)
        assert backend.get_run("q").status == QUEUED

    def test_a_lease_that_ran_out_is_not_taken_over_but_ends_the_run(
        self, backend: Backend
    ) -> None:
        backend.create_run("r", "e", run_type="s", status=QUEUED)
        backend.claim_run("r", "agent-1", SHORT_LEASE_S)

        (failed,) = wait_for(backend.expire_leases)

        # Claimed runs are never handed to a second worker, expired or not: the run ends.
        assert backend.claim_run("r", "agent-2", 30.0) is None
        assert (failed.id, failed.status, failed.lease_holder) == ("r", FAILED, "agent-1")
        assert failed.error is not None
        assert re.fullmatch(EXPIRY_REASON.format("agent-1"), failed.error["message"])
        history = [change.status for change in backend.get_run_status_history("r")]
        assert history == [QUEUED, PREPARING, NOT_RESPONDING, FAILED]

    def test_renewing_extends_the_lease_and_tells_the_status(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="s", status=QUEUED)
        claimed = backend.claim_run("r", "agent-1", 30.0)
        assert claimed is not None and claimed.lease_expires_at is not None

        assert backend.renew_lease("r", "agent-1", LONG_LEASE_S) == PREPARING
        renewed = backend.get_run("r")
        assert renewed.lease_expires_at is not None
        assert renewed.lease_expires_at > claimed.lease_expires_at + LONG_LEASE_S - 60
        assert renewed.heartbeat_at is not None
        backend.update_run_status("r", CANCEL_REQUESTED)
        assert backend.renew_lease("r", "agent-1", 30.0) == CANCEL_REQUESTED  # stop, it says

    def test_renewing_a_run_held_by_another_worker_or_none_is_refused(
        self, backend: Backend
    ) -> None:
        backend.create_run("r", "e", run_type="s", status=QUEUED)
        backend.claim_run("r", "agent-1", LONG_LEASE_S)
        before = backend.get_run("r")
        with pytest.raises(ConflictError, match="held by worker 'agent-1'"):
            backend.renew_lease("r", "agent-2", LONG_LEASE_S)
        assert backend.get_run("r") == before
        backend.create_run("unclaimed", "e", run_type="s", status=RUNNING)
        with pytest.raises(ConflictError, match="claim"):
            backend.renew_lease("unclaimed", "agent-1", 30.0)
        with pytest.raises(NotFoundError):
            backend.renew_lease("missing", "agent-1", 30.0)

    def test_an_expired_active_run_is_failed_once_with_the_reason(self, backend: Backend) -> None:
        for run_id in ("expired", "alive", "unclaimed", "ended"):
            backend.create_run(run_id, "e", run_type="s", status=QUEUED)
        backend.claim_run("expired", "agent-1", SHORT_LEASE_S)
        backend.update_run_status("expired", RUNNING)
        backend.claim_run("alive", "agent-2", LONG_LEASE_S)
        backend.update_run_status("alive", RUNNING)
        backend.update_run_status("unclaimed", RUNNING)
        backend.claim_run("ended", "agent-1", SHORT_LEASE_S)
        backend.update_run_status("ended", COMPLETED)

        (failed,) = wait_for(backend.expire_leases)

        assert (failed.id, failed.status) == ("expired", FAILED)
        assert failed.ended_at is not None
        assert failed.error is not None
        assert re.fullmatch(EXPIRY_REASON.format("agent-1"), failed.error["message"])
        assert backend.get_run("expired") == failed
        assert backend.expire_leases() == []  # once
        statuses = {r: backend.get_run(r).status for r in ("alive", "unclaimed", "ended")}
        assert statuses == {"alive": RUNNING, "unclaimed": RUNNING, "ended": COMPLETED}
        # The supervisor that comes back learns the run ended without it; nothing changes.
        assert backend.renew_lease("expired", "agent-1", LONG_LEASE_S) == FAILED
        assert backend.get_run("expired") == failed

    def test_watchers_racing_fail_each_expired_run_once(self, backend: Backend) -> None:
        runs = [f"r{i}" for i in range(6)]
        for run_id in runs:
            backend.create_run(run_id, "e", run_type="s", status=QUEUED)
            backend.claim_run(run_id, "agent-1", SHORT_LEASE_S)
        failed_by: list[list[RunRecord]] = [[] for _ in range(4)]
        barrier = threading.Barrier(len(failed_by))

        def watch(mine: list[RunRecord]) -> None:
            def sweep() -> bool:
                mine.extend(backend.expire_leases())
                return all(backend.get_run(run_id).status == FAILED for run_id in runs)

            barrier.wait()
            wait_for(sweep)

        watchers = [threading.Thread(target=watch, args=(mine,)) for mine in failed_by]
        for watcher in watchers:
            watcher.start()
        for watcher in watchers:
            watcher.join()

        reported = sorted(run.id for mine in failed_by for run in mine)
        assert reported == runs  # every run failed, and reported by one watcher only
        assert all(run.status == FAILED for mine in failed_by for run in mine)

    def test_a_cluster_claims_a_run_into_provisioning_until_its_nodes_are_there(
        self, backend: Backend
    ) -> None:
        backend.create_run("r", "e", run_type="s", status=QUEUED)

        claimed = backend.claim_run("r", "cluster-gpu", 30.0, status=PROVISIONING)

        assert claimed is not None
        assert (claimed.status, claimed.lease_holder) == (PROVISIONING, "cluster-gpu")
        assert backend.claim_run("r", "agent-2", 30.0) is None  # still one claimer only
        assert backend.claim_run("r", "agent-2", 30.0, status=PROVISIONING) is None
        # The holder's retry is a renewal, and leaves the state as it is.
        again = backend.claim_run("r", "cluster-gpu", LONG_LEASE_S, status=PROVISIONING)
        assert again is not None and again.status == PROVISIONING
        assert backend.renew_lease("r", "cluster-gpu", LONG_LEASE_S) == PROVISIONING
        # The nodes are up: on through Preparing to the end.
        for status in (PREPARING, STARTING, RUNNING, COMPLETED):
            assert backend.update_run_status("r", status).status == status
        assert backend.claim_run("r", "cluster-gpu", 30.0, status=PROVISIONING) is None
        assert backend.get_run("r").status == COMPLETED

    def test_a_claim_goes_to_preparing_or_provisioning_only(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="s", status=QUEUED)
        for status in (RUNNING, QUEUED, COMPLETED, "Waiting"):
            with pytest.raises(ValidationError, match=f"'{status}'.*Provisioning") as caught:
                backend.claim_run("r", "agent-1", 30.0, status=status)
            assert caught.value.field == "status"
        assert backend.get_run("r").status == QUEUED  # nothing claimed
        assert backend.get_run("r").lease_holder is None

    def test_a_provisioning_run_whose_lease_expired_is_failed(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="s", status=QUEUED)
        backend.claim_run("r", "cluster-gpu", SHORT_LEASE_S, status=PROVISIONING)

        (failed,) = wait_for(backend.expire_leases)

        assert (failed.id, failed.status, failed.lease_holder) == ("r", FAILED, "cluster-gpu")
        assert failed.error is not None
        assert re.fullmatch(EXPIRY_REASON.format("cluster-gpu"), failed.error["message"])
        assert backend.renew_lease("r", "cluster-gpu", 30.0) == FAILED

    def test_a_run_waiting_for_nodes_can_be_canceled(self, backend: Backend) -> None:
        backend.create_run("r", "e", run_type="s", status=QUEUED)
        backend.claim_run("r", "cluster-gpu", LONG_LEASE_S, status=PROVISIONING)

        backend.update_run_status("r", CANCEL_REQUESTED)

        # The holder learns of it with its heartbeat, and its next step does not hide it.
        assert backend.renew_lease("r", "cluster-gpu", LONG_LEASE_S) == CANCEL_REQUESTED
        assert backend.update_run_status("r", PREPARING).status == CANCEL_REQUESTED
        canceled = backend.update_run_status("r", CANCELED)
        assert canceled.status == CANCELED and canceled.ended_at is not None
        assert backend.expire_leases() == []

    # -- compute targets -------------------------------------------------------------------

    def test_compute_targets_are_created_found_updated_and_deleted(self, backend: Backend) -> None:
        created = backend.create_compute("gpucluster", "AmlCompute", GPU_CLUSTER)
        assert (created.name, created.compute_type, created.provisioning) == (
            "gpucluster",
            "AmlCompute",
            GPU_CLUSTER,
        )
        assert (created.state, created.address, created.errors) == ("Creating", None, [])
        assert created.updated_at == created.created_at
        assert backend.get_compute("gpucluster") == created
        assert backend.find_compute("gpucluster") == created
        backend.create_compute("cpucluster", "AmlCompute", {"vm_size": "STANDARD_D2_V2"})
        assert [c.name for c in backend.list_computes()] == ["cpucluster", "gpucluster"]

        up = backend.update_compute("gpucluster", state="Succeeded", address="127.0.0.1:6379")
        assert (up.state, up.address, up.errors) == ("Succeeded", "127.0.0.1:6379", [])
        assert up.updated_at >= created.updated_at and up.created_at == created.created_at
        # Only the fields given change.
        problem = [{"code": "NodeLost", "message": "node 1 stopped answering"}]
        failed = backend.update_compute("gpucluster", errors=problem)
        assert (failed.state, failed.address, failed.errors) == (
            "Succeeded",
            "127.0.0.1:6379",
            problem,
        )
        assert backend.update_compute("gpucluster", errors=problem) == backend.get_compute(
            "gpucluster"
        )
        assert backend.update_compute("gpucluster", state="Deleting").errors == problem
        assert backend.get_compute("gpucluster").provisioning == GPU_CLUSTER

        backend.delete_compute("gpucluster")
        assert backend.find_compute("gpucluster") is None
        assert [c.name for c in backend.list_computes()] == ["cpucluster"]
        # The name is free again, for another configuration.
        again = backend.create_compute("gpucluster", "AmlCompute", {"vm_size": "STANDARD_NC12"})
        assert (again.state, again.provisioning) == ("Creating", {"vm_size": "STANDARD_NC12"})

    def test_creating_a_compute_target_again_is_a_retry_unless_it_differs(
        self, backend: Backend
    ) -> None:
        first = backend.create_compute("gpucluster", "AmlCompute", GPU_CLUSTER)
        backend.update_compute("gpucluster", state="Succeeded")
        # The same configuration (in any key order): the record as it is now, not a second.
        retried = backend.create_compute(
            "gpucluster", "AmlCompute", dict(reversed(GPU_CLUSTER.items()))
        )
        assert retried == backend.get_compute("gpucluster")
        assert (retried.state, retried.created_at) == ("Succeeded", first.created_at)
        for compute_type, provisioning in (
            ("AmlCompute", {**GPU_CLUSTER, "max_nodes": 8}),
            ("KubernetesCompute", GPU_CLUSTER),
        ):
            with pytest.raises(ConflictError, match=r"'gpucluster' exists.*delete it first"):
                backend.create_compute("gpucluster", compute_type, provisioning)
        assert backend.get_compute("gpucluster") == retried
        assert len(backend.list_computes()) == 1

    def test_of_racing_creations_of_one_name_one_makes_it(self, backend: Backend) -> None:
        outcomes: list[Any] = []
        barrier = threading.Barrier(6)

        def create(max_nodes: int) -> None:
            barrier.wait()
            try:
                outcomes.append(backend.create_compute("c", "AmlCompute", {"max_nodes": max_nodes}))
            except ConflictError as error:
                outcomes.append(error)

        # Three clients retrying one creation, three asking for another configuration.
        threads = [threading.Thread(target=create, args=(i % 2 + 1,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        (stored,) = backend.list_computes()
        made = [outcome for outcome in outcomes if not isinstance(outcome, ConflictError)]
        assert made == [stored] * 3  # the winner's three calls, each given the one record
        assert len(outcomes) == 6

    def test_compute_target_names_and_values_are_checked(self, backend: Backend) -> None:
        for name in ("local", "LOCAL"):
            with pytest.raises(ValidationError, match="this machine and always exists") as caught:
                backend.create_compute(name, "AmlCompute", GPU_CLUSTER)
            assert caught.value.field == "name"
        for name in ("bad name", "", "../up", "x" * 256):
            with pytest.raises(ValidationError, match="not a valid name") as caught:
                backend.create_compute(name, "AmlCompute", GPU_CLUSTER)
            assert caught.value.field == "name"
        with pytest.raises(ValidationError, match="compute_type"):
            backend.create_compute("c", "Aml Compute", GPU_CLUSTER)
        not_json: list[Any] = [
            {"vm_size": object()},
            {"max_nodes": float("nan")},
            {("a", "tuple"): "as a key"},
            ["a", "list"],
        ]
        for provisioning in not_json:
            with pytest.raises(ValidationError) as caught:
                backend.create_compute("c", "AmlCompute", provisioning)
            assert caught.value.field == "provisioning"
        with pytest.raises(ValidationError, match="over the limit of 65,536") as caught:
            backend.create_compute("c", "AmlCompute", {"notes": "x" * (64 << 10)})
        assert caught.value.field == "provisioning"
        assert backend.list_computes() == []  # nothing was written

        backend.create_compute("c", "AmlCompute", GPU_CLUSTER)
        bad_updates: list[tuple[str, dict[str, Any]]] = [
            ("state", {"state": ""}),
            ("state", {"state": "x" * 65}),
            ("state", {"state": "Fine\x1b[2J"}),
            ("address", {"address": 6379}),
            ("errors", {"errors": {"message": "not a list"}}),
            ("errors", {"errors": ["not a dict"]}),
            ("errors", {"errors": [{"when": object()}]}),
        ]
        for field, update in bad_updates:
            with pytest.raises(ValidationError) as caught:
                backend.update_compute("c", **update)
            assert caught.value.field == field
        assert backend.get_compute("c").state == "Creating"

    def test_a_missing_compute_target_is_a_compute_target_exception(self, backend: Backend) -> None:
        for call in (
            lambda: backend.get_compute("gpucluster"),
            lambda: backend.update_compute("gpucluster", state="Succeeded"),
        ):
            # v1 notebooks catch ComputeTargetException; it is a NotFoundError too.
            with pytest.raises(
                ComputeTargetException,
                match=rf"'gpucluster'.*'{backend.get_workspace().name}'.*create",
            ) as caught:
                call()
            assert isinstance(caught.value, NotFoundError)
        assert backend.find_compute("gpucluster") is None
        assert backend.find_compute("local") is None  # this machine has no record
        assert backend.list_computes() == []

    def test_a_compute_targets_node_counts_are_kept_as_they_change(self, backend: Backend) -> None:
        backend.create_compute("gpucluster", "AmlCompute", GPU_CLUSTER)
        assert backend.get_compute_node_history("gpucluster") == []
        backend.update_compute("gpucluster", nodes={"current": 1, "idle": 1, "target": 2})
        backend.update_compute("gpucluster", nodes={"current": 1, "idle": 1, "target": 2})
        backend.update_compute("gpucluster", state="Succeeded")  # no counts: no change
        backend.update_compute("gpucluster", nodes={"current": 2, "idle": 0, "target": 2})

        history = backend.get_compute_node_history("gpucluster")

        assert [change.nodes["current"] for change in history] == [1, 2]
        assert history[0].at <= history[1].at
        # From a time on: the counts then (the change before it), and the changes since.
        since = backend.get_compute_node_history("gpucluster", since=history[1].at)
        assert since == history
        later = backend.get_compute_node_history("gpucluster", since=history[1].at + 1)
        assert later == history[1:]
        with pytest.raises(ComputeTargetException):
            backend.get_compute_node_history("never-was")
        backend.delete_compute("gpucluster")
        backend.create_compute("gpucluster", "AmlCompute", GPU_CLUSTER)
        assert backend.get_compute_node_history("gpucluster") == []  # went with it

    def test_deleting_a_compute_target_twice_is_not_an_error(self, backend: Backend) -> None:
        backend.create_compute("gpucluster", "AmlCompute", GPU_CLUSTER)
        backend.create_compute("other", "AmlCompute", GPU_CLUSTER)
        backend.delete_compute("gpucluster")
        backend.delete_compute("gpucluster")  # the retry of a call whose reply was lost
        backend.delete_compute("never-was")
        assert [c.name for c in backend.list_computes()] == ["other"]

    def test_compute_targets_read_in_pages(self, backend: Backend) -> None:
        for i in range(25):
            backend.create_compute(f"c{i:02}", "AmlCompute", {"max_nodes": i})
        paged = _in_pages(
            lambda limit, after: backend.list_computes(limit=limit, after=after),
            10,
            lambda: backend.delete_compute("c09"),  # the cursor's own item: it still leads on
        )
        assert [c.name for c in paged] == [f"c{i:02}" for i in range(25)]
        assert len(backend.list_computes()) == 24
        assert [c.provisioning for c in backend.list_computes(limit=2, after="c20")] == [
            {"max_nodes": 21},
            {"max_nodes": 22},
        ]
        with pytest.raises(ValidationError, match="limit"):
            backend.list_computes(limit=0)

    def test_a_run_s_script_may_not_create_change_or_read_compute_targets(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        backend.create_compute(
            "gpucluster", "AmlCompute", {**GPU_CLUSTER, "admin_user_password": "pw"}
        )
        backend.create_run("mine", "e", run_type="s", status=RUNNING)
        backend.create_run("queued", "e", run_type="s", status=QUEUED)
        workdir = tmp_path / "script-workdir"
        workdir.mkdir()
        scope = RunScope(backend, "mine", "e", workdir, set())
        before = backend.get_compute("gpucluster")

        with channel_to(backend, scope) as script:
            for call in (
                lambda: script.create_compute("mine", "AmlCompute", GPU_CLUSTER),
                lambda: script.update_compute("gpucluster", state="Failed"),
                lambda: script.delete_compute("gpucluster"),
                # Reads too: a provisioning configuration keeps every v1 setting it was
                # given, credentials among them.
                lambda: script.get_compute("gpucluster"),
                lambda: script.find_compute("gpucluster"),
                lambda: script.list_computes(),
                lambda: script.claim_run("queued", "script", 30.0, status=PROVISIONING),
                lambda: script.claim_run("queued", "script", 30.0),
            ):
                with pytest.raises(PermissionDeniedError, match="its own run 'mine' only"):
                    call()

        # Nothing of it happened.
        assert backend.get_compute("gpucluster") == before
        assert [c.name for c in backend.list_computes()] == ["gpucluster"]
        assert (backend.get_run("queued").status, backend.get_run("queued").lease_holder) == (
            QUEUED,
            None,
        )

    # -- snapshots: content-addressed blobs and manifests ----------------------------------

    def test_snapshot_blobs_are_listed_missing_until_uploaded(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        a, b = _digest(b"file a\n"), _digest(b"file b\n")
        assert backend.missing_snapshot_blobs([]) == []
        assert backend.missing_snapshot_blobs([a, b, a]) == [a, b]  # in order, each once
        backend.upload_snapshot_blob(a, io.BytesIO(b"file a\n"))
        assert backend.missing_snapshot_blobs([b, a]) == [b]
        local = tmp_path / "b.txt"
        local.write_bytes(b"file b\n")
        backend.upload_snapshot_blob(b, local)  # a path works as well as a stream
        assert backend.missing_snapshot_blobs([a, b]) == []
        backend.upload_snapshot_blob(a, io.BytesIO(b"file a\n"))  # a retry is a no-op
        with backend.open_snapshot_blob(a) as f:
            assert f.read() == b"file a\n"

    def test_a_blob_that_does_not_hash_to_its_digest_is_refused(self, backend: Backend) -> None:
        claimed = _digest(b"the real bytes")
        with pytest.raises(ValidationError, match=claimed) as caught:
            backend.upload_snapshot_blob(claimed, io.BytesIO(b"other bytes"))
        assert caught.value.field == "source"
        assert backend.missing_snapshot_blobs([claimed]) == [claimed]  # nothing stored
        with pytest.raises(NotFoundError):
            backend.open_snapshot_blob(claimed)
        # Big enough to go up in parts on an object store: still all or nothing.
        big = b"x" * (12 << 20)
        claimed = _digest(big[:-1] + b"y")
        with pytest.raises(ValidationError):
            backend.upload_snapshot_blob(claimed, io.BytesIO(big))
        assert backend.missing_snapshot_blobs([claimed]) == [claimed]

    def test_a_manifest_is_stored_only_with_all_its_blobs(self, backend: Backend) -> None:
        stored, missing = _digest(b"stored\n"), _digest(b"missing\n")
        backend.upload_snapshot_blob(stored, io.BytesIO(b"stored\n"))
        manifest = encode_manifest(
            [
                ManifestEntry("a.py", stored, 7, False),
                ManifestEntry("lib/b.py", missing, 8, True),
            ]
        )
        snapshot_id = _digest(manifest)
        with pytest.raises(ConflictError, match=f"{missing}.*'lib/b.py'"):
            backend.put_snapshot_manifest(manifest)
        with pytest.raises(NotFoundError):
            backend.get_snapshot_manifest(snapshot_id)

        backend.upload_snapshot_blob(missing, io.BytesIO(b"missing\n"))
        wrong_size = encode_manifest([ManifestEntry("a.py", stored, 70, False)])
        with pytest.raises(ValidationError, match=r"'a\.py' is listed with 70 bytes"):
            backend.put_snapshot_manifest(wrong_size)
        assert backend.put_snapshot_manifest(manifest) == snapshot_id
        assert backend.put_snapshot_manifest(manifest) == snapshot_id  # a retry: the same id
        assert backend.get_snapshot_manifest(snapshot_id) == manifest

    def test_snapshot_ids_and_manifests_are_checked(self, backend: Backend) -> None:
        good = _digest(b"x")
        bad_digests: list[Any] = ["../../etc/passwd", good.upper(), good[:-1], good + "0", "", 7]
        for bad in bad_digests:
            with pytest.raises(ValidationError):
                backend.missing_snapshot_blobs([good, bad])
            with pytest.raises(ValidationError):
                backend.upload_snapshot_blob(bad, io.BytesIO(b"x"))
            with pytest.raises(ValidationError):
                backend.get_snapshot_manifest(bad)
            with pytest.raises(ValidationError):
                backend.open_snapshot_blob(bad)
        with pytest.raises(NotFoundError):
            backend.get_snapshot_manifest("0" * 64)
        with pytest.raises(NotFoundError):
            backend.open_snapshot_blob("0" * 64)
        backend.upload_snapshot_blob(good, io.BytesIO(b"x"))
        entry = {"sha256": good, "size": 1, "executable": False}
        for not_a_manifest in (
            b"not json",
            b'{"files":{},"format":99}',
            json.dumps({"format": 1, "files": {"../out.txt": entry}}).encode(),
            json.dumps({"format": 1, "files": {"a.txt": entry}}).encode(),  # not canonical
        ):
            with pytest.raises(ValidationError) as caught:
                backend.put_snapshot_manifest(not_a_manifest)
            assert caught.value.field == "manifest"
            with pytest.raises(NotFoundError):
                backend.get_snapshot_manifest(_digest(not_a_manifest))


class TestSQLiteAndFolder(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        db = f"sqlite:///{tmp_path / 'contract.db'}"
        return LocalBackend("ws", db, (tmp_path / "files").as_uri(), base_dir=tmp_path)


class TestSQLiteAndMemoryFiles(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        root = f"memory://contract-{uuid.uuid4().hex}"
        yield LocalBackend("ws", f"sqlite:///{tmp_path / 'contract.db'}", root, base_dir=tmp_path)
        memory = fsspec.filesystem("memory")
        if memory.exists(root):
            memory.rm(root, recursive=True)


class TestPostgresAndFolder(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path, postgres_url: str) -> Backend:
        return LocalBackend("ws", postgres_url, (tmp_path / "files").as_uri(), base_dir=tmp_path)


class TestPostgresAndS3(BackendContract):
    """Metadata in PostgreSQL, files on a real S3 endpoint (moto's server, tests/s3.py)."""

    @pytest.fixture
    def backend(
        self, tmp_path: Path, postgres_url: str, s3_store: tuple[str, dict[str, Any]]
    ) -> Backend:
        url, options = s3_store
        return LocalBackend("ws", postgres_url, url, base_dir=tmp_path, storage_options=options)

    @pytest.fixture
    def datastore_location(self, s3_server: S3Server) -> tuple[str, dict[str, Any]]:
        return s3_server.new_bucket("datastore")


class TestChannelToSQLiteAndFolder(BackendContract):
    """The script's side of the channel: every call crosses a real Unix socket (files as
    streams, since the test's files lie outside the served working folder)."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        db = f"sqlite:///{tmp_path / 'contract.db'}"
        served = LocalBackend("ws", db, (tmp_path / "files").as_uri(), base_dir=tmp_path)
        workdir = tmp_path / "workdir"
        workdir.mkdir()
        with channel_to(served, UnscopedForTransportTests(served, workdir)) as client:
            yield client


class TestHTTPToSQLiteAndFolder(BackendContract):
    """Every call crosses HTTP to a real server process (uvicorn), on SQLite and folders."""

    @pytest.fixture
    def backend(self, http_server: ServerProcess) -> Iterator[Backend]:
        remote = RemoteBackend(
            http_server.url, http_server.new_workspace(), http_server.admin_token
        )
        yield remote
        remote.transport.close()


class TestHTTPToPostgresAndS3(BackendContract):
    """Every call crosses HTTP to a real server on PostgreSQL and S3, as a team runs it."""

    @pytest.fixture
    def backend(self, http_server_at_scale: ServerProcess) -> Iterator[Backend]:
        server = http_server_at_scale
        remote = RemoteBackend(server.url, server.new_workspace(), server.admin_token)
        yield remote
        remote.transport.close()
