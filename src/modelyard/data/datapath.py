"""A path in a datastore, v1's ``azureml.data.datapath.DataPath``: one way to name the files
of a dataset.

Example::

    from modelyard.data.datapath import DataPath

    path = DataPath(ws.get_default_datastore(), "mnist/*.gz")
    Dataset.File.from_files(path=path)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.errors import ValidationError
from modelyard.names import clean_relpath

if TYPE_CHECKING:
    from modelyard.datastore import Datastore


class DataPath:
    """``path_on_datastore`` (a path or a pattern, ``mnist/*.gz``) in ``datastore``; checked
    to stay inside the datastore. ``name`` is kept for v1 code that gives one.

    Example::

        DataPath(ds, "mnist/train").path_on_datastore     # 'mnist/train'
    """

    def __init__(
        self,
        datastore: Datastore | None = None,
        path_on_datastore: str | None = None,
        name: str | None = None,
    ) -> None:
        if datastore is None:
            raise ValidationError("datastore", "a DataPath needs the datastore it is in")
        self._datastore = datastore
        self._path = clean_relpath("path_on_datastore", path_on_datastore or "", allow_root=True)
        self._name = name

    @property
    def datastore(self) -> Datastore:
        return self._datastore

    @property
    def datastore_name(self) -> str:
        return self._datastore.name

    @property
    def path_on_datastore(self) -> str:
        """The path, ``""`` for the datastore's root."""
        return self._path

    @property
    def name(self) -> str | None:
        return self._name

    def __repr__(self) -> str:
        return f"DataPath(datastore={self.datastore_name!r}, path_on_datastore={self._path!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DataPath)
            and other.datastore_name == self.datastore_name
            and other._path == self._path
        )

    def __hash__(self) -> int:
        return hash((self.datastore_name, self._path))


__all__ = ["DataPath"]
