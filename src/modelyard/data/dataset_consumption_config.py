"""A dataset as a run's named input (v1's ``azureml.data.dataset_consumption_config``).

``ds.as_named_input("mnist")`` makes one; ``.as_mount()`` and ``.as_download()`` say how the
run gets the files. It goes where a data reference goes (an estimator's ``script_params``,
``arguments`` or ``inputs``, a ScriptRunConfig's ``arguments``) and travels in the run's
configuration the same way: :meth:`~DatasetConsumptionConfig.to_config` gives a JSON-ready
dict holding the dataset's definition, and the run supervisor turns it into a local folder:

- ``as_mount()``: the files where they are, when the dataset is a local datastore's folder
  named whole; else a copy in the compute's cache folder (fetched again only when a file's
  size changed);
- ``as_download(path_on_compute)``: a copy in the run's working folder, at
  ``path_on_compute`` or at the input's name;
- neither (``direct``): the files are made local as for a mount, and inside the script
  ``run.input_datasets[name]`` is the dataset itself, reading those local files.

The argument it stands in becomes the local folder's path; ``str(config)`` is the ``$`` form
of the variable that holds it (``$MODELYARD_DATAREFERENCE_mnist``).

Example::

    src = ScriptRunConfig(".", "train.py",
                          arguments=["--data", mnist.as_named_input("mnist").as_mount()])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.data.data_reference import ENV_PREFIX
from modelyard.errors import ValidationError
from modelyard.names import check_name, clean_relpath

if TYPE_CHECKING:
    from modelyard.data.abstract_dataset import AbstractDataset
    from modelyard.workspace import Workspace

DIRECT = "direct"
MOUNT = "mount"
DOWNLOAD = "download"
MODES = (DIRECT, MOUNT, DOWNLOAD)

# The dataset classes by the type their definitions carry; each one adds itself
# (AbstractDataset.__init_subclass__), so a config read back makes the right one.
DATASET_TYPES: dict[str, type[AbstractDataset]] = {}


class DatasetConsumptionConfig:
    """The dataset ``dataset`` as the run input ``name``, in ``mode``; see the module
    docstring. ``path_on_compute`` (downloads) is relative to the run's working folder.

    Example::

        config = ds.as_named_input("mnist").as_download(path_on_compute="data")
        config.name, config.mode, config.path_on_compute    # ('mnist', 'download', 'data')
    """

    def __init__(
        self,
        name: str,
        dataset: AbstractDataset,
        mode: str = DIRECT,
        path_on_compute: str | None = None,
    ) -> None:
        self._name = check_name("name", name)
        if mode not in MODES:
            raise ValidationError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
        self._dataset = dataset
        self._mode = mode
        self._path_on_compute = (
            None
            if path_on_compute is None
            else clean_relpath("path_on_compute", path_on_compute, allow_root=False)
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def data_reference_name(self) -> str:
        """The input's name, under which a run resolves it like a data reference."""
        return self._name

    @property
    def dataset(self) -> AbstractDataset:
        return self._dataset

    @property
    def mode(self) -> str:
        """``direct``, ``mount`` or ``download``."""
        return self._mode

    @property
    def path_on_compute(self) -> str | None:
        return self._path_on_compute

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        """The files in a local folder the run reads in place (see the module docstring);
        ``path_on_compute`` is accepted for v1 code and not used: the folder is the
        datastore's or the cache's.

        Example::

            ds.as_named_input("mnist").as_mount().mode      # 'mount'
        """
        return DatasetConsumptionConfig(self._name, self._dataset, MOUNT, path_on_compute)

    def as_download(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        """The files copied into the run's working folder, at ``path_on_compute`` (default:
        the input's name), before the script starts.

        Example::

            ds.as_named_input("mnist").as_download("data").path_on_compute   # 'data'
        """
        return DatasetConsumptionConfig(self._name, self._dataset, DOWNLOAD, path_on_compute)

    def to_config(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_config` turns back into an equal config."""
        return {
            "data_reference_name": self._name,
            "mode": self._mode,
            "path_on_compute": self._path_on_compute,
            "dataset": {
                "id": self._dataset.id,
                "name": self._dataset.name,
                "version": self._dataset.version,
                "definition": self._dataset.definition,
            },
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], workspace: Workspace | None = None
    ) -> DatasetConsumptionConfig:
        """Read a dict made by :meth:`to_config` (the dataset unregistered: its definition).

        Example::

            DatasetConsumptionConfig.from_config(config.to_config(), ws).mode
        """
        if not isinstance(config, dict) or not isinstance(config.get("dataset"), dict):
            raise ValidationError("config", "expected the dict of a dataset input (to_config)")
        definition = config["dataset"].get("definition")
        kind = definition.get("type") if isinstance(definition, dict) else None
        chosen = DATASET_TYPES.get(str(kind))
        if chosen is None:
            raise ValidationError("config", f"{kind!r} is not a kind of dataset")
        return cls(
            config.get("data_reference_name", ""),
            chosen(definition, workspace),
            config.get("mode", DIRECT),
            config.get("path_on_compute"),
        )

    def __str__(self) -> str:
        return "$" + ENV_PREFIX + self._name

    def __repr__(self) -> str:
        return (
            f"DatasetConsumptionConfig(name={self._name!r}, mode={self._mode!r}, "
            f"dataset={self._dataset.name!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatasetConsumptionConfig) and other.to_config() == self.to_config()

    def __hash__(self) -> int:
        return hash((self._name, self._mode, self._path_on_compute))


__all__ = ["DIRECT", "DOWNLOAD", "MODES", "MOUNT", "DatasetConsumptionConfig"]
