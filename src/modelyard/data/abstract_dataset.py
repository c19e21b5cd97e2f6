"""What file and tabular datasets share (v1's ``azureml.data.abstract_dataset``).

A dataset is a definition, never a copy of the data: the sources it reads (datastore paths,
URLs), the format of tabular files and the transformations asked for (``take``, ``skip``,
``random_split``, column choices), recorded lazily as JSON and applied when the data is read
(``to_pandas_dataframe``, ``download``, a run's mount). Each transformation returns a new
dataset; registering one stores its definition as a version of a name in the workspace.

The definition::

    {"type": "file" | "tabular",
     "sources": [{"datastore": "workspaceblobstore", "path": "mnist/*.gz"}, {"url": "..."}],
     "format": null | {"kind": "delimited", "separator": ",", ...} | {"kind": "parquet"},
     "steps": [{"op": "take", "count": 10}, {"op": "drop_columns", "columns": ["a"]}, ...]}

Example::

    ds = Dataset.Tabular.from_delimited_files(path=(datastore, "iris/*.csv"))
    train, test = ds.random_split(0.8, seed=1)
    train.register(ws, "iris-train", create_new_version=True)
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any, Self

from modelyard.backend.base import Backend
from modelyard.backend.dataset_files import (
    ROW_STEPS,
    SAMPLE,
    SKIP,
    SPLIT,
    TAKE,
    FileGroup,
    check_row_step,
    find_files,
)
from modelyard.backend.records import DatasetRecord, iso_utc
from modelyard.data.dataset_consumption_config import DATASET_TYPES, DatasetConsumptionConfig
from modelyard.errors import ValidationError
from modelyard.names import check_name

if TYPE_CHECKING:
    from modelyard.workspace import Workspace

FILE = "file"
TABULAR = "tabular"


class AbstractDataset:
    """A dataset: a definition, the workspace it reads from and, once registered, its name,
    version and id. See the module docstring."""

    _type: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Each kind of dataset says which definitions it reads, so a definition read back
        # (a record, a run's input) becomes an object of the right class.
        super().__init_subclass__(**kwargs)
        DATASET_TYPES[cls._type] = cls

    def __init__(
        self,
        definition: dict[str, Any],
        workspace: Workspace | None = None,
        record: DatasetRecord | None = None,
    ) -> None:
        self._definition = definition
        self._workspace = workspace
        self._record = record

    @classmethod
    def _from_record(cls, workspace: Workspace | None, record: DatasetRecord) -> AbstractDataset:
        """The dataset object of a registered version, of the class its definition names."""
        return from_definition(record.definition, workspace, record)

    # -- identity -------------------------------------------------------------------------

    @property
    def id(self) -> str | None:
        """The registered version's id (a UUID); None for a dataset not registered."""
        return self._record.id if self._record is not None else None

    @property
    def name(self) -> str | None:
        return self._record.name if self._record is not None else None

    @property
    def version(self) -> int | None:
        return self._record.version if self._record is not None else None

    @property
    def description(self) -> str | None:
        return self._record.description if self._record is not None else None

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._record.tags) if self._record is not None else {}

    @property
    def workspace(self) -> Workspace | None:
        return self._workspace

    @property
    def definition(self) -> dict[str, Any]:
        """The JSON-ready definition (a copy): sources, format and steps."""
        return copy.deepcopy(self._definition)

    # -- registering ----------------------------------------------------------------------

    def register(
        self,
        workspace: Workspace,
        name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        create_new_version: bool = False,
    ) -> Self:
        """Register this definition as dataset ``name`` of ``workspace``; returns the
        registered dataset (with its ``name``, ``version`` and ``id``).

        As in v1, a name that exists raises ConflictError unless ``create_new_version``;
        registering a definition equal to the latest version's returns that version (no new
        one), so a repeated cell makes no new version.

        Example::

            ds = ds.register(ws, "mnist", create_new_version=True)
            ds.version      # 2
        """
        check_name("name", name)
        if self._workspace is not None and self._workspace != workspace:
            # Its sources name datastores of its own workspace, which this one may not have.
            raise ValidationError(
                "workspace",
                f"this dataset reads datastores of workspace {self._workspace.name!r}; register "
                "it there, or make it again from datastores of this workspace",
            )
        record = workspace._backend.create_dataset(
            name,
            self._definition,
            description=description,
            tags=tags,
            create_new_version=create_new_version,
        )
        return type(self)(record.definition, workspace, record)

    # -- transformations ------------------------------------------------------------------

    def _with_step(self, step: dict[str, Any]) -> Self:
        definition = self.definition
        definition["steps"] = [*definition.get("steps", []), step]
        return type(self)(definition, self._workspace)

    def take(self, count: int) -> Self:
        """The first ``count`` records (files of a file dataset, rows of a tabular one).

        Example::

            ds.take(5).to_pandas_dataframe().shape[0]    # 5
        """
        return self._with_step(check_row_step({"op": TAKE, "count": count}))

    def skip(self, count: int) -> Self:
        """Every record but the first ``count``.

        Example::

            ds.skip(5)
        """
        return self._with_step(check_row_step({"op": SKIP, "count": count}))

    def random_split(self, percentage: float, seed: int | None = None) -> tuple[Self, Self]:
        """Two datasets: about ``percentage`` (0 to 1) of the records, and the others. The same
        ``seed`` splits the same way every time, on every machine; None picks 0, so an unseeded
        split is repeatable too.

        Example::

            train, test = ds.random_split(percentage=0.8, seed=42)
        """
        chosen = 0 if seed is None else seed
        first = check_row_step({"op": SPLIT, "percentage": percentage, "seed": chosen, "part": 0})
        return self._with_step(first), self._with_step({**first, "part": 1})

    def take_sample(self, probability: float, seed: int | None = None) -> Self:
        """Each record (file or row) kept with ``probability`` (0 to 1), drawn from ``seed``
        (0 when None): the same records every time for one seed.

        Example::

            iris.take_sample(0.1, seed=7)
        """
        chosen = 0 if seed is None else seed
        return self._with_step(
            check_row_step({"op": SAMPLE, "probability": probability, "seed": chosen})
        )

    # -- runs -----------------------------------------------------------------------------

    def as_named_input(self, name: str) -> DatasetConsumptionConfig:
        """This dataset as the run input ``name``: inside the script,
        ``run.input_datasets[name]``. Passed as it is, a run gets the dataset itself (a
        tabular dataset to read with ``to_pandas_dataframe()``); ``.as_mount()`` and
        ``.as_download()`` give the script a local folder of the files instead.

        Example::

            est = Estimator(..., inputs=[ds.as_named_input("mnist").as_mount()])
        """
        return DatasetConsumptionConfig(name, self)

    # -- reading --------------------------------------------------------------------------

    def _backend(self) -> Backend | None:
        return self._workspace._backend if self._workspace is not None else None

    def _groups(self) -> list[FileGroup]:
        return find_files(self._backend(), self._definition["sources"])

    def _row_steps(self) -> list[dict[str, Any]]:
        return [s for s in self._definition.get("steps", []) if s["op"] in ROW_STEPS]

    def get_details(self) -> dict[str, Any]:
        """What a notebook shows of a dataset: name, version, id, description, tags, created
        time and the definition.

        Example::

            Dataset.get_by_name(ws, "mnist").get_details()["version"]    # 1
        """
        record = self._record
        return {
            "name": self.name,
            "version": self.version,
            "id": self.id,
            "description": self.description,
            "tags": self.tags,
            "createdTime": iso_utc(record.created_at) if record is not None else None,
            "definition": self.definition,
        }

    def __repr__(self) -> str:
        shown = {"name": self.name, "version": self.version, "definition": self._definition}
        return f"{type(self).__name__}({json.dumps(shown)})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, AbstractDataset)
            and type(other) is type(self)
            and other._definition == self._definition
            and other.id == self.id
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, json.dumps(self._definition, sort_keys=True), self.id))


def from_definition(
    definition: object, workspace: Workspace | None = None, record: DatasetRecord | None = None
) -> AbstractDataset:
    """The dataset object of ``definition``, of the class its type names."""
    kind = definition.get("type") if isinstance(definition, dict) else None
    chosen = DATASET_TYPES.get(str(kind))
    if chosen is None or not isinstance(definition, dict):
        raise ValidationError("definition", f"{kind!r} is not a kind of dataset (file, tabular)")
    dataset: AbstractDataset = chosen(check_definition(definition, str(kind)), workspace, record)
    return dataset


def check_definition(definition: object, kind: str) -> dict[str, Any]:
    """A definition read back (from a record or a run's configuration), checked enough that
    reading it cannot go astray: its type, sources and steps."""
    if not isinstance(definition, dict) or definition.get("type") != kind:
        raise ValidationError("definition", f"expected the definition of a {kind} dataset")
    if not isinstance(definition.get("sources"), list) or not definition["sources"]:
        raise ValidationError("definition", "a dataset definition needs its sources")
    if not isinstance(definition.get("steps", []), list):
        raise ValidationError("definition", "steps must be a list")
    return definition


__all__ = ["FILE", "TABULAR", "AbstractDataset", "check_definition", "from_definition"]
