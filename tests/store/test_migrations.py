"""Migrations run up and down, end at the schema the code queries, and HEAD_REVISION is true."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from modelyard.backend.local import LocalBackend
from modelyard.backend.records import COMPLETED, QUEUED, RUNNING, SCALAR, MetricBatch
from modelyard.errors import ConfigError
from modelyard.store import migrate
from modelyard.store.database import Database
from modelyard.store.secrets import SECRETS_FILE
from modelyard.store.tables import metadata


def _db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'm.db'}")


def test_head_revision_constant_matches_the_migrations() -> None:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == migrate.HEAD_REVISION


def test_upgrade_gives_the_schema_the_code_uses(tmp_path: Path) -> None:
    db = _db(tmp_path)
    migrate.upgrade(db)
    assert db.schema_revision() == migrate.HEAD_REVISION
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_down_to_base_and_up_again(tmp_path: Path) -> None:
    db = _db(tmp_path)
    migrate.upgrade(db)
    migrate.downgrade(db, "base")
    assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
    migrate.upgrade(db)
    assert "runs" in sa.inspect(db.engine).get_table_names()


def test_upgrade_twice_is_a_no_op(tmp_path: Path) -> None:
    db = _db(tmp_path)
    migrate.upgrade(db)
    migrate.upgrade(db)
    assert db.schema_revision() == migrate.HEAD_REVISION


def _old_workspace_database(folder: Path) -> Database:
    """A database at revision 0003, when datastore credentials were a column of it."""
    folder.mkdir()
    db = Database(f"sqlite:///{folder / 'modelyard.db'}")
    migrate.upgrade(db, "0003")
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO datastores (name, url, storage_options, created_at) "
                "VALUES ('raw', 'memory://raw', :options, 0), ('plain', 'memory://p', '{}', 0)"
            ),
            {"options": json.dumps({"key": "AKIA-old-key", "secret": "old-s3cr3t-value"})},
        )
    return db


def test_upgrade_moves_datastore_credentials_out_of_the_database(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    db = _old_workspace_database(folder)

    backend = LocalBackend("ws", db.url, (folder / "artifacts").as_uri(), base_dir=folder)

    assert backend.secrets is not None
    assert backend.secrets.get("raw") == {"key": "AKIA-old-key", "secret": "old-s3cr3t-value"}
    assert backend.secrets.get("plain") == {}
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("datastores")}
    assert "storage_options" not in columns
    # Not left behind in the free pages of the file or in the write-ahead log either.
    data = b"".join(p.read_bytes() for p in folder.glob("modelyard.db*"))
    assert b"old-s3cr3t-value" not in data
    secrets = folder / SECRETS_FILE
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert "old-s3cr3t-value" in secrets.read_text()


def test_downgrade_puts_the_credentials_back_for_the_older_version(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    db = _old_workspace_database(folder)
    migrate.upgrade(db, secrets_path=folder / SECRETS_FILE)

    migrate.downgrade(db, "0003", secrets_path=folder / SECRETS_FILE)

    with db.engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT name, storage_options FROM datastores")).all())
    assert json.loads(rows["raw"])["secret"] == "old-s3cr3t-value"
    assert json.loads(rows["plain"]) == {}


def test_upgrade_without_the_workspace_folder_keeps_credentials_it_cannot_move(
    tmp_path: Path,
) -> None:
    db = _old_workspace_database(tmp_path / "ws")

    with pytest.raises(ConfigError, match=r"\['raw'\].*workspace folder"):
        migrate.upgrade(db)
    assert db.schema_revision() == "0003"  # nothing dropped: the transaction rolled back


def _lease_columns(db: Database) -> set[str]:
    names = {c["name"] for c in sa.inspect(db.engine).get_columns("runs")}
    return names & {"lease_holder", "lease_expires_at"}


def test_runs_of_an_old_workspace_can_be_claimed_after_the_upgrade(
    database_url: str, tmp_path: Path
) -> None:
    db = Database(database_url)
    migrate.upgrade(db, "0004")
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO experiments (name, created_at) VALUES ('e', 0)"))
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, experiment_id, number, display_name, run_type, status, "
                "created_at) SELECT 'old', id, 1, 'old', 's', 'Queued', 0 FROM experiments"
            )
        )

    backend = LocalBackend("ws", database_url, (tmp_path / "files").as_uri(), base_dir=tmp_path)

    assert backend.get_run("old").lease_holder is None
    claimed = backend.claim_run("old", "agent-1", 30.0)
    assert claimed is not None and claimed.lease_holder == "agent-1"


def test_the_lease_columns_go_down_and_up_keeping_each_run_s_data(
    database_url: str, tmp_path: Path
) -> None:
    backend = LocalBackend("ws", database_url, (tmp_path / "files").as_uri(), base_dir=tmp_path)
    backend.create_run("r", "e", run_type="s", status=QUEUED, tags={"t": "1"})
    backend.claim_run("r", "agent-1", 30.0)
    backend.log_metrics("r", [MetricBatch("loss", SCALAR, "b1", [0.5], [0], [0.0])])

    migrate.downgrade(backend.db, "0004")

    assert _lease_columns(backend.db) == set()
    # Dropped in place: a copy of the table would have taken its tags and metrics with it.
    with backend.db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT key, value FROM run_tags")).all() == [("t", "1")]
        assert conn.execute(sa.text("SELECT name FROM metrics")).scalars().all() == ["loss"]
    migrate.upgrade(backend.db)
    assert _lease_columns(backend.db) == {"lease_holder", "lease_expires_at"}
    assert backend.get_run_details("r").tags == {"t": "1"}
    assert backend.get_run("r").lease_holder is None  # claims made before are forgotten


def test_compute_targets_go_down_and_up_leaving_the_rest(database_url: str, tmp_path: Path) -> None:
    backend = LocalBackend("ws", database_url, (tmp_path / "files").as_uri(), base_dir=tmp_path)
    backend.create_run("r", "e", run_type="s", status=QUEUED, tags={"t": "1"})
    backend.create_compute("gpucluster", "AmlCompute", {"vm_size": "STANDARD_NC6"})

    migrate.downgrade(backend.db, "0005")

    assert "compute_targets" not in sa.inspect(backend.db.engine).get_table_names()
    assert backend.get_run_details("r").tags == {"t": "1"}
    migrate.upgrade(backend.db)
    assert backend.db.schema_revision() == migrate.HEAD_REVISION
    # An older modelyard knew no compute targets: they are gone, and can be made again.
    assert backend.list_computes() == []
    created = backend.create_compute("gpucluster", "AmlCompute", {"vm_size": "STANDARD_NC6"})
    assert backend.get_compute("gpucluster") == created
    assert backend.get_run("r").status == QUEUED


def test_datasets_go_down_and_up_leaving_the_rest(database_url: str, tmp_path: Path) -> None:
    backend = LocalBackend("ws", database_url, (tmp_path / "files").as_uri(), base_dir=tmp_path)
    backend.create_run("r", "e", run_type="s", status=QUEUED, tags={"t": "1"})
    definition = {"type": "file", "sources": [{"datastore": "d", "path": "x"}], "steps": []}
    backend.create_dataset("mnist", definition, tags={"a": "1"})

    migrate.downgrade(backend.db, "0006")

    assert "datasets" not in sa.inspect(backend.db.engine).get_table_names()
    assert backend.get_run_details("r").tags == {"t": "1"}
    migrate.upgrade(backend.db)
    assert backend.db.schema_revision() == migrate.HEAD_REVISION
    # An older modelyard knew no datasets: the registrations are gone and can be made again.
    assert backend.list_datasets() == []
    again = backend.create_dataset("mnist", definition)
    assert (again.name, again.version) == ("mnist", 1)
    assert backend.get_dataset_by_id(again.id) == again


def test_status_changes_go_down_and_up_leaving_the_runs(database_url: str, tmp_path: Path) -> None:
    backend = LocalBackend("ws", database_url, (tmp_path / "files").as_uri(), base_dir=tmp_path)
    backend.create_run("r", "e", run_type="s", status=QUEUED)
    backend.update_run_status("r", RUNNING)

    migrate.downgrade(backend.db, "0007")

    assert "run_status_changes" not in sa.inspect(backend.db.engine).get_table_names()
    assert backend.get_run("r").status == RUNNING
    migrate.upgrade(backend.db)
    # What an older modelyard did is not known; what happens from now on is kept.
    assert backend.get_run_status_history("r") == []
    backend.update_run_status("r", COMPLETED)
    assert [change.status for change in backend.get_run_status_history("r")] == [COMPLETED]
