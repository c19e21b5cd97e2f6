"""A cluster's token, against a real server process: it admits the runs of its own compute
target and nothing else of the workspace, hands out their runs' tokens, and ends with the
compute target.

No cluster runs here (tests/server/test_http_clusters.py runs one): the token is minted as
the server mints it when it provisions a cluster, and used as its admission uses it.
"""

from __future__ import annotations

import io

import pytest

from modelyard.backend.records import CANCELED, FAILED, PROVISIONING, QUEUED, RUNNING
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.compute.ray.run_access import access_path, fetch_run_access
from modelyard.compute.ray.targets import ADMISSION_LOG, DELETED_STATE
from modelyard.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)
from modelyard.runner.job import JOB_FILE, JobSpec
from modelyard.runner.local_compute import COMPUTE_PROPERTY
from tests.server_process import ServerProcess

OURS, THEIRS = "ourcluster", "theircluster"


def _queued(admin: RemoteBackend, run_id: str, compute: str) -> str:
    run = admin.create_run(run_id, "admit", run_type="script", status=QUEUED)
    admin.add_run_properties(run.id, {COMPUTE_PROPERTY: compute})
    admin.upload_run_file(run.id, JOB_FILE, io.BytesIO(JobSpec(script="t.py").to_json().encode()))
    return run.id


def _cluster_token(server: ServerProcess, workspace: str, compute: str) -> str:
    accounts = server.accounts()
    try:
        return accounts.create_cluster_token(workspace, compute)[1]
    finally:
        accounts.close()


def test_a_cluster_token_admits_its_own_targets_runs_only(http_server: ServerProcess) -> None:
    workspace = http_server.new_workspace()
    admin = RemoteBackend(http_server.url, workspace, http_server.admin_token)
    ours = _queued(admin, "ours_1", OURS)
    theirs = _queued(admin, "theirs_1", THEIRS)
    cluster = RemoteBackend(
        http_server.url, workspace, _cluster_token(http_server, workspace, OURS)
    )

    # The admission's loop, as it makes it.
    queue = cluster.list_runs_in_states([QUEUED], properties={COMPUTE_PROPERTY: OURS})
    assert [run.id for run in queue] == [ours]
    claimed = cluster.claim_run(ours, "ourcluster-admission", 30.0, status=PROVISIONING)
    assert claimed is not None and claimed.status == PROVISIONING
    assert cluster.renew_lease(ours, "ourcluster-admission", 30.0) == PROVISIONING
    with cluster.open_run_file(ours, JOB_FILE) as job:
        assert JobSpec.from_json(job.read().decode()).script == "t.py"
    cluster.append_run_file(ours, ADMISSION_LOG, 0, b"waiting for 1 node(s)\n")
    cluster.expire_leases()

    # Nothing of another compute target's, nor of the workspace beyond its runs.
    refused = [
        lambda: cluster.list_runs_in_states([QUEUED], properties={COMPUTE_PROPERTY: THEIRS}),
        lambda: cluster.list_runs_in_states([QUEUED]),
        lambda: cluster.claim_run(theirs, "ourcluster-admission", 30.0),
        lambda: cluster.open_run_file(theirs, JOB_FILE),
        lambda: cluster.update_run_status(theirs, CANCELED),
        lambda: cluster.get_compute(THEIRS),
        lambda: cluster.update_compute(THEIRS, state=DELETED_STATE),
        # Its own runs: only what an admission does with them.
        lambda: cluster.open_run_file(ours, "outputs/model.pt"),
        lambda: cluster.append_run_file(ours, "user_logs/std_log.txt", 0, b"forged\n"),
        lambda: cluster.update_run_status(ours, RUNNING),
        lambda: cluster.update_compute(OURS, address="ray://elsewhere:10001"),
        lambda: cluster.get_run(ours),
        lambda: cluster.list_datastores(),
        lambda: cluster.list_experiments(),
        lambda: cluster.create_run("mine", "admit", run_type="script", status=QUEUED),
        lambda: fetch_run_access(cluster, THEIRS, theirs),
        lambda: fetch_run_access(cluster, OURS, theirs),
    ]
    for number, call in enumerate(refused):
        with pytest.raises(PermissionDeniedError):
            call()
            pytest.fail(f"refused call {number} was allowed")
    assert admin.get_run(theirs).status == QUEUED
    log = admin.read_run_file(ours, ADMISSION_LOG, 0, 1 << 20)
    assert log == b"waiting for 1 node(s)\n"

    cluster.update_run_status(ours, FAILED, error={"message": "its nodes did not start"})
    assert admin.get_run(ours).status == FAILED


def test_the_admission_gets_each_runs_own_token_for_its_nodes(http_server: ServerProcess) -> None:
    workspace = http_server.new_workspace()
    admin = RemoteBackend(http_server.url, workspace, http_server.admin_token)
    run_id = _queued(admin, "handed_1", OURS)
    cluster = RemoteBackend(
        http_server.url, workspace, _cluster_token(http_server, workspace, OURS)
    )

    access = fetch_run_access(cluster, OURS, run_id)
    assert (access.server, access.workspace) == (http_server.url, workspace)
    assert fetch_run_access(cluster, OURS, run_id) == access  # asked again: the same token
    node = RemoteBackend(access.server, access.workspace, access.token)
    node.set_run_tags(run_id, {"node": "0"})
    assert admin.get_run_details(run_id).tags == {"node": "0"}
    with pytest.raises(PermissionDeniedError):  # the run's token: held to its run
        node.list_runs("admit")

    admin.update_run_status(run_id, CANCELED)
    with pytest.raises(ConflictError, match="has ended"):
        fetch_run_access(cluster, OURS, run_id)
    with pytest.raises(AuthenticationError):
        node.set_run_tags(run_id, {"node": "after the end"})


def test_a_cluster_token_reaches_no_other_workspace_and_ends_with_its_target(
    http_server: ServerProcess,
) -> None:
    workspace, other = http_server.new_workspace(), http_server.new_workspace()
    token = _cluster_token(http_server, workspace, OURS)
    elsewhere = RemoteBackend(http_server.url, other, token)
    with pytest.raises(NotFoundError, match="not one of its members"):
        elsewhere.list_runs_in_states([QUEUED], properties={COMPUTE_PROPERTY: OURS})
    answer = http_server.call("GET", access_path(other, OURS, "any_run"), token)
    assert answer.status_code == 404
    # A member's token asks for no run's access: that is the cluster's alone.
    member = http_server.call("GET", access_path(workspace, OURS, "any_run"), http_server.user())
    assert member.status_code == 404  # not a member of this workspace, as if it did not exist
    assert http_server.call("GET", "/api/v1/tokens", token).status_code == 403

    cluster = RemoteBackend(http_server.url, workspace, token)
    cluster.list_runs_in_states([QUEUED], properties={COMPUTE_PROPERTY: OURS})
    accounts = http_server.accounts()
    try:
        accounts.revoke_cluster_tokens(workspace, OURS)
    finally:
        accounts.close()
    with pytest.raises(AuthenticationError):
        cluster.list_runs_in_states([QUEUED], properties={COMPUTE_PROPERTY: OURS})
