"""A reference to data in a datastore, which a run sees as a local path.

A :class:`DataReference` names a datastore, a path in it and how a run gets at it: ``mount``
(read in place), ``download`` (copied to the compute first) or ``direct`` (the datastore URL
itself, for code that reads fsspec URLs). It is what ``ds.as_mount()``, ``ds.as_download()`` and
``ds.path()`` return, and what estimators take in ``script_params``, as in the v1 SDK.

It holds names only, never an open connection, so it travels inside a run's configuration:
:meth:`~DataReference.to_config` gives a JSON-ready dict and :meth:`~DataReference.from_config`
reads it back. The run supervisor turns each reference into a local path and exports it as the
environment variable ``MODELYARD_DATAREFERENCE_<name>``; ``str(ref)`` is the ``$`` form of that
variable (``$MODELYARD_DATAREFERENCE_mnist``), like v1's ``$AZUREML_DATAREFERENCE_...``, so a
reference placed in a command line becomes the path when the line is expanded.

Example::

    ref = ws.get_default_datastore().path("mnist").as_download(path_on_compute="data")
    ref.to_config()
    # {'data_reference_name': 'workspaceblobstore', 'datastore_name': 'workspaceblobstore',
    #  'path_on_datastore': 'mnist', 'mode': 'download', 'path_on_compute': 'data',
    #  'overwrite': False}
    str(ref)                 # '$MODELYARD_DATAREFERENCE_workspaceblobstore'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.errors import ValidationError
from modelyard.names import check_name, clean_relpath, join_relpath

if TYPE_CHECKING:
    from modelyard.datastore import Datastore

MOUNT = "mount"
DOWNLOAD = "download"
DIRECT = "direct"
MODES = (MOUNT, DOWNLOAD, DIRECT)

ENV_PREFIX = "MODELYARD_DATAREFERENCE_"

_CONFIG_KEYS = (
    "data_reference_name",
    "datastore_name",
    "path_on_datastore",
    "mode",
    "path_on_compute",
    "overwrite",
)


class DataReference:
    """Data in a datastore, as a run will see it; see the module docstring.

    ``datastore`` is a :class:`~modelyard.datastore.Datastore` or a datastore's name.
    ``data_reference_name`` defaults to the datastore's name (as in v1); give distinct names
    when one run uses two paths of one datastore. ``path_on_datastore`` None or ``""`` means
    the datastore's root. ``path_on_compute`` is relative to the run's working folder; None
    lets the supervisor choose. ``overwrite`` says whether a download may replace files that
    exist at ``path_on_compute``.

    Example::

        ref = DataReference(ds, path_on_datastore="mnist", mode="download")
        ref.path_on_datastore, ref.mode       # ('mnist', 'download')
    """

    def __init__(
        self,
        datastore: Datastore | str,
        data_reference_name: str | None = None,
        path_on_datastore: str | None = None,
        mode: str = MOUNT,
        path_on_compute: str | None = None,
        overwrite: bool = False,
    ) -> None:
        self._datastore = None if isinstance(datastore, str) else datastore
        self._datastore_name = check_name(
            "datastore", datastore if isinstance(datastore, str) else datastore.name
        )
        self._data_reference_name = check_name(
            "data_reference_name", data_reference_name or self._datastore_name
        )
        path = clean_relpath("path_on_datastore", path_on_datastore or "", allow_root=True)
        self._path_on_datastore = path or None
        if mode not in MODES:
            raise ValidationError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
        self._mode = mode
        self._path_on_compute = (
            None
            if path_on_compute is None
            else clean_relpath("path_on_compute", path_on_compute, allow_root=True) or None
        )
        if not isinstance(overwrite, bool):
            raise ValidationError("overwrite", f"expected True or False, got {overwrite!r}")
        self._overwrite = overwrite

    # Read-only: a reference is a value (compared and hashed by its fields); the as_* and path
    # methods return new ones.

    @property
    def datastore(self) -> Datastore | None:
        """The datastore object, when this reference was made from one (not from a config)."""
        return self._datastore

    @property
    def datastore_name(self) -> str:
        return self._datastore_name

    @property
    def data_reference_name(self) -> str:
        return self._data_reference_name

    @property
    def path_on_datastore(self) -> str | None:
        """The path in the datastore; None for its root."""
        return self._path_on_datastore

    @property
    def mode(self) -> str:
        """``mount``, ``download`` or ``direct``."""
        return self._mode

    @property
    def path_on_compute(self) -> str | None:
        """Where the run finds the data, relative to its working folder; None: chosen for it."""
        return self._path_on_compute

    @property
    def overwrite(self) -> bool:
        """Whether a download may replace files that exist at ``path_on_compute``."""
        return self._overwrite

    @property
    def env_var(self) -> str:
        """The environment variable that holds the local path inside a run."""
        return ENV_PREFIX + self.data_reference_name

    def as_mount(self) -> DataReference:
        """The same data, read in place by the run.

        Example::

            ds.path("mnist").as_mount().mode      # 'mount'
        """
        return self._copy(mode=MOUNT)

    def as_download(
        self, path_on_compute: str | None = None, overwrite: bool = False
    ) -> DataReference:
        """The same data, downloaded to ``path_on_compute`` before the run starts.

        Example::

            ds.path("mnist").as_download("data").path_on_compute   # 'data'
        """
        return self._copy(mode=DOWNLOAD, path_on_compute=path_on_compute, overwrite=overwrite)

    def as_direct(self) -> DataReference:
        """The same data, passed to the run as the datastore URL itself (for fsspec readers)."""
        return self._copy(mode=DIRECT)

    def path(
        self, path: str | None = None, data_reference_name: str | None = None
    ) -> DataReference:
        """A reference to ``path`` below this one, in the same mode.

        Example::

            ds.path("mnist").path("train").path_on_datastore   # 'mnist/train'
        """
        below = clean_relpath("path", path or "", allow_root=True)
        return self._copy(
            path_on_datastore=join_relpath(self.path_on_datastore or "", below),
            data_reference_name=data_reference_name or self.data_reference_name,
        )

    def to_config(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_config` turns back into an equal reference."""
        return {
            "data_reference_name": self.data_reference_name,
            "datastore_name": self.datastore_name,
            "path_on_datastore": self.path_on_datastore,
            "mode": self.mode,
            "path_on_compute": self.path_on_compute,
            "overwrite": self.overwrite,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DataReference:
        """Read a dict made by :meth:`to_config`; every value is checked again.

        Example::

            DataReference.from_config(ref.to_config()) == ref   # True
        """
        if not isinstance(config, dict):
            raise ValidationError("config", f"expected a dict, got {type(config).__name__}")
        unknown = sorted(set(config) - set(_CONFIG_KEYS))
        if unknown:
            raise ValidationError("config", f"unknown keys {unknown}; expected {_CONFIG_KEYS}")
        if not isinstance(config.get("datastore_name"), str):
            raise ValidationError("config", "'datastore_name' is missing or not a string")
        return cls(
            config["datastore_name"],
            data_reference_name=config.get("data_reference_name"),
            path_on_datastore=config.get("path_on_datastore"),
            mode=config.get("mode", MOUNT),
            path_on_compute=config.get("path_on_compute"),
            overwrite=config.get("overwrite", False),
        )

    def __str__(self) -> str:
        return "$" + self.env_var

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self.to_config().items())
        return f"DataReference({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataReference):
            return NotImplemented
        return self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(tuple(self.to_config().values()))

    def _copy(self, **changes: Any) -> DataReference:
        values = self.to_config()
        del values["datastore_name"]
        values.update(changes)
        return DataReference(self._datastore or self.datastore_name, **values)


__all__ = ["DataReference"]
