"""How a deployed service is served: the settings ``deploy_configuration(...)`` returns.

Example::

    config = DeploymentConfiguration(port=6789, workers=2)
    config.check()          # ValidationError naming a bad field
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
