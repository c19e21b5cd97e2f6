"""Clusters of a server's workspace, against a real server process: the server provisions,
runs and stops them on its own machine, the clients only record them and watch.

One server and one cluster for the module (``provider="local"``, max 2 nodes of 2 CPUs,
scaled down after 15 s idle), created by an owner with the v1 find-or-create block, stopped
behind the server's back twice (as a reboot would) and deleted by the last test, which
checks that no process of it is left. Its state is in the server's folder of the
workspace (``<data dir>/workspaces/<id>/compute/clusters/<name>``), never on the client's
side.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="compute clusters need the cluster extra (Ray)")

from modelyard import Experiment, Run, Workspace  # noqa: E402
from modelyard.backend.records import COMPLETED, QUEUED, TERMINAL_STATES  # noqa: E402
from modelyard.backend.remote.backend import RemoteBackend  # noqa: E402
from modelyard.compute import AmlCompute, ComputeTarget  # noqa: E402
from modelyard.compute.ray.cluster import (  # noqa: E402
    TOKEN_FILE,
    ClusterState,
    client_environment,
    session_processes,
    stop_local_cluster,
)
from modelyard.compute.ray.run_access import CLUSTER_ACCESS_FILE, access_file  # noqa: E402
from modelyard.compute.ray.targets import DELETE_TIMEOUT_S, cluster_folder  # noqa: E402
from modelyard.compute_target import ComputeTargetException  # noqa: E402
from modelyard.errors import (  # noqa: E402
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RunFailedError,
)
from modelyard.runner.local_compute import COMPUTE_PROPERTY  # noqa: E402
from modelyard.server.account_records import TokenRecord  # noqa: E402
from modelyard.train import Estimator  # noqa: E402
from tests.helpers import wait_for  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]

SCRIPTS = Path(__file__).parents[1] / "compute" / "scripts"
NAME = "cpucluster"
ATTACHED = "attachedcluster"


@dataclass
class Team:
    name: str
    owner: Workspace  # the workspace as its owner reaches it
    contributor: Workspace
    folder: Path  # the workspace's folder on the server's machine

    @property
    def cluster_folder(self) -> Path:
        return cluster_folder(self.folder, NAME)


def reach(server: ServerProcess, name: str, token: str) -> Workspace:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_TOKEN", token)
        return Workspace.get(name, server=server.url)


def find_or_create(ws: Workspace) -> tuple[ComputeTarget, bool]:
    """The v1 notebooks' block, as written (imports changed); says whether it created."""
    created = False
    try:
        compute_target = ComputeTarget(workspace=ws, name=NAME)
    except ComputeTargetException:
        compute_config = AmlCompute.provisioning_configuration(
            vm_size="cpu=2,memory=4GB,gpu=0",
            min_nodes=0,
            max_nodes=2,
            idle_seconds_before_scaledown=15,
        )
        compute_target = ComputeTarget.create(ws, NAME, compute_config)
        compute_target.wait_for_completion(show_output=True, timeout_in_minutes=5)
        created = True
    return compute_target, created


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of this module's own: a test restarts it."""
    process = ServerProcess.start(tmp_path_factory.mktemp("clusters-server"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def team(server: ServerProcess) -> Iterator[Team]:
    owner, contributor = (f"{role}{uuid.uuid4().hex[:8]}" for role in ("own", "con"))
    owner_token, contributor_token = server.user(owner), server.user(contributor)
    name = server.new_workspace(owner=owner, **{contributor: "contributor"})
    ws = reach(server, name, owner_token)
    folder = server.data_dir / "workspaces" / ws.get_details()["id"]
    team = Team(name, ws, reach(server, name, contributor_token), folder)
    target, created = find_or_create(ws)
    assert created and isinstance(target, AmlCompute)
    yield team
    with contextlib.suppress(NotFoundError):  # the last test deletes the workspace
        if ws._backend.find_compute(NAME) is not None:  # a test before the last one failed
            ComputeTarget(ws, NAME).delete()


def read(run: Run, name: str) -> str:
    return run._backend.read_run_file(run.id, name, 0, 1 << 30).decode()


def test_the_server_brought_the_cluster_up_on_its_machine(team: Team) -> None:
    target = ComputeTarget(team.owner, NAME)
    assert isinstance(target, AmlCompute)
    status = target.get_status().serialize()
    assert status["provisioningState"] == "Succeeded"
    assert status["scaleSettings"]["maxNodeCount"] == 2
    assert [t.name for t in ComputeTarget.list(team.contributor)] == ["local", NAME]
    state = ClusterState.load(team.cluster_folder)
    assert state is not None and session_processes(state.session_id)
    assert target.address == state.address
    # The find-or-create block of a second notebook finds it.
    found, created = find_or_create(team.contributor)
    assert not created and isinstance(found, AmlCompute)


def test_a_contributor_submits_to_the_cluster_but_cannot_create_or_delete_one(
    team: Team,
) -> None:
    config = AmlCompute.provisioning_configuration(vm_size="cpu=2,memory=4GB,gpu=0")
    with pytest.raises(PermissionDeniedError, match="owner"):
        ComputeTarget.create(team.contributor, "mine", config)
    target = ComputeTarget(team.contributor, NAME)
    with pytest.raises(PermissionDeniedError, match="owner"):
        target.delete()
    # What the client can know is checked before anything of the run is stored.
    with pytest.raises(ComputeTargetException, match="max_nodes=2"):
        Experiment(team.contributor, "too-big").submit(
            Estimator(str(SCRIPTS), "where.py", compute_target=target, node_count=3)
        )
    run = Experiment(team.contributor, "two-nodes").submit(
        Estimator(str(SCRIPTS), "where.py", compute_target=target, node_count=2)
    )
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == COMPLETED, run.get_details().get("error")
    # Both nodes' logs and outputs come back through the server.
    for index in range(2):
        assert "hello from" in read(run, f"user_logs/std_log_process_{index:02d}.txt")
        assert str(team.cluster_folder / "nodes") in read(run, f"outputs/where_{index}.txt")
    assert read(run, "outputs/ray_variables.txt") == ""  # no Ray setting reached the script
    admission = read(run, "system_logs/admission.txt")
    nodes = admission.split("running on", 1)[1].splitlines()[0]
    assert len({part.split()[0] for part in nodes.split(",")}) == 2  # two distinct nodes
    assert run.get_metrics()["answer"] == [42, 42]  # logged once on each node


def test_a_run_canceled_on_the_cluster_stops_on_both_nodes(team: Team) -> None:
    run = Experiment(team.contributor, "cancel").submit(
        Estimator(str(SCRIPTS), "where.py", arguments=["600"], compute_target=NAME, node_count=2)
    )
    started_on_both_nodes(team, run)
    run.cancel()
    with pytest.raises(RunFailedError, match="Canceled"):
        run.wait_for_completion()
    assert run.get_status() == "Canceled"


def read_or_empty(run: Run, name: str) -> str:
    try:
        return read(run, name)
    except NotFoundError:
        return ""


def started_on_both_nodes(team: Team, run: Run, timeout: float = 300.0) -> None:
    """Wait until the script printed on both of the run's nodes; fail at once when the run
    ends first, and past ``timeout`` with what the run and the cluster's autoscaler said (the
    run waits for nodes while the autoscaler brings them up; on a busy machine that is slow)."""
    logs = [f"user_logs/std_log_process_{index:02d}.txt" for index in range(2)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all("hello from" in read_or_empty(run, log) for log in logs):
            return
        if run.get_status() in TERMINAL_STATES:
            break
        time.sleep(0.1)
    text = "\n".join(
        f"--- {name}\n{read(run, name)[-3000:]}"
        for name in run.get_file_names()
        if name.endswith(".txt")
    )
    state = ClusterState.load(team.cluster_folder)
    if state is not None:
        for log in sorted(Path(state.temp_dir).glob("session_latest/logs/monitor*.log")):
            # The autoscaler's decisions (nodes added, idle ones taken away), without the
            # warning it repeats every second about the config's legacy fields.
            lines = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if line[:2] == "20" and "legacy field" not in line
            ]
            text += f"\n--- {log.name}\n" + "\n".join(lines[-60:])
    pytest.fail(
        f"{run.id} is {run.get_status()} ({run.get_details().get('error')}), "
        f"not running on both nodes after {timeout:.0f} s\n{text}"
    )


def running_state(team: Team, other_than: ClusterState) -> ClusterState | None:
    """The cluster's head as the server started it again (None while it is not up)."""
    state = ClusterState.load(team.cluster_folder)
    if state is None or state.session_id == other_than.session_id:
        return None
    return state if session_processes(state.session_id) else None


def test_a_run_queued_while_the_cluster_is_down_starts_it_again(team: Team) -> None:
    """As after a reboot of the server's machine: the head and its admission are gone."""
    before = ClusterState.load(team.cluster_folder)
    assert before is not None
    stop_local_cluster(before)
    run = Experiment(team.contributor, "after-reboot").submit(
        Estimator(str(SCRIPTS), "where.py", compute_target=NAME)
    )
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == COMPLETED, run.get_details().get("error")
    assert running_state(team, other_than=before) is not None


def test_a_restarted_server_starts_its_clusters_again(team: Team, server: ServerProcess) -> None:
    before = ClusterState.load(team.cluster_folder)
    assert before is not None
    server.stop()
    stop_local_cluster(before)  # the machine went down with the server
    server.restart()
    wait_for(lambda: running_state(team, other_than=before), timeout=120, interval=0.5)
    target = ComputeTarget(team.owner, NAME)
    assert isinstance(target, AmlCompute)
    target.wait_for_completion(timeout_in_minutes=2)
    assert target.get_status().provisioning_state == "Succeeded"


def test_a_cluster_attached_on_another_machine_needs_a_public_url_it_can_reach(
    team: Team,
) -> None:
    config = AmlCompute.provisioning_configuration(
        vm_size="cpu=2,memory=4GB,gpu=0", max_nodes=2, address="ray://10.0.0.5:10001"
    )
    target = ComputeTarget.create(team.owner, "remote", config)
    with pytest.raises(ComputeTargetException, match="--public-url") as raised:
        target.wait_for_completion(timeout_in_minutes=1)
    assert "loopback" in str(raised.value)
    target.delete()  # never came up: forgotten at once
    assert list(team.owner.compute_targets) == ["local", NAME]


def test_a_compute_recorded_through_the_routes_with_a_bad_configuration_fails(
    team: Team,
) -> None:
    """Not the SDK's record: the server does not try to bring it up, and says why."""
    backend = team.owner._backend
    backend.create_compute("odd", "AmlCompute", {"vm_size": "no-such-size"})
    record = backend.get_compute("odd")
    assert record.state == "Failed"
    assert "provisioning configuration" in record.errors[0]["message"]
    backend.delete_compute("odd")


def test_a_run_on_the_cluster_reports_through_the_server_with_its_own_token(
    team: Team, server: ServerProcess, tmp_path: Path
) -> None:
    """The node's supervisor gets the server's URL and a token of the run's, never the
    workspace's file; the token reaches what the run's script may, and ends with the run."""
    release = tmp_path / "release"
    run = Experiment(team.contributor, "token").submit(
        Estimator(str(SCRIPTS), "hold.py", arguments=[str(release)], compute_target=NAME)
    )
    access_path = access_file(team.folder, NAME, run.id)
    wait_for(access_path.exists, timeout=30)
    assert access_path.stat().st_mode & 0o777 == 0o600
    access = json.loads(access_path.read_text())
    assert access.keys() == {"server", "workspace", "token"}
    assert (access["server"], access["workspace"]) == (server.url, team.name)
    wait_for(lambda: "holding" in read_or_empty(run, "user_logs/std_log.txt"), timeout=240)
    # The node's supervisor has used it: nothing else has it yet.
    [used] = [t for t in run_tokens(server) if t.run_id == run.id]
    assert used.last_used_at is not None

    own = RemoteBackend(server.url, team.name, access["token"])
    other = team.contributor._backend.create_run(
        "someone_elses", "token", run_type="script", status="Running"
    )
    with pytest.raises(PermissionDeniedError):
        own.get_run(other.id)
    with pytest.raises(PermissionDeniedError):
        own.set_run_tags(other.id, {"by": "mallory"})
    child = own.create_run(
        f"{run.id}_child", "token", run_type="script", status="Running", parent_id=run.id
    )
    own.update_run_status(child.id, COMPLETED)
    assert [c.id for c in run.get_children()] == [child.id]
    with pytest.raises(PermissionDeniedError, match="workspaceblobstore"):
        own.list_datastore_files("workspaceblobstore", "")
    own.upload_run_file(run.id, "outputs/model.txt", io.BytesIO(b"weights"))
    root = own.stage_model_from_run("held", "upload-1", run.id, "outputs/model.txt")
    model = own.create_model("held", "upload-1", root, run_id=run.id)
    assert (model.version, model.run_id) == (1, run.id)

    release.touch()
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == COMPLETED, run.get_details().get("error")
    assert run.get_metrics()["answer"] == 42
    assert "released" in read(run, "user_logs/std_log.txt")
    assert read(run, "outputs/result.txt") == "held and released"
    # Ended: the token is revoked and its file removed (by the server's sweep, since the
    # cluster's admission recorded the end).
    wait_for(lambda: all(t.run_id != run.id for t in run_tokens(server)), timeout=30)
    assert not access_path.exists()
    with pytest.raises(AuthenticationError):
        own.get_run(run.id)
    team.contributor._backend.update_run_status(other.id, COMPLETED)  # lets the workspace go


def test_an_attached_cluster_admits_through_the_server_with_a_token_of_its_own(
    team: Team, server: ServerProcess, tmp_path: Path
) -> None:
    """The module's cluster attached again by its address, as a cluster of another machine
    is: its admission gets the server's URL and a token of its compute target's, never the
    workspace's file, and hands each run's nodes their run's token."""
    state = ClusterState.load(team.cluster_folder)
    assert state is not None
    # The cluster wants its Ray token: the server passes its own environment's on, as it
    # would a cluster's of another machine (a copy: nothing of the server names the local
    # cluster's folder, which the last test checks).
    token_file = tmp_path / "ray_token"
    token_file.write_bytes((team.cluster_folder / TOKEN_FILE).read_bytes())
    server.stop()
    server.env.update(client_environment(str(token_file)))
    server.restart()
    config = AmlCompute.provisioning_configuration(
        vm_size="cpu=2,memory=4GB,gpu=0", max_nodes=2, address=state.address
    )
    target = ComputeTarget.create(team.owner, ATTACHED, config)
    target.wait_for_completion(timeout_in_minutes=3)
    access_path = cluster_folder(team.folder, ATTACHED) / CLUSTER_ACCESS_FILE
    assert access_path.stat().st_mode & 0o777 == 0o600
    access = json.loads(access_path.read_text())
    assert access.keys() == {"server", "workspace", "workspace_id", "compute", "token"}
    assert (access["server"], access["compute"]) == (server.url, ATTACHED)

    run = Experiment(team.contributor, "attached").submit(
        Estimator(str(SCRIPTS), "where.py", compute_target=ATTACHED)
    )
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == COMPLETED, run.get_details().get("error")
    assert run.get_metrics()["answer"] == 42
    assert "running on" in read(run, "system_logs/admission.txt")

    cluster = RemoteBackend(server.url, team.name, access["token"])
    with pytest.raises(PermissionDeniedError, match=ATTACHED):
        cluster.list_runs_in_states([QUEUED], properties={COMPUTE_PROPERTY: NAME})
    with pytest.raises(PermissionDeniedError):
        cluster.list_datastores()
    target.delete()
    assert list(team.owner.compute_targets) == ["local", NAME]
    # Deleted: its token reaches nothing any more.
    assert not access_path.exists()
    with pytest.raises(AuthenticationError):
        cluster.list_runs_in_states([QUEUED], properties={COMPUTE_PROPERTY: ATTACHED})


def run_tokens(server: ServerProcess) -> list[TokenRecord]:
    accounts = server.accounts()
    try:
        return accounts.list_run_tokens()
    finally:
        accounts.close()


def test_deleting_the_cluster_stops_every_process_of_it(team: Team) -> None:
    state = ClusterState.load(team.cluster_folder)
    assert state is not None
    # The workspace cannot go first: its cluster would run on without its folder.
    with pytest.raises(ConflictError, match=f"compute target {NAME}; delete them first"):
        team.owner.delete()
    assert (team.cluster_folder / "cluster.json").exists()
    started = time.monotonic()
    ComputeTarget(team.owner, NAME).delete()
    # Its admission stopped its runs and said so: no wait for it ran out.
    assert time.monotonic() - started < DELETE_TIMEOUT_S, (
        team.cluster_folder / "provision.log"
    ).read_text()[-3000:]
    assert list(team.owner.compute_targets) == ["local"]
    assert session_processes(state.session_id) == []
    # Nothing else of it either (node hosts, supervisors): no process names its folder.
    wait_for(lambda: _processes_naming(team.cluster_folder) == [], timeout=30)
    assert not (team.cluster_folder / "cluster.json").exists()
    # Then the workspace goes, folder and all.
    team.owner.delete()
    assert not team.folder.exists()


def _processes_naming(folder: Path) -> list[int]:
    """This account's processes whose command line or environment names ``folder``."""
    mark = str(folder).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            seen = Path(f"/proc/{entry}/cmdline").read_bytes()
            seen += Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if mark in seen:
            found.append(int(entry))
    return found
