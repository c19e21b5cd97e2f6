"""``Model.deploy``: check a deployment, copy its models and source into the service's folder,
record the service and start it (on this machine, or on a Ray cluster with Ray Serve).

Checks come first (the name, the entry script, the port, the environment, what a cluster can
hold), so bad input leaves nothing behind; :mod:`modelyard.webservice` is the service from
then on.

Example::

    service = deploy(ws, "svc", [model], inference_config,
                     LocalWebservice.deploy_configuration(port=6789))
    service.wait_for_deployment()
"""

from __future__ import annotations

import builtins
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.compute.ray.serving import (
    ServeCluster,
    check_cluster_environment,
    check_cluster_fits,
)
from modelyard.environment import run_environment
from modelyard.errors import ConfigError, ConflictError, ValidationError
from modelyard.hosts import free_port
from modelyard.names import check_name
from modelyard.serving.configuration import DeploymentConfiguration
from modelyard.serving.entry_script import check_entry_script
from modelyard.serving.process import check_port_free
from modelyard.store.private import make_private_folder, write_private_file
from modelyard.webservice.local import LocalWebservice
from modelyard.webservice.webservice import (
    HOST,
    TRANSITIONING,
    Webservice,
    cluster_name,
    copy_models,
    new_key,
    services_root,
    write_keys,
)

if TYPE_CHECKING:
    from modelyard.model import InferenceConfig, Model
    from modelyard.workspace import Workspace


def deploy(
    workspace: Workspace,
    name: str,
    models: Sequence[Model],
    inference_config: InferenceConfig,
    deployment_config: DeploymentConfiguration | None = None,
    overwrite: bool = False,
    deployment_target: object = None,
) -> Webservice:
    """``Model.deploy``: record the service and start it (Transitioning); call
    ``wait_for_deployment()`` to wait until it answers. Checks come first, so bad input
    leaves nothing behind. ``deployment_target`` (v1's place for an AKS cluster) is the same
    as the configuration's ``compute_target``."""
    check_name("name", name)
    config = deployment_config or LocalWebservice.deploy_configuration()
    if not isinstance(config, DeploymentConfiguration):
        raise ValidationError(
            "deployment_config",
            f"expected LocalWebservice.deploy_configuration(...), not {type(config).__name__}",
        )
    if deployment_target is not None:
        if config.kind == "Local":
            raise ConfigError(
                "deployment_target: a LocalWebservice runs on this machine; deploy onto a "
                "cluster with AksWebservice.deploy_configuration()"
            )
        config = replace(config, compute_target=cluster_name(deployment_target))
    cluster = (
        ServeCluster.find(workspace.folder, workspace._backend, config.compute_target)
        if config.compute_target is not None
        else None
    )
    models = builtins.list(models)
    if not models:
        raise ValidationError("models", "give at least one registered Model to deploy")
    root = services_root(workspace)
    record_path = root / f"{name}.json"
    if record_path.exists():
        if not overwrite:
            raise ConflictError(
                f"a service {name!r} exists already; pass overwrite=True to replace it, or "
                "choose another name"
            )
        Webservice(workspace, name).delete()
    source, entry = inference_config._source()
    check_entry_script(source / entry if source else Path(entry))
    port: int | None = None
    if cluster is None:
        port = config.port if config.port else free_port(HOST)
        check_port_free(HOST, port)
    packages = run_environment(
        inference_config.environment, pip_packages=[], pip_requirements_file=None, conda_packages=[]
    )
    if cluster is not None:
        check_cluster_environment(
            cluster.name,
            packages.pip_packages,
            packages.conda_packages,
            packages.python_version,
            packages.python_path,
        )
        check_cluster_fits(cluster, asdict(config))
    folder = root / name
    shutil.rmtree(folder, ignore_errors=True)
    make_private_folder(folder)
    try:
        if source is not None:
            shutil.copytree(
                source,
                folder / "source",
                ignore=shutil.ignore_patterns(".modelyard", "__pycache__", ".git"),
            )
        else:
            (folder / "source").mkdir()
            shutil.copy2(entry, folder / "source" / Path(entry).name)
            entry = Path(entry).name
        copy_models(folder / "models", models)
        if config.auth_enabled:
            write_keys(folder / "keys.json", new_key(), new_key())
        record = {
            "name": name,
            "kind": config.kind,
            "models": [model.id for model in models],
            "entry_script": entry,
            "config": asdict(config) | {"port": port},
            "port": port,
            **({"compute": {"name": cluster.name}} if cluster is not None else {}),
            "pip_packages": packages.pip_packages,
            "conda_packages": packages.conda_packages,
            "python_version": packages.python_version,
            "python_path": packages.python_path,
            "inherit_base_packages": packages.inherit_base_packages,
            "environment_variables": packages.environment_variables,
            "environment": packages.name,
            "created": datetime.now(UTC).isoformat(),
            "state": TRANSITIONING,
            "pid": None,
            "start_time": None,
        }
        write_private_file(record_path, json.dumps(record, indent=2).encode())
        service = Webservice(workspace, name)
        service._launch()
    except BaseException:
        if record_path.exists():
            Webservice(workspace, name).delete()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return service
