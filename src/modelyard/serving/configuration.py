"""How a deployed service is served: the settings ``deploy_configuration(...)`` returns.

Example::

    config = DeploymentConfiguration(port=6789, workers=2)
    config.check()          # ValidationError naming a bad field

With ``compute_target`` (a cluster compute target's name) the service is a Ray Serve
application on that cluster: ``num_replicas`` replicas, or between ``autoscale_min_replicas``
and ``autoscale_max_replicas`` with ``autoscale_enabled``; ``port`` and ``workers`` are then
not used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.errors import ValidationError
from modelyard.serving.settings import DEFAULT_MAX_REQUEST_BYTES
from modelyard.tensorboard.process import check_port_number


@dataclass
class DeploymentConfiguration:
    """How a service is served: ``LocalWebservice.deploy_configuration(...)`` or
    ``AciWebservice.deploy_configuration(...)`` make one."""

    port: int | None = None
    workers: int = 1
    auth_enabled: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    cpu_cores: float | None = None
    memory_gb: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    kind: str = "Local"
    compute_target: str | None = None
    num_replicas: int = 1
    autoscale_enabled: bool = False
    autoscale_min_replicas: int = 1
    autoscale_max_replicas: int = 10
    autoscale_target_utilization: int = 70  # percent of replica_max_concurrent_requests
    replica_max_concurrent_requests: int = 1

    def check(self) -> None:
        if self.port is not None:
            check_port_number(self.port)
        if isinstance(self.workers, bool) or not isinstance(self.workers, int):
            raise ValidationError("workers", f"{self.workers!r} is not a number of workers")
        if not 1 <= self.workers <= 64:
            raise ValidationError("workers", f"{self.workers} workers: give 1 to 64")
        for name in ("cpu_cores", "memory_gb"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
            ):
                raise ValidationError(name, f"{value!r}: give a positive number, or None")
        if not isinstance(self.max_request_bytes, int) or self.max_request_bytes < 1:
            raise ValidationError(
                "max_request_bytes", f"{self.max_request_bytes!r}: give a positive byte count"
            )
        for name in ("cpu_cores", "memory_gb"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise ValidationError(name, f"{value!r}: give a positive number")
        for name in (
            "num_replicas",
            "autoscale_min_replicas",
            "autoscale_max_replicas",
            "replica_max_concurrent_requests",
        ):
            _at_least_one(name, getattr(self, name))
        if self.autoscale_min_replicas > self.autoscale_max_replicas:
            raise ValidationError(
                "autoscale_min_replicas",
                f"{self.autoscale_min_replicas} is more than autoscale_max_replicas="
                f"{self.autoscale_max_replicas}: give a minimum no greater than the maximum",
            )
        utilization = self.autoscale_target_utilization
        if isinstance(utilization, bool) or not isinstance(utilization, int):
            raise ValidationError("autoscale_target_utilization", f"{utilization!r}: give 1-100")
        if not 1 <= utilization <= 100:
            raise ValidationError("autoscale_target_utilization", f"{utilization}: give 1-100")


def _at_least_one(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(name, f"{value!r}: give a whole number of at least 1")
