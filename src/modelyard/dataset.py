"""Datasets, v1's ``azureml.core.dataset``: ``Dataset.File`` and ``Dataset.Tabular`` make
them, ``Dataset.get_by_name`` reads a registered one.

A dataset names files (in datastores or at URLs) and what to do with them; nothing is copied
until it is read, downloaded, mounted or given to a run. The classes live in
:mod:`modelyard.data`.

Example::

    from modelyard import Dataset, Workspace

    ws = Workspace.from_config()
    ds = ws.get_default_datastore()
    mnist = Dataset.File.from_files(path=[(ds, "mnist/*.gz")])
    mnist = mnist.register(ws, "mnist", create_new_version=True)
    Dataset.get_by_name(ws, "mnist", version="latest").to_path()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.backend.base import every_item
from modelyard.data.abstract_dataset import AbstractDataset
from modelyard.data.dataset_factory import FileDatasetFactory, TabularDatasetFactory
from modelyard.errors import ValidationError
from modelyard.names import check_name

if TYPE_CHECKING:
    from modelyard.workspace import Workspace


def _version(version: int | str) -> int | None:
    """v1's versions: ``"latest"``, a number, or a number as a string (``"2"``)."""
    if version == "latest":
        return None
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError("version", f"{version!r} is not a version: use 'latest', 1, 2, ...")
    return version


class Dataset:
    """The entry to datasets; see the module docstring."""

    File = FileDatasetFactory
    Tabular = TabularDatasetFactory

    @staticmethod
    def get_by_name(
        workspace: Workspace, name: str, version: int | str = "latest"
    ) -> AbstractDataset:
        """The registered dataset ``name`` at ``version`` (``"latest"``, ``2`` or ``"2"``);
        NotFoundError when there is none. Works inside a submitted script too, with the run's
        workspace (``run.experiment.workspace``).

        Example::

            Dataset.get_by_name(ws, "mnist", version=2).version     # 2
        """
        check_name("name", name)
        record = workspace._backend.get_dataset(name, _version(version))
        return AbstractDataset._from_record(workspace, record)

    @staticmethod
    def get_by_id(workspace: Workspace, id: str) -> AbstractDataset:
        """The registered dataset version whose id is ``id``; NotFoundError when none is.

        Example::

            Dataset.get_by_id(ws, mnist.id).name                    # 'mnist'
        """
        if not isinstance(id, str) or not id:
            raise ValidationError("id", f"{id!r} is not a dataset id")
        return AbstractDataset._from_record(workspace, workspace._backend.get_dataset_by_id(id))

    @staticmethod
    def get_all(workspace: Workspace) -> dict[str, AbstractDataset]:
        """The latest version of every registered dataset, by name (``ws.datasets``).

        Example::

            sorted(Dataset.get_all(ws))                             # ['iris', 'mnist']
        """
        backend = workspace._backend
        records = every_item(
            lambda limit, after: backend.list_datasets(latest=True, limit=limit, after=after)
        )
        return {record.name: AbstractDataset._from_record(workspace, record) for record in records}


__all__ = ["Dataset"]
