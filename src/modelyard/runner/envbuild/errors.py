"""The one error of environment preparation, turned into the run's failure by the supervisor."""

from __future__ import annotations

from typing import Any

from modelyard.errors import ModelyardError


class EnvironmentBuildError(ModelyardError):
    """An environment could not be prepared. ``field`` names the setting at fault when one
    is (``python_version``, ``conda_packages``...); ``output_tail`` holds the installer's last
    lines when it failed."""

    code = "environment_build_failed"

    def __init__(self, message: str, field: str | None = None, output_tail: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.output_tail = output_tail

    def details(self) -> dict[str, Any]:
        """The run's error record."""
        error: dict[str, Any] = {"message": str(self), "build_log": BUILD_LOG}
        if self.field is not None:
            error["field"] = self.field
        if self.output_tail:
            error["installer_output_tail"] = self.output_tail
        return error


# Where a run's build log lives among its files.
BUILD_LOG = "system_logs/environment_build.txt"
