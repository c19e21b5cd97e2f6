"""A deployed service (v1's ``azureml.core.webservice.webservice``): its record, its scoring
process on this machine or its Ray Serve application on a cluster, and what users do with it
(state, logs, run, keys, update, delete). :mod:`modelyard.webservice` says how services are
made; :mod:`modelyard.deploy` makes them.

Example::

    from modelyard.webservice import Webservice

    service = Webservice(ws, "tf-mnist-svc")
    service.state                # 'Healthy'
    service.run(input_data=json.dumps({"data": images[:1].tolist()}))
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from modelyard.compute.aml_compute import AmlCompute
from modelyard.compute.ray.serving import (
    CONTROL_TIMEOUT_S,
    ServeCluster,
    deploy_request,
)
from modelyard.errors import ConfigError, ValidationError, WebserviceException
from modelyard.names import check_name
from modelyard.runner.envbuild.errors import EnvironmentBuildError
from modelyard.runner.envbuild.prepare import prepare_environment
from modelyard.runner.job import JobSpec
from modelyard.runner.process_identity import group_alive, is_reused, start_time
from modelyard.runner.run_environment import run_process_environment
from modelyard.serving.configuration import DeploymentConfiguration
from modelyard.serving.process import (
    START_TIMEOUT_S,
    answers,
    service_running,
    start_service,
    stop_group,
    wait_port_free,
)
from modelyard.serving.settings import ServiceSettings, key_digest
from modelyard.store.private import make_private_folder, write_private_file

if TYPE_CHECKING:
    from modelyard.model import Model
    from modelyard.workspace import Workspace

SERVICES_FOLDER = "services"
HOST = "127.0.0.1"
V1_MODEL_DIR_ENV = "AZUREML_MODEL_DIR"
# What the scoring process needs beyond the user's packages; in modelyard's own Python they are
# there already (the `server` extra), so they only add to a built environment.
SERVING_REQUIREMENTS = ["starlette>=0.40", "uvicorn>=0.30"]

TRANSITIONING, HEALTHY, UNHEALTHY, FAILED = "Transitioning", "Healthy", "Unhealthy", "Failed"


def deployment_configuration(
    kind: str, compute_target: object, **values: Any
) -> DeploymentConfiguration:
    """A checked configuration of ``kind`` (Local, ACI, AKS) for ``compute_target`` (an
    AmlCompute, or None: this machine); what each ``deploy_configuration`` returns."""
    config = DeploymentConfiguration(
        kind=kind, compute_target=cluster_name(compute_target), **values
    )
    config.check()
    return config


def cluster_name(target: object) -> str | None:
    """The name of the Ray cluster compute target to deploy onto (None: this machine)."""
    if target is None:
        return None
    if not isinstance(target, AmlCompute):
        raise ValidationError(
            "compute_target",
            f"{target!r} is not a Ray cluster compute target: give an AmlCompute "
            "(ComputeTarget(ws, 'cpucluster')), or leave it out to serve on this machine",
        )
    if target.workspace._backend.find_compute(target.name) is None:
        raise ConfigError(
            f"compute target {target.name!r} was deleted: create it again "
            "(ComputeTarget.create) or deploy onto another one"
        )
    return target.name


def services_root(workspace: Workspace) -> Path:
    if workspace.server is not None:
        raise ConfigError(
            f"workspace {workspace.name!r} is on the server {workspace.server}: deploying "
            "services of a server's workspace is not built yet; deploy from an embedded "
            "workspace (a folder on this machine)"
        )
    root = workspace.folder / SERVICES_FOLDER
    make_private_folder(root)
    return root


def new_key() -> str:
    return secrets.token_urlsafe(32)


class Webservice:
    """A recorded scoring service of a workspace (v1's ``Webservice``): ``Webservice(ws,
    name)`` finds it, WebserviceException when there is none.

    Example::

        service = Webservice(ws, "tf-mnist-svc")
        service.state             # 'Healthy'
        service.scoring_uri       # 'http://127.0.0.1:6789/score'
    """

    def __init__(self, workspace: Workspace, name: str) -> None:
        check_name("name", name)
        self._workspace = workspace
        self._name = name
        self._folder = services_root(workspace) / name
        self._record_path = services_root(workspace) / f"{name}.json"
        self._record: dict[str, Any] = {}
        self.reload()

    # -- the record -----------------------------------------------------------------------

    def reload(self) -> None:
        """Read the service's record again (WebserviceException when it was deleted)."""
        try:
            self._record = json.loads(self._record_path.read_text())
        except FileNotFoundError:
            raise WebserviceException(
                f"there is no service {self._name!r} in workspace {self._workspace.name!r}; "
                "Webservice.list(ws) (modelyard service list) shows those there are"
            ) from None

    def _save(self) -> None:
        write_private_file(self._record_path, json.dumps(self._record, indent=2).encode())

    @classmethod
    def list(
        cls,
        workspace: Workspace,
        compute_type: str | None = None,
        model_name: str | None = None,
        tags: builtins.list[str] | None = None,
    ) -> builtins.list[Webservice]:
        """The workspace's services, by name; as v1, only those of ``compute_type`` (``Local``
        or ``ACI``), serving a version of ``model_name``, or with all the tag keys ``tags``.

        Example::

            Webservice.list(ws, model_name="tf-dnn-mnist")
        """
        root = services_root(workspace)
        found = [cls(workspace, path.stem) for path in sorted(root.glob("*.json"))]
        return [
            service
            for service in found
            if (compute_type is None or service.compute_type.lower() == compute_type.lower())
            and (model_name is None or any(m.split(":")[0] == model_name for m in service.models))
            and all(key in service.tags for key in tags or [])
        ]

    @property
    def name(self) -> str:
        return self._name

    @property
    def workspace(self) -> Workspace:
        return self._workspace

    @property
    def compute_type(self) -> str:
        return str(self._record["kind"])

    @property
    def compute_target_name(self) -> str | None:
        """The Ray cluster compute target the service runs on (None: this machine)."""
        compute = self._record.get("compute")
        return None if compute is None else str(compute["name"])

    @property
    def port(self) -> int:
        """The port of the service (on a cluster: of Ray Serve's proxy, shared by the
        cluster's services)."""
        return int(self._record["port"])

    def _base_url(self) -> str:
        compute = self._record.get("compute")
        if compute is None:
            return f"http://{HOST}:{self.port}"
        return f"http://{compute['host']}:{self.port}/{self._name}"

    @property
    def scoring_uri(self) -> str:
        return f"{self._base_url()}/score"

    @property
    def swagger_uri(self) -> str:
        return f"{self._base_url()}/swagger.json"

    @property
    def models(self) -> builtins.list[str]:
        """The deployed models as ``name:version``."""
        return builtins.list(self._record["models"])

    @property
    def auth_enabled(self) -> bool:
        return bool(self._record["config"]["auth_enabled"])

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._record["config"].get("tags") or {})

    @property
    def created_time(self) -> datetime:
        return datetime.fromisoformat(self._record["created"])

    def _health_url(self) -> str:
        return f"{self._base_url()}/"

    def _process_running(self) -> bool:
        pid = self._record.get("pid")
        return isinstance(pid, int) and service_running(pid, self._record.get("start_time"))

    @property
    def state(self) -> str:
        """Transitioning (starting), Healthy (answering), Unhealthy (its process is gone or
        does not answer: ``start()`` starts it again) or Failed (its start failed: see
        ``get_logs()``). On a cluster: Ray Serve's status of the application (Healthy when
        RUNNING, Transitioning while DEPLOYING, Failed when DEPLOY_FAILED, Unhealthy
        otherwise, or when the application or the cluster is gone)."""
        if self.compute_target_name is not None:
            try:
                application = self._cluster().call("status", {"app": self._name})
            except ConfigError:
                return UNHEALTHY
            return _serve_state(application["application"])
        if self._record["state"] == FAILED or self._failed_file().exists():
            return FAILED
        if not self._process_running():
            return UNHEALTHY
        if answers(self._health_url()):
            return HEALTHY
        return TRANSITIONING if self._record["state"] == TRANSITIONING else UNHEALTHY

    def _failed_file(self) -> Path:
        return self._folder / "init_failed.txt"

    def _log_path(self) -> Path:
        return self._folder / "service.log"

    def _cluster(self) -> ServeCluster:
        name = self.compute_target_name
        assert name is not None
        return ServeCluster.find(self._workspace.folder, self._workspace._backend, name)

    def get_logs(self, num_lines: int = 5000) -> str:
        """The service's output (uvicorn's and the entry script's), the last ``num_lines``.
        On a cluster: Serve's message when the application is not running, then each
        replica's stdout and stderr (the entry script's prints and tracebacks, Serve's line
        per request), read from the replica's node, the last ``num_lines`` lines of each."""
        if self.compute_target_name is not None:
            request = {
                "app": self._name,
                "lines": num_lines,
                "earlier": self._record.get("earlier_replicas", []),
            }
            return str(self._cluster().call("logs", request)["text"])
        try:
            text = self._log_path().read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-num_lines:])

    # -- the process ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the service's process again (after a reboot, once it ended, or when it no
        longer answers); a healthy service is left as it is. Waits until it is healthy."""
        if self.state == HEALTHY:
            return
        if self.compute_target_name is not None:
            self._launch()
            self.wait_for_deployment()
            return
        # What is left of the last one: a group still ending, or a process that no longer
        # answers.
        self._stop_process()
        wait_port_free(HOST, self.port)
        self._failed_file().unlink(missing_ok=True)
        self._launch()
        self.wait_for_deployment()

    def _launch(self) -> None:
        if self.compute_target_name is not None:
            self._deploy_on_cluster()
            return
        config = self._record["config"]
        spec = JobSpec(
            script=self._record["entry_script"],
            pip_packages=[*self._record["pip_packages"], *SERVING_REQUIREMENTS],
            conda_packages=self._record["conda_packages"],
            python_version=self._record["python_version"],
            python_path=self._record["python_path"],
            inherit_base_packages=self._record["inherit_base_packages"],
            environment_variables=self._record["environment_variables"],
        )
        with open(self._log_path(), "a") as log:
            try:
                preparation = prepare_environment(
                    spec, log=lambda text: _write(log, text), poll=_nothing, on_process=_ignore
                )
            except EnvironmentBuildError as error:
                raise ConfigError(f"the service's environment cannot be built: {error}") from None
        models = self._folder / "models"
        names = self._record["models"]
        model_dir = models / names[0].replace(":", "/") if len(names) == 1 else models
        env = run_process_environment(
            os.environ, {**self._record["environment_variables"], **preparation.variables}
        )
        env.update({"PYTHONUNBUFFERED": "1", V1_MODEL_DIR_ENV: str(model_dir)})
        settings = ServiceSettings(
            entry_script=str(self._folder / "source" / self._record["entry_script"]),
            source_directory=str(self._folder / "source"),
            model_dir=str(model_dir),
            host=HOST,
            port=self.port,
            workers=int(config["workers"]),
            max_request_bytes=int(config["max_request_bytes"]),
            keys_file=str(self._keys_path()) if config["auth_enabled"] else None,
            failed_file=str(self._failed_file()),
            cpu_cores=config.get("cpu_cores"),
            memory_gb=config.get("memory_gb"),
        )
        settings.write(self._folder / "runtime.json")
        # A built environment is leased while the service runs, so that pruning the cache
        # does not remove it from under the service: the service process holds the lease.
        lease = preparation.lease
        try:
            pid = start_service(
                preparation.python,
                self._folder / "runtime.json",
                self._log_path(),
                env,
                pass_fds=[lease.fileno()] if lease is not None else [],
            )
        finally:
            if lease is not None:
                lease.close()
        self._record.update(state=TRANSITIONING, pid=pid, start_time=start_time(pid))
        self._save()

    def _deploy_on_cluster(self) -> None:
        """Deploy (or deploy again) the service's folder as its Serve application."""
        cluster = self._cluster()
        # Digests only: the keys themselves stay on this machine.
        keys = [key_digest(key).hex() for key in self.get_keys()] if self.auth_enabled else []
        request = deploy_request(cluster, self._name, self._folder, self._record, keys)
        answer = cluster.call("deploy", request)
        self._record.update(
            earlier_replicas=answer["earlier"],
            state=TRANSITIONING,
            port=int(answer["port"]),
            compute={"name": cluster.name, "address": cluster.address, "host": cluster.host},
        )
        self._save()

    def _wait_on_cluster(self, show_output: bool, timeout_sec: float) -> None:
        def shown(line: dict[str, Any]) -> None:
            if show_output:
                print(f"{self._name}: {_serve_state(line['application'])}", flush=True)

        result = self._cluster().call(
            "wait",
            {"app": self._name, "timeout": timeout_sec},
            on_line=shown,
            timeout=timeout_sec + CONTROL_TIMEOUT_S,
        )
        application = result["application"]
        state = _serve_state(application)
        self._record["state"] = state
        self._save()
        if state == HEALTHY:
            return
        said = (application or {}).get("message") or "(Ray Serve gave no message)"
        if state == TRANSITIONING:
            raise WebserviceException(
                f"service {self._name!r} is still Transitioning on compute target "
                f"{self.compute_target_name!r} after {timeout_sec:.0f} s; Ray Serve says:\n"
                f"{said}\nIt goes on deploying: wait again, or service.delete() it"
            )
        where = "it is not on the cluster any more" if application is None else said
        raise WebserviceException(
            f"service {self._name!r} failed to deploy on compute target "
            f"{self.compute_target_name!r}: {where}\nservice.get_logs() has its replicas' logs"
        )

    def wait_for_deployment(
        self, show_output: bool = False, timeout_sec: float | None = None
    ) -> None:
        """Wait until the service answers; WebserviceException (with its log) when it fails.
        ``show_output`` prints the state as it changes. On a cluster, the exception has Ray
        Serve's message: ``init()``'s traceback, or the resources a replica waits for."""
        if self.compute_target_name is not None:
            self._wait_on_cluster(show_output, timeout_sec or START_TIMEOUT_S)
            return
        deadline = time.monotonic() + (timeout_sec or START_TIMEOUT_S)
        shown = None
        while True:
            state = self.state
            if show_output and state != shown:
                print(f"{self._name}: {state}", flush=True)
                shown = state
            if state == HEALTHY:
                self._record["state"] = HEALTHY
                self._save()
                return
            if state in (FAILED, UNHEALTHY) or time.monotonic() > deadline:
                self._stop_process()
                self._record["state"] = FAILED
                self._save()
                reason = (
                    self._failed_file().read_text(errors="replace")
                    if self._failed_file().exists()
                    else f"it ended or did not answer on {self._health_url()}"
                )
                raise WebserviceException(
                    f"service {self._name!r} failed to start: {reason}\n"
                    f"Its last lines (service.get_logs()):\n{self.get_logs(30)}"
                )
            time.sleep(0.2)

    def _stop_process(self) -> None:
        pid = self._record.get("pid")
        started = self._record.get("start_time")
        # A pid now held by a process that started at another time is not the service's (after
        # a reboot, say): its group is someone else's. A free pid may still lead the service's
        # group (workers outliving their supervisor): that group is stopped.
        if (
            isinstance(pid, int)
            and not is_reused(pid, started)
            and (service_running(pid, started) or group_alive(pid))
        ):
            stop_group(pid)
        self._record["pid"] = None

    def delete(self) -> None:
        """Stop the service and remove it and its files; deleting again is not an error. On a
        cluster its Serve application is deleted (and Serve itself, when no other
        application is left); a cluster that is gone has nothing left to delete."""
        if self._record_path.exists() and self.compute_target_name is not None:
            try:
                cluster = self._cluster()
            except ConfigError:
                pass  # the compute target was deleted or does not run: nothing of it is left
            else:
                cluster.call("delete", {"app": self._name})
        elif self._record_path.exists():
            self._stop_process()
        self._record_path.unlink(missing_ok=True)
        shutil.rmtree(self._folder, ignore_errors=True)

    # -- scoring --------------------------------------------------------------------------

    def run(self, input_data: str | bytes | dict[str, Any] | builtins.list[Any]) -> Any:
        """Score ``input_data`` (a JSON string, or what JSON can hold) and return the
        service's answer; WebserviceException with the service's message on an error."""
        body = (
            input_data.encode()
            if isinstance(input_data, str)
            else input_data
            if isinstance(input_data, bytes)
            else json.dumps(input_data).encode()
        )
        headers = {"Content-Type": "application/json"}
        if self.auth_enabled:
            headers["Authorization"] = f"Bearer {self.get_keys()[0]}"
        request = urllib.request.Request(self.scoring_uri, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise WebserviceException(
                f"service {self._name!r} answered {error.code}: {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            raise WebserviceException(
                f"service {self._name!r} does not answer on {self.scoring_uri} ({error}); "
                f"its state is {self.state}: service.start() starts it again"
            ) from None

    # -- keys -----------------------------------------------------------------------------

    def _keys_path(self) -> Path:
        return self._folder / "keys.json"

    def get_keys(self) -> tuple[str, str]:
        """The primary and secondary keys (``auth_enabled=True`` services only)."""
        if not self.auth_enabled:
            raise ConfigError(
                f"service {self._name!r} has no keys: deploy it with auth_enabled=True"
            )
        keys = json.loads(self._keys_path().read_text())
        return keys["primary"], keys["secondary"]

    def regen_key(self, key: str) -> None:
        """Replace the ``Primary`` or ``Secondary`` key; the service takes the new one from
        its next request on."""
        if key not in ("Primary", "Secondary"):
            raise ValidationError("key", f"{key!r}: give 'Primary' or 'Secondary'")
        primary, secondary = self.get_keys()
        if key == "Primary":
            primary = new_key()
        else:
            secondary = new_key()
        write_keys(self._keys_path(), primary, secondary)
        if self.compute_target_name is not None:
            # The replicas get the keys' digests as their user_config: deployed again, they
            # take the new one.
            self._launch()
            self.wait_for_deployment()

    # -- changing -------------------------------------------------------------------------

    def update(self, models: Sequence[Model] | None = None, **_: Any) -> None:
        """Serve ``models`` instead: their files are copied, the process restarted."""
        if models is not None and self.compute_target_name is not None:
            copy_models(self._folder / "models", models)
            self._record["models"] = [model.id for model in models]
            self._launch()
            self.wait_for_deployment()
        elif models is not None:
            self._stop_process()
            copy_models(self._folder / "models", models)
            self._record["models"] = [model.id for model in models]
            self._record["state"] = TRANSITIONING
            self._failed_file().unlink(missing_ok=True)
            wait_port_free(HOST, self.port)
            self._launch()
            self.wait_for_deployment()

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self._name,
            "computeType": self.compute_type,
            "state": self.state,
            "scoringUri": self.scoring_uri,
            "models": self.models,
            "authEnabled": self.auth_enabled,
            "computeTarget": self.compute_target_name,
            "createdTime": self._record["created"],
        }

    def __repr__(self) -> str:
        return (
            f"Webservice(workspace={self._workspace.name!r}, name={self._name!r}, "
            f"state={self.state!r}, scoring_uri={self.scoring_uri!r})"
        )


def _serve_state(application: dict[str, Any] | None) -> str:
    """A service's state from Ray Serve's status of its application (None: not there)."""
    status = None if application is None else application["status"]
    if status == "RUNNING":
        return HEALTHY
    if status in ("DEPLOYING", "NOT_STARTED"):
        return TRANSITIONING
    if status == "DEPLOY_FAILED":
        return FAILED
    return UNHEALTHY


def _write(log: IO[str], text: str) -> None:
    log.write(text)
    log.flush()


def _nothing() -> None:
    """Nothing stops an environment build of a service but its failure."""


def _ignore(group: int | None) -> None:
    """The build's steps end with it: no process group to remember."""


def write_keys(path: Path, primary: str, secondary: str) -> None:
    write_private_file(path, json.dumps({"primary": primary, "secondary": secondary}).encode())


def copy_models(models_folder: Path, models: Sequence[Model]) -> None:
    """Each model's files into ``models/<name>/<version>/`` (where get_model_path and
    ``AZUREML_MODEL_DIR`` find them), through the workspace's backend."""
    shutil.rmtree(models_folder, ignore_errors=True)
    for model in models:
        model.download(models_folder / model.name / str(model.version), exist_ok=True)


__all__ = ["Webservice", "WebserviceException"]
