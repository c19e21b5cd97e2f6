"""Finding the run a script executes in, and the offline run used outside one.

A script written for modelyard calls ``Run.get_context()``. Started by modelyard, it gets its
real run; started by hand (``python train.py``), it gets an :class:`OfflineRun` that keeps what
it logs in memory and prints it, so the same script works in both places.

Example::

    run = Run.get_context()
    run.log("accuracy", 0.93)      # offline: prints "Attempted to log scalar metric accuracy: 0.93"
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from modelyard.errors import ValidationError
from modelyard.metrics import check_scalar, check_step, list_of_scalars
from modelyard.names import check_metric_name, check_tag_key, check_tags, clean_relpath

if TYPE_CHECKING:
    from collections.abc import Iterable


class OfflineRun:
    """A run that is not stored anywhere: it prints each call and keeps metrics in memory."""

    def __init__(self) -> None:
        self.id = f"OfflineRun_{uuid.uuid4()}"
        self.number = 0
        self.display_name = self.id
        self.parent = None
        self._metrics: dict[str, list[Any]] = {}
        self._tags: dict[str, str] = {}
        self._properties: dict[str, str] = {}

    def _record(self, kind: str, name: str, value: Any) -> None:
        check_metric_name("name", name)
        self._metrics.setdefault(name, []).append(value)
        print(f"Attempted to log {kind} metric {name}:\n{value}")

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        if step is not None:
            check_step(name, step)
        self._record("scalar", name, check_scalar(name, value))

    def log_list(self, name: str, value: Iterable[Any], description: str = "") -> None:
        self._record("list", name, list_of_scalars(name, value))

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        self._record("row", name, kwargs)

    def log_table(self, name: str, value: dict[str, list[Any]], description: str = "") -> None:
        self._record("table", name, value)

    def log_image(
        self, name: str, path: str | None = None, plot: Any = None, description: str = ""
    ) -> None:
        self._record("image", name, path if path is not None else "<plot>")

    def get_metrics(
        self, name: str | None = None, recursive: bool = False, process: int | None = None
    ) -> dict[str, Any]:
        """What this process logged (an offline run is one process)."""
        shaped = {k: (v[0] if len(v) == 1 else list(v)) for k, v in self._metrics.items()}
        return shaped if name is None else {k: v for k, v in shaped.items() if k == name}

    def tag(self, key: str, value: str | None = None) -> None:
        self._tags.update(check_tags("key", {key: value}))
        print(f"Attempted to tag the run: {key}={value}")

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._tags.update(check_tags("tags", tags))
        print(f"Attempted to set tags: {tags}")

    def get_tags(self) -> dict[str, str]:
        return dict(self._tags)

    def add_properties(self, properties: dict[str, Any]) -> None:
        self._properties.update(check_tags("properties", properties))
        print(f"Attempted to add properties: {properties}")

    def get_properties(self) -> dict[str, str]:
        return dict(self._properties)

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._properties)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._tags)

    def upload_file(self, name: str, path_or_stream: str | os.PathLike[str] | IO[bytes]) -> None:
        print(f"Attempted to upload file {clean_relpath('name', name)} from {path_or_stream}")

    def upload_folder(self, name: str, path: str | os.PathLike[str]) -> None:
        print(f"Attempted to upload folder {clean_relpath('name', name)} from {Path(path)}")

    def child_run(self, name: str | None = None, run_id: str | None = None) -> OfflineRun:
        return OfflineRun()

    def create_children(
        self,
        count: int | None = None,
        tag_key: str | None = None,
        tag_values: Iterable[Any] | None = None,
    ) -> list[OfflineRun]:
        """Offline children, tagged as :meth:`Run.create_children` tags them."""
        values = list(tag_values) if tag_values is not None else None
        if values is not None:
            check_tag_key("tag_key", tag_key)
        elif count is None:
            raise ValidationError("count", "give count, or tag_key and tag_values")
        children = [OfflineRun() for _ in range(count if count is not None else len(values or []))]
        for child, value in zip(children, values or [], strict=False):
            child._tags.update(check_tags("tag_values", {tag_key: value}))
        print(f"Attempted to create {len(children)} child runs")
        return children

    def get_status(self) -> str:
        return "Running"

    def flush(self) -> None:
        """Nothing to save offline."""

    def complete(self) -> None:
        print("Attempted to complete the offline run")

    def fail(self, error_details: Any = None, error_code: str | None = None) -> None:
        print(f"Attempted to fail the offline run: {error_details}")

    def __repr__(self) -> str:
        return f"OfflineRun(id={self.id!r})"
