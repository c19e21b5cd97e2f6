"""The backend contract (backend/base.py), run against every backend.

:class:`BackendContract` holds the tests; each backend is a subclass that provides the
``backend`` fixture, all of them real: a SQLite file with files in a folder, a SQLite file
with files on fsspec's in-memory filesystem (a filesystem without renames, as object stores
are), a real PostgreSQL (tests/postgres.py) with files in a folder, and PostgreSQL with files
on a real S3 endpoint (moto's server, tests/s3.py). The HTTP backend joins
as another subclass when the server exists.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from modelyard.backend.base import Backend
from modelyard.backend.local import LocalBackend
from modelyard.backend.records import COMPLETED, FAILED, QUEUED, RUNNING, SCALAR, MetricBatch
from modelyard.errors import ConflictError, NotFoundError, ValidationError


def _batch(name: str, values: list[float], batch_id: str | None = None) -> MetricBatch:
    return MetricBatch(
        name=name,
        kind=SCALAR,
        batch_id=batch_id or uuid.uuid4().hex,
        values=values,
        steps=list(range(len(values))),
        times=[0.0] * len(values),
    )


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
        first = backend.register_datastore("one", "memory://one", {})
        assert first.is_default  # the first datastore is the default
        backend.register_datastore("two", "relative/folder", {"anon": True})
        assert backend.register_datastore("two", "relative/folder", {"anon": True}).name == "two"
        with pytest.raises(ConflictError, match="overwrite=True"):
            backend.register_datastore("two", "memory://elsewhere", {})
        backend.register_datastore("two", "memory://elsewhere", {}, overwrite=True)
        backend.set_default_datastore("two")
        assert backend.get_datastore().name == "two"
        assert [(d.name, d.is_default) for d in backend.list_datastores()] == [
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
