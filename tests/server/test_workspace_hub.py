"""The server's workspaces on its machine, in process: what several server processes see.

Two hubs on one data folder are two server processes (``--workers 2``): each caches its
workspaces' backends, and a workspace one deletes (and makes again) is not served from the
other's cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.backend.records import RUNNING
from modelyard.errors import ConflictError, NotFoundError
from modelyard.server.accounts import AccountStore
from modelyard.server.settings import ServerSettings
from modelyard.server.workspaces import WorkspaceHub


def _hub(settings: ServerSettings) -> WorkspaceHub:
    return WorkspaceHub(settings, AccountStore.open(settings))


def test_a_workspace_deleted_by_one_process_is_not_served_by_another(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "server")
    one, other = _hub(settings), _hub(settings)
    one.accounts.create_user("ada")
    try:
        first = one.create("team", owner="ada")
        other.backend("team").ensure_experiment("old")  # now in the other's cache
        one.delete("team")
        assert not (settings.workspaces_dir / first.id).exists()
        with pytest.raises(NotFoundError):
            other.backend("team")
        second = one.create("team", owner="ada")
        backend = other.backend("team")
        assert backend.workspace_id == second.id
        assert backend.list_experiments() == []
    finally:
        one.close()
        other.close()


def test_a_deletion_is_refused_while_runs_go_on_and_keeps_everything(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "server")
    hub = _hub(settings)
    hub.accounts.create_user("ada")
    try:
        entry = hub.create("team", owner="ada")
        backend = hub.backend("team")
        for number in range(7):
            backend.create_run(f"r{number}", "e", run_type="script", status=RUNNING)
        with pytest.raises(ConflictError, match=r"7 runs that have not ended: r0.*and 2 more"):
            hub.delete("team")
        assert hub.backend("team").get_run("r6").status == RUNNING
        assert (settings.workspaces_dir / entry.id / "workspace.json").is_file()
    finally:
        hub.close()
