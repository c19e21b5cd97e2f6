"""v1's ``azureml.core.webservice.aci``: a container instance's settings, served on this machine
with its CPU and memory as limits, or as one replica on a Ray cluster.

Example::

    from modelyard.webservice.aci import AciWebservice

    config = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, auth_enabled=True)
"""

from __future__ import annotations

from typing import Any

from modelyard.serving.configuration import DeploymentConfiguration
from modelyard.webservice.webservice import Webservice, deployment_configuration


class AciWebservice(Webservice):
    """v1's container-instance service: here the same local service, with its CPU and memory
    as limits (:mod:`modelyard.serving.limits`)."""

    @staticmethod
    def deploy_configuration(
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        auth_enabled: bool = False,
        port: int | None = None,
        workers: int = 1,
        compute_target: object = None,
        **_: Any,
    ) -> DeploymentConfiguration:
        """v1's ACI settings; the service runs on this machine (``cpu_cores`` and
        ``memory_gb`` as its limits), or with ``compute_target`` (an AmlCompute) as one replica
        of that size on the Ray cluster.

        Example::

            AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, auth_enabled=True)
        """
        return deployment_configuration(
            "ACI",
            compute_target,
            cpu_cores=cpu_cores,
            memory_gb=memory_gb,
            tags=dict(tags or {}),
            description=description,
            auth_enabled=auth_enabled,
            port=port,
            workers=workers,
        )


__all__ = ["AciWebservice"]
