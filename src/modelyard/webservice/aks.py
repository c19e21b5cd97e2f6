"""v1's ``azureml.core.webservice.aks``: a Kubernetes service's settings, as replicas of a Ray
Serve application on a cluster, or the local service's workers without one.

Example::

    from modelyard.webservice.aks import AksWebservice

    config = AksWebservice.deploy_configuration(compute_target=cluster, num_replicas=2)
"""

from __future__ import annotations

from typing import Any

from modelyard.errors import ValidationError
from modelyard.serving.configuration import DeploymentConfiguration
from modelyard.serving.settings import DEFAULT_MAX_REQUEST_BYTES
from modelyard.webservice.webservice import Webservice, deployment_configuration


class AksWebservice(Webservice):
    """v1's Kubernetes service: with ``compute_target`` replicas on a Ray cluster (a Ray
    Serve application), without it the local service."""

    @staticmethod
    def deploy_configuration(
        autoscale_enabled: bool | None = None,
        autoscale_min_replicas: int | None = None,
        autoscale_max_replicas: int | None = None,
        autoscale_target_utilization: int | None = None,
        auth_enabled: bool | None = None,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        replica_max_concurrent_requests: int | None = None,
        num_replicas: int | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        compute_target: object = None,
        port: int | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        **_: Any,
    ) -> DeploymentConfiguration:
        """v1's AKS settings (the rest of v1's arguments are accepted and not used).

        - on a cluster (``compute_target``, an AmlCompute): ``num_replicas`` replicas of
          ``cpu_cores`` (default 0.1) and ``memory_gb`` (default 0.5) each, or, with
          ``autoscale_enabled``, Ray Serve's autoscaling between ``autoscale_min_replicas``
          (default 1) and ``autoscale_max_replicas`` (default 10), keeping each replica at
          ``autoscale_target_utilization`` percent (default 70) of
          ``replica_max_concurrent_requests`` (default 1);
        - without one, on this machine: the local service with a worker process per replica
          (``num_replicas``; when autoscaling, ``autoscale_max_replicas`` workers, which do
          not scale), limited to the replicas' ``cpu_cores`` and ``memory_gb`` together.

        As in v1, ``autoscale_enabled`` defaults to True unless ``num_replicas`` is given,
        and ``auth_enabled`` to True.

        Example::

            AksWebservice.deploy_configuration(compute_target=cluster, num_replicas=2,
                                               cpu_cores=0.5, memory_gb=0.5)
        """
        if autoscale_enabled is None:
            autoscale_enabled = num_replicas is None
        if autoscale_enabled and num_replicas is not None:
            raise ValidationError(
                "num_replicas",
                "give num_replicas or autoscale_enabled=True (with autoscale_min_replicas and "
                "autoscale_max_replicas), not both",
            )
        low = 1 if autoscale_min_replicas is None else autoscale_min_replicas
        high = 10 if autoscale_max_replicas is None else autoscale_max_replicas
        replicas = 1 if num_replicas is None else num_replicas
        values: dict[str, Any] = {
            "cpu_cores": cpu_cores,
            "memory_gb": memory_gb,
            "tags": dict(tags or {}),
            "description": description,
            "auth_enabled": True if auth_enabled is None else auth_enabled,
            "port": port,
            "max_request_bytes": max_request_bytes,
            "num_replicas": replicas,
            "autoscale_enabled": autoscale_enabled,
            "autoscale_min_replicas": low,
            "autoscale_max_replicas": high,
            "autoscale_target_utilization": 70
            if autoscale_target_utilization is None
            else autoscale_target_utilization,
            "replica_max_concurrent_requests": 1
            if replica_max_concurrent_requests is None
            else replica_max_concurrent_requests,
        }
        if compute_target is None:
            # Checked as replicas first, so that a bad count is named as the caller gave it.
            DeploymentConfiguration(**values).check()
            workers = high if autoscale_enabled else replicas
            values["workers"] = workers
            # The replicas are one service's workers here: its limits are theirs together.
            for name in ("cpu_cores", "memory_gb"):
                if values[name] is not None:
                    values[name] = values[name] * workers
        return deployment_configuration("AKS", compute_target, **values)


__all__ = ["AksWebservice"]
