"""v1's ``azureml.core.webservice.local``: a service on this machine.

Example::

    from modelyard.webservice.local import LocalWebservice

    config = LocalWebservice.deploy_configuration(port=6789, workers=2)
"""

from __future__ import annotations

from modelyard.errors import ConfigError
from modelyard.serving.configuration import DeploymentConfiguration
from modelyard.serving.settings import DEFAULT_MAX_REQUEST_BYTES
from modelyard.webservice.webservice import Webservice, deployment_configuration


class LocalWebservice(Webservice):
    """v1's local service; ``deploy_configuration`` is its settings."""

    @staticmethod
    def deploy_configuration(
        port: int | None = None,
        workers: int = 1,
        auth_enabled: bool = False,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        compute_target: object = None,
    ) -> DeploymentConfiguration:
        """Serve on ``port`` of 127.0.0.1 (None: a free one) with ``workers`` processes.

        Example::

            LocalWebservice.deploy_configuration(port=6789, workers=2)
        """
        if compute_target is not None:
            raise ConfigError(
                "a LocalWebservice runs on this machine and has no compute target (as in "
                "v1): to deploy onto a Ray cluster use AksWebservice.deploy_configuration("
                "compute_target=...) or AciWebservice.deploy_configuration(compute_target=...)"
            )
        return deployment_configuration(
            "Local",
            None,
            port=port,
            workers=workers,
            auth_enabled=auth_enabled,
            max_request_bytes=max_request_bytes,
        )


__all__ = ["LocalWebservice"]
