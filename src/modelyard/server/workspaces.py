"""A server's workspaces on its machine: each one's folder, its backend, its local runs.

Each workspace the server holds is a workspace folder (``backend/workspace_folder.py``) in
``<data_dir>/workspaces/<workspace id>``: its ``workspace.json``, its secrets file (datastore
credentials, which never leave the server) and, by default, its SQLite database and its
files. With a PostgreSQL ``database_url`` its tables live in a schema of its own
(``ws_<id>``) of that database; with a ``storage_url`` its files live below
``<storage_url>/<id>``. The folder is named by the workspace's id, not its name, so a name
that is deleted and made again never meets the old one's files.

:meth:`WorkspaceHub.delete` removes all of that (refused while runs have not ended): its
agent, its folder, its schema, its files, and last its record, so that a deletion cut off
half-way is finished by deleting again.

Runs queued on the ``local`` compute target run on the server's machine: the workspace's
agent (``runner/agent.py``) is started, or woken, when a run is queued or a cancel asked
for, and again for every workspace with waiting runs when the server starts. Supervisors
write to the workspace's backend directly, so a run goes on while the server restarts.

Clusters (``AmlCompute``) of its workspaces run on the server's machine too
(``provider="local"``, their state in ``<workspace folder>/compute/clusters/<name>``), or
are attached by address: the server starts provisioning one when a client records it
(``create_compute``, or ``update_compute`` to Creating after it failed), starts it again
when a run is queued on it and its head is down, stops it in the background when a client
records it Deleting (``AmlCompute.delete``), and at its own start does what was left to do.
No cluster gets the workspace's credentials (``compute/ray/run_access.py``): the cluster's
admission, wherever its head is, reaches the workspace through the server with a token of
its compute target's, written for its provisioning; a run queued on a cluster gets a token of
its own, which the admission asks the server for and hands the run's nodes, whose
supervisors report through the server with it.
The token is revoked, and its file removed, when the run ends: at once when the end comes
through the server, else (a cluster's admission records it directly) by a sweep every
``RUN_TOKEN_SWEEP_S``.

Example::

    hub = WorkspaceHub(settings, accounts)
    hub.create("team", owner="ada")
    hub.backend("team").list_experiments()
    hub.delete("team")
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

from sqlalchemy import make_url, text

from modelyard.backend.base import every_item
from modelyard.backend.local import LocalBackend
from modelyard.backend.records import (
    CANCEL_REQUESTED,
    LOCAL_COMPUTE,
    PROVISIONING,
    QUEUED,
    RUN_STATES,
    TERMINAL_STATES,
    ComputeRecord,
)
from modelyard.backend.workspace_folder import (
    WORKSPACE_FILE,
    WorkspaceFile,
    fill_workspace_folder,
    open_backend,
    read_workspace_file,
)
from modelyard.compute.local import ensure_agent, stop_agent
from modelyard.compute.ray import run_access, targets
from modelyard.compute.ray.provisioning import ProvisioningConfiguration, split_address
from modelyard.errors import ConfigError, ConflictError, ModelyardError, NotFoundError
from modelyard.hosts import is_loopback
from modelyard.runner.cluster_node import ServedWorkspace
from modelyard.runner.local_compute import COMPUTE_PROPERTY, wake
from modelyard.runner.processes import stop_process_group
from modelyard.server.accounts import AccountStore, WorkspaceEntry
from modelyard.server.settings import ServerSettings
from modelyard.store.database import Database
from modelyard.store.files import FileStore
from modelyard.store.private import make_private_folder

logger = logging.getLogger("modelyard.server")
# How long a cluster's deletion waits for its provisioning under way to end (the head up and
# its admission started, which then stops the runs), before stopping it.
PROVISION_WAIT_S = 120.0

# Runs in these states hold the workspace: their supervisors write to it.
ACTIVE_STATES = [state for state in RUN_STATES if state not in TERMINAL_STATES]
# How many of the runs that hold a workspace a refused deletion names.
_RUNS_NAMED = 5
# How often the tokens of runs that ended without the server hearing of it are revoked.
RUN_TOKEN_SWEEP_S = 5.0


def schema_of(workspace_id: str) -> str:
    """The PostgreSQL schema of a workspace: its id without dashes, so a plain identifier."""
    return "ws_" + workspace_id.replace("-", "")


def _check_reachable(url: str, address: str, compute: str) -> None:
    """ConfigError when a cluster attached at ``address`` on another machine would be told
    to report to a loopback URL, which on its machine is itself."""
    host, _port = split_address(address)
    if is_loopback(host) or not is_loopback(urllib.parse.urlsplit(url).hostname or ""):
        return
    raise ConfigError(
        f"compute target {compute!r} is attached at {address}, another machine, and this "
        f"server's public URL {url} is a loopback one, which that machine cannot reach; "
        "start the server with --public-url http://<an address of this machine>:<port>"
    )


class WorkspaceHub:
    """The workspaces of one server (thread-safe: the app's threads share it)."""

    def __init__(self, settings: ServerSettings, accounts: AccountStore) -> None:
        self.settings = settings
        self.accounts = accounts
        self._lock = threading.Lock()
        self._backends: dict[str, LocalBackend] = {}
        # Names being deleted by this process: no call opens (and so remakes) them meanwhile.
        self._deleting: set[str] = set()
        # Clusters by (workspace id, compute name): provisioning processes started, and
        # deletions under way.
        self._clusters_lock = threading.Lock()
        self._provisioning: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
        self._deleting_clusters: set[tuple[str, str]] = set()
        self._closed = threading.Event()
        self._sweeper: threading.Thread | None = None
        make_private_folder(settings.workspaces_dir)

    def folder(self, entry: WorkspaceEntry) -> Path:
        return self.settings.workspaces_dir / entry.id

    def create(self, name: str, owner: str) -> WorkspaceEntry:
        """Make workspace ``name`` with ``owner`` as its first owner (ConflictError when the
        name is taken)."""
        entry = self.accounts.create_workspace(name, owner)
        self._open(entry)
        return entry

    def backend(self, name: str) -> LocalBackend:
        """The backend of workspace ``name`` (NotFoundError when the server has none)."""
        # The record is read every time: another server process may have deleted the
        # workspace, or deleted it and made a new one of that name, since this one cached it.
        return self._open(self.accounts.get_workspace(name))

    def _open(self, entry: WorkspaceEntry, *, deleting: bool = False) -> LocalBackend:
        with self._lock:
            if entry.name in self._deleting and not deleting:
                # Opening it might make its folder again, behind the deletion.
                raise ConflictError(
                    f"workspace {entry.name!r} is being deleted; wait for that to finish"
                )
            backend = self._backends.get(entry.name)
            if backend is not None and backend.workspace_id == entry.id:
                return backend
            if backend is not None:  # of a workspace of that name that was deleted
                backend.db.engine.dispose()
            folder = self.folder(entry)
            # Folder datastores only inside the workspace's folder and the server's roots: a
            # member must not register /etc, or another workspace's folder, and read it.
            roots = [str(folder), *self.settings.datastore_roots]
            if (folder / WORKSPACE_FILE).is_file():
                info = read_workspace_file(folder, entry.name)
                backend = open_backend(folder, info, allowed_local_roots=roots)
            else:
                # A workspace whose folder is not made yet, or whose making died halfway
                # (workspace.json comes last): make it now, from the start.
                info = self._workspace_file(entry)
                backend = fill_workspace_folder(folder, info, allowed_local_roots=roots)
            self._backends[entry.name] = backend
            return backend

    def _workspace_file(self, entry: WorkspaceEntry) -> WorkspaceFile:
        database_url = None
        if self.settings.database_url is not None:
            schema = schema_of(entry.id)
            self._make_schema(schema)
            url = make_url(self.settings.database_url)
            database_url = url.update_query_dict(
                {"options": f"-csearch_path={schema}"}
            ).render_as_string(hide_password=False)
        return WorkspaceFile(
            name=entry.name,
            id=entry.id,
            created_at=time.time(),
            database_url=database_url,
            storage_url=self.settings.storage_url_of(entry.id),
            storage_options=self.settings.storage_options or None,
        )

    def _make_schema(self, schema: str) -> None:
        self._schema_statement(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    def _schema_statement(self, statement: str) -> None:
        assert self.settings.database_url is not None
        db = Database(self.settings.database_url)
        try:
            db.write(lambda conn: conn.execute(text(statement)))
        finally:
            db.engine.dispose()

    # -- deleting ------------------------------------------------------------------------

    def delete(self, name: str) -> None:
        """Delete workspace ``name`` and everything the server keeps of it (NotFoundError
        when there is none; ConflictError while it has runs that have not ended).

        Each step does nothing when what it removes is gone already, and the record goes
        last: a deletion cut off half-way (a crash, a storage error) is finished by calling
        this again. Datastores registered from outside the workspace (a shared folder, a
        bucket of their own) are not touched: only what the server made for it.
        """
        entry = self.accounts.get_workspace(name)
        with self._lock:
            if name in self._deleting:
                raise ConflictError(f"workspace {name!r} is being deleted already")
            self._deleting.add(name)
        try:
            self._refuse_active_runs(entry)
            self._remove_data(entry)
            self.accounts.delete_workspace(name)
        finally:
            with self._lock:
                self._deleting.discard(name)
        logger.info("deleted workspace %r (%s)", name, entry.id)

    def _refuse_active_runs(self, entry: WorkspaceEntry) -> None:
        """Refuse to delete a workspace whose runs go on, or whose clusters run: their
        processes write to its folder, and a cluster's would be left running without it."""
        if not (self.folder(entry) / WORKSPACE_FILE).is_file():
            return  # never opened, or its deletion got past its files: no run can be there
        backend = self._open(entry, deleting=True)
        clusters = [
            record.name
            for record in every_item(
                lambda limit, after: backend.list_computes(limit=limit, after=after)
            )
            if record.state != targets.DELETED_STATE
        ]
        if clusters:
            raise ConflictError(
                f"workspace {entry.name!r} has compute target"
                f"{'s' if len(clusters) != 1 else ''} {', '.join(clusters)}; delete "
                "them first (`modelyard compute delete NAME`, or ComputeTarget(ws, "
                "NAME).delete()), then delete the workspace again"
            )
        active = backend.list_runs_in_states(ACTIVE_STATES)
        if active:
            named = ", ".join(f"{run.id} ({run.status})" for run in active[:_RUNS_NAMED])
            more = f" and {len(active) - _RUNS_NAMED} more" if len(active) > _RUNS_NAMED else ""
            raise ConflictError(
                f"workspace {entry.name!r} has {len(active)} run"
                f"{'s' if len(active) != 1 else ''} that have not ended: {named}{more}; "
                "cancel them (`modelyard run cancel RUN_ID`, or run.cancel()), wait for them "
                "to end, then delete the workspace again"
            )

    def _remove_data(self, entry: WorkspaceEntry) -> None:
        folder = self.folder(entry)
        with self._lock:
            backend = self._backends.pop(entry.name, None)
        if backend is not None:
            backend.db.engine.dispose()
        if (folder / WORKSPACE_FILE).is_file():
            # It waits until the agent has exited: nothing of it writes to the folder after.
            stop_agent(folder)
        # workspace.json first: a folder without it is one whose deletion began (its runs
        # were checked then), and deleting again does not open what is left of it. The
        # schema and the storage are named by the workspace's id: found without it.
        (folder / WORKSPACE_FILE).unlink(missing_ok=True)
        if folder.exists():
            shutil.rmtree(folder)
        if self.settings.database_url is not None:
            self._schema_statement(f'DROP SCHEMA IF EXISTS "{schema_of(entry.id)}" CASCADE')
        storage_url = self.settings.storage_url_of(entry.id)
        if storage_url is not None:
            FileStore(storage_url, self.settings.storage_options).delete("")

    # -- runs on the server's machine ----------------------------------------------------

    def run_status_changed(self, name: str, run_id: str, status: str) -> None:
        """Start or wake the agent of a workspace whose run was queued on ``local``, or
        whose run is asked to cancel; hand a run queued on a cluster of this machine its
        token; revoke the token of a run that ended."""
        if status in TERMINAL_STATES:
            self.run_ended(name, run_id)
            return
        if status not in (QUEUED, CANCEL_REQUESTED):
            return
        backend = self.backend(name)
        folder = backend.base_dir
        assert folder is not None
        if status == CANCEL_REQUESTED:
            wake(folder)
            return
        properties = backend.get_run_details(run_id).properties
        compute = properties.get(COMPUTE_PROPERTY)
        # Runs made by other means than a submit (no compute named) are not the agent's.
        if compute == LOCAL_COMPUTE:
            ensure_agent(folder, name)
        elif compute:
            # A cluster's admission polls the queue and notices cancels itself; a local
            # cluster whose head stopped (a reboot) is started again.
            record = backend.find_compute(compute)
            if record is None or not self._readable(record):
                return
            try:
                self._hand_run_access(name, folder, record.name, run_id)
            except ConfigError as error:  # its admission fails it, saying what it waited for
                logger.error("%s", error)
            if targets.cluster_down(folder, record):
                self._provision(name, record)

    def _hand_cluster_access(
        self,
        name: str,
        backend: LocalBackend,
        record: ComputeRecord,
        config: ProvisioningConfiguration,
    ) -> None:
        """Write the server's URL and the compute target's token where its provisioning
        reads them for the cluster's admission (``run_access.ClusterAccess``), keeping the
        token written before while it is still accepted: an admission that outlived a
        server restart holds it. ConfigError: the cluster's nodes could not reach this
        server."""
        folder = backend.base_dir
        assert folder is not None
        url = self._public_url(f"cluster {record.name!r}")
        if config.address is not None:
            _check_reachable(url, config.address, record.name)
        written = run_access.read_cluster_access(folder, record.name)
        if written is not None and written.server == url:
            try:
                held = self.accounts.authenticate(written.token)
            except ModelyardError:
                held = None
            if held is not None and held.compute == record.name and held.workspace == name:
                return
        _record, token = self.accounts.create_cluster_token(name, record.name)
        access = run_access.ClusterAccess(
            server=url,
            workspace=name,
            workspace_id=backend.workspace_id,
            compute=record.name,
            token=token,
        )
        run_access.write_cluster_access(folder, access)

    def _public_url(self, what: str) -> str:
        if self.settings.public_url is None:
            # Only a server started by other means than `modelyard server` has none.
            raise ConfigError(
                f"{what} reports to this server, which has no public URL for it to report "
                "to; start the server with --public-url"
            )
        return self.settings.public_url

    def run_access(self, name: str, compute: str, run_id: str) -> ServedWorkspace:
        """The access of run ``run_id`` queued on cluster ``compute`` (what its admission
        asks for): the one written when it was queued, or one minted now. ConflictError
        once the run has ended (its token is revoked)."""
        backend = self.backend(name)
        assert backend.base_dir is not None
        status = backend.get_run(run_id).status
        if status in TERMINAL_STATES:
            raise ConflictError(f"run {run_id!r} has ended ({status}): it has no access left")
        return self._hand_run_access(name, backend.base_dir, compute, run_id)

    def _hand_run_access(
        self, name: str, folder: Path, compute: str, run_id: str
    ) -> ServedWorkspace:
        """Mint the token of a run queued on cluster ``compute`` and write it where the
        cluster's admission gets it from (a client sending the call again finds it there)."""
        written = run_access.read_run_access(folder, compute, run_id)
        if written is not None:
            return written
        url = self._public_url(f"run {run_id!r} of cluster {compute!r}")
        _record, token = self.accounts.create_run_token(name, run_id)
        access = ServedWorkspace(server=url, workspace=name, token=token)
        run_access.write_run_access(folder, compute, run_id, access)
        return access

    def run_ended(self, name: str, run_id: str) -> None:
        """Revoke the tokens of run ``run_id``, which has ended, and remove the access its
        cluster's admission read (nothing to do for a run that had none)."""
        self.accounts.revoke_run_tokens(name, run_id)
        backend = self.backend(name)
        assert backend.base_dir is not None
        try:
            compute = backend.get_run_details(run_id).properties.get(COMPUTE_PROPERTY)
        except NotFoundError:
            return
        if compute and compute != LOCAL_COMPUTE:
            run_access.remove_run_access(backend.base_dir, compute, run_id)

    def sweep_run_tokens(self) -> None:
        """Revoke the tokens of the runs that have ended (or are gone): a cluster's
        admission records a run's end directly in its workspace."""
        for token in self.accounts.list_run_tokens():
            assert token.workspace is not None and token.run_id is not None
            try:
                status = self.backend(token.workspace).get_run(token.run_id).status
                if status in TERMINAL_STATES:
                    self.run_ended(token.workspace, token.run_id)
            except NotFoundError:  # the run is gone: nothing is left for its token
                self.accounts.revoke_run_tokens(token.workspace, token.run_id)
            except ModelyardError as error:  # a workspace being deleted, say: next time
                logger.warning("cannot check the run of token %s: %s", token.id, error)

    def start_sweeping(self) -> None:
        """Sweep the runs' tokens every RUN_TOKEN_SWEEP_S until :meth:`close`."""

        def loop() -> None:
            while not self._closed.wait(RUN_TOKEN_SWEEP_S):
                try:
                    self.sweep_run_tokens()
                except Exception:  # the next sweep tries again (a database away, say)
                    logger.exception("cannot revoke the tokens of ended runs")

        self._sweeper = threading.Thread(target=loop, name="run-token-sweep", daemon=True)
        self._sweeper.start()

    def resume(self) -> None:
        """Start the agents of workspaces whose local runs wait (at the server's start: a
        run queued while the server was away, or whose agent went with the machine), and
        go on with their clusters (:meth:`_resume_clusters`)."""
        for entry in self.accounts.list_workspaces():
            try:
                backend = self.backend(entry.name)
                waiting = backend.list_runs_in_states(
                    [QUEUED, CANCEL_REQUESTED], properties={COMPUTE_PROPERTY: LOCAL_COMPUTE}
                )
                if waiting:
                    assert backend.base_dir is not None
                    ensure_agent(backend.base_dir, entry.name)
                self._resume_clusters(entry.name, backend)
            except Exception:  # one broken workspace must not keep the server from starting
                logger.exception("cannot resume the runs of workspace %r", entry.name)

    # -- clusters on the server's machine ------------------------------------------------

    def compute_changed(self, name: str, record: ComputeRecord) -> None:
        """A client recorded compute ``record`` of workspace ``name``: provision a cluster
        that is Creating, stop one that is Deleting (in the background: the call returns)."""
        if record.compute_type != targets.AML_COMPUTE:
            return
        if record.state == targets.CREATING_STATE:
            if self._readable(record):
                self._provision(name, record)
            else:
                self.backend(name).update_compute(
                    record.name,
                    state=targets.FAILED_STATE,
                    errors=[
                        {
                            "code": "BadProvisioningConfiguration",
                            "message": "its provisioning configuration is not one that "
                            "AmlCompute.provisioning_configuration(...) makes",
                        }
                    ],
                )
        elif record.state == targets.DELETING_STATE:
            self._delete(name, record)

    @staticmethod
    def _readable(record: ComputeRecord) -> bool:
        """Whether the record's provisioning configuration is one the SDK wrote (a record
        made through the routes by other means may hold anything)."""
        try:
            ProvisioningConfiguration.from_dict(record.provisioning).vm()
        except Exception:
            return False
        return True

    def _resume_clusters(self, name: str, backend: LocalBackend) -> None:
        """At the server's start: provision the clusters still Creating, start again the
        local ones that came up once and whose head is down, finish the deletions, and hand
        their waiting runs the access the server may have died before writing."""
        assert backend.base_dir is not None
        computes = every_item(lambda limit, after: backend.list_computes(limit=limit, after=after))
        for record in computes:
            if record.compute_type != targets.AML_COMPUTE or not self._readable(record):
                continue
            waiting = backend.list_runs_in_states(
                [QUEUED, PROVISIONING], properties={COMPUTE_PROPERTY: record.name}
            )
            for run in waiting:
                try:
                    self._hand_run_access(name, backend.base_dir, record.name, run.id)
                except ConfigError as error:
                    logger.error("%s", error)
            if record.state == targets.CREATING_STATE or targets.cluster_down(
                backend.base_dir, record
            ):
                self._provision(name, record)
            elif record.state in (targets.DELETING_STATE, targets.DELETED_STATE):
                self._delete(name, record)

    def _provision(self, name: str, record: ComputeRecord) -> None:
        """Start the provisioning of cluster ``record`` of workspace ``name`` on this
        machine, unless one this server started still runs."""
        backend = self.backend(name)
        folder = backend.base_dir
        assert folder is not None
        config = ProvisioningConfiguration.from_dict(record.provisioning)
        try:
            self._hand_cluster_access(name, backend, record, config)
        except ModelyardError as error:
            backend.update_compute(
                record.name,
                state=targets.FAILED_STATE,
                errors=[{"code": "ClusterAccess", "message": str(error)}],
            )
            return
        key = (backend.workspace_id, record.name)
        with self._clusters_lock:
            running = self._provisioning.get(key)
            if (running is not None and running.poll() is None) or key in self._deleting_clusters:
                return
            process = targets.start_provisioning(folder, name, record.name, config, served=True)
            self._provisioning[key] = process
        # Reaped when it ends, so that it leaves no zombie behind.
        threading.Thread(target=process.wait, name=f"provision-{record.name}", daemon=True).start()

    def _delete(self, name: str, record: ComputeRecord) -> None:
        backend = self.backend(name)
        key = (backend.workspace_id, record.name)
        with self._clusters_lock:
            if key in self._deleting_clusters:
                return
            self._deleting_clusters.add(key)
            provisioning = self._provisioning.pop(key, None)
        threading.Thread(
            target=self._stop_cluster,
            args=(name, backend, key, provisioning),
            name=f"delete-{record.name}",
            daemon=True,
        ).start()

    def _stop_cluster(
        self,
        name: str,
        backend: LocalBackend,
        key: tuple[str, str],
        provisioning: subprocess.Popen[bytes] | None,
    ) -> None:
        """Let the provisioning under way end, then stop the cluster (as
        ``AmlCompute.delete`` does on an embedded workspace's machine), and forget it."""
        try:
            if provisioning is not None:
                # Let it end: stopped halfway, it could leave an admission no one tells to stop.
                try:
                    provisioning.wait(timeout=PROVISION_WAIT_S)
                except subprocess.TimeoutExpired:
                    stop_process_group(provisioning.pid, grace=5.0, reap=provisioning.poll)
            assert backend.base_dir is not None
            targets.stop_deleted_cluster(backend.base_dir, backend, key[1])
            # Its admission is gone: what it held reaches nothing any more.
            self.accounts.revoke_cluster_tokens(name, key[1])
            run_access.remove_cluster_access(backend.base_dir, key[1])
        except Exception:
            logger.exception("cannot delete compute target %r", key[1])
        finally:
            with self._clusters_lock:
                self._deleting_clusters.discard(key)

    def close(self) -> None:
        self._closed.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=30)
        with self._lock:
            backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            backend.db.engine.dispose()
