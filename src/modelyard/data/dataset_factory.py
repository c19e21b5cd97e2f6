"""Making datasets from files (v1's ``azureml.data.dataset_factory``): ``Dataset.File`` is
:class:`FileDatasetFactory` and ``Dataset.Tabular`` is :class:`TabularDatasetFactory`.

``path`` takes what v1 took, alone or in a list: ``(datastore, "mnist/*.gz")``,
``DataPath(datastore, "mnist")``, ``datastore.path("mnist")``, or a URL string
(``s3://bucket/x/*.csv``, ``file:///data/x.csv``, any fsspec URL; its credentials come from
the usual places of that filesystem, a datastore keeps its own). Datastore paths are checked
to stay inside their datastore (no ``..``, not absolute); patterns are those of
``backend/dataset_files.py``.

Example::

    from modelyard.data.dataset_factory import FileDatasetFactory

    mnist = FileDatasetFactory.from_files(path=[(ds, "mnist/*.gz")])
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.backend.dataset_files import check_source, find_files
from modelyard.data.data_reference import DataReference
from modelyard.data.datapath import DataPath
from modelyard.data.file_dataset import FileDataset
from modelyard.data.tabular_dataset import DELIMITED, PARQUET, TabularDataset, data_module
from modelyard.errors import ValidationError

if TYPE_CHECKING:
    from modelyard.workspace import Workspace


def _one_source(item: Any) -> tuple[dict[str, str], Workspace | None]:
    """The definition entry of one ``path`` item, and the workspace its datastore is in."""
    if isinstance(item, str):
        if "://" not in item:
            raise ValidationError(
                "path",
                f"{item!r} is not a URL: give (datastore, path) for a datastore's files, or "
                "upload local files to a datastore first (datastore.upload)",
            )
        return check_source("path", {"url": item}), None
    if isinstance(item, DataPath):
        datastore, relpath = item.datastore, item.path_on_datastore
    elif isinstance(item, DataReference):
        if item.datastore is None:
            raise ValidationError(
                "path", f"{item!r} was read from a configuration: use a datastore"
            )
        datastore, relpath = item.datastore, item.path_on_datastore or ""
    elif isinstance(item, tuple) and len(item) == 2:
        datastore, relpath = item
    else:
        raise ValidationError(
            "path",
            f"{item!r} is not a dataset path: give (datastore, 'path/*.csv'), a DataPath, "
            "datastore.path(...) or a URL",
        )
    workspace = getattr(datastore, "workspace", None)
    name = getattr(datastore, "name", None)
    if workspace is None or not isinstance(name, str):
        raise ValidationError("path", f"{datastore!r} is not a datastore")
    return check_source("path", {"datastore": name, "path": relpath}), workspace


def _refuse_unsupported(**given: object) -> None:
    """v1's tabular options that are not built here: refused when given, never ignored."""
    for field, value in given.items():
        if value not in (None, False):
            raise ValidationError(field, "is not supported; leave it out")


def _sources(path: Any) -> tuple[list[dict[str, str]], Workspace | None]:
    items = path if isinstance(path, list) else [path]
    if not items:
        raise ValidationError("path", "give at least one path")
    sources = []
    workspaces = []
    for item in items:
        source, workspace = _one_source(item)
        sources.append(source)
        if workspace is not None:
            workspaces.append(workspace)
    if any(w != workspaces[0] for w in workspaces):
        raise ValidationError("path", "the datastores of one dataset must be of one workspace")
    return sources, (workspaces[0] if workspaces else None)


def _check(sources: list[dict[str, str]], workspace: Workspace | None, validate: bool) -> None:
    if validate:  # v1's validate: every source matches a file now, not at the first read
        find_files(workspace._backend if workspace is not None else None, sources)


def _flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, f"expected True or False, got {value!r}")
    return value


class FileDatasetFactory:
    """``Dataset.File``: datasets of files."""

    @staticmethod
    def from_files(
        path: Any, validate: bool = True, partition_format: str | None = None
    ) -> FileDataset:
        """A file dataset of the files ``path`` names (see the module docstring).

        Example::

            Dataset.File.from_files(path=[(ds, "mnist/*.gz")])
        """
        if partition_format is not None:
            raise ValidationError("partition_format", "partition formats are not supported")
        sources, workspace = _sources(path)
        _check(sources, workspace, _flag("validate", validate))
        return FileDataset({"type": "file", "sources": sources, "steps": []}, workspace)


class TabularDatasetFactory:
    """``Dataset.Tabular``: datasets of rows."""

    @staticmethod
    def from_delimited_files(
        path: Any,
        validate: bool = True,
        include_path: bool = False,
        infer_column_types: bool = True,
        set_column_types: dict[str, Any] | None = None,
        separator: str = ",",
        header: bool = True,
        partition_format: str | None = None,
        support_multi_line: bool = False,
        empty_as_string: bool = False,
        encoding: str = "utf8",
    ) -> TabularDataset:
        """Rows of delimited text files (CSV by default). ``header`` True reads each file's
        first line as the column names; ``infer_column_types`` False keeps every value text.

        Example::

            Dataset.Tabular.from_delimited_files(path=(ds, "iris/*.csv"), separator=",")
        """
        _refuse_unsupported(
            include_path=include_path,
            set_column_types=set_column_types,
            partition_format=partition_format,
        )
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValidationError("separator", f"{separator!r} is not one character")
        if not isinstance(encoding, str) or not encoding:
            raise ValidationError("encoding", f"{encoding!r} is not an encoding name")
        sources, workspace = _sources(path)
        _check(sources, workspace, _flag("validate", validate))
        source_format = {
            "kind": DELIMITED,
            "separator": separator,
            "header": _flag("header", header),
            "infer_column_types": _flag("infer_column_types", infer_column_types),
            "encoding": encoding,
        }
        definition = {"type": "tabular", "sources": sources, "format": source_format, "steps": []}
        return TabularDataset(definition, workspace)

    @staticmethod
    def from_parquet_files(
        path: Any,
        validate: bool = True,
        include_path: bool = False,
        set_column_types: dict[str, Any] | None = None,
        partition_format: str | None = None,
    ) -> TabularDataset:
        """Rows of Parquet files, read with pyarrow.

        Example::

            Dataset.Tabular.from_parquet_files(path=[(ds, "events/*.parquet")])
        """
        _refuse_unsupported(
            include_path=include_path,
            set_column_types=set_column_types,
            partition_format=partition_format,
        )
        sources, workspace = _sources(path)
        _check(sources, workspace, _flag("validate", validate))
        definition = {
            "type": "tabular",
            "sources": sources,
            "format": {"kind": PARQUET},
            "steps": [],
        }
        return TabularDataset(definition, workspace)

    @staticmethod
    def register_pandas_dataframe(
        dataframe: Any,
        target: Any,
        name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        show_progress: bool = True,
    ) -> TabularDataset:
        """Write ``dataframe`` as a Parquet file to ``target`` (``(datastore, "folder")``, a
        ``DataPath`` or ``datastore.path(...)``: a folder of a datastore), in a folder of
        its own (``<folder>/<uuid>/part-0.parquet``, so two registrations never share a file),
        and register the tabular dataset of that file as ``name`` (a new version when the
        name exists), as v1 did.

        Example::

            ds = Dataset.Tabular.register_pandas_dataframe(df, (datastore, "frames"), "iris")
            ds.version      # 1
        """
        if not callable(getattr(dataframe, "to_parquet", None)):
            raise ValidationError(
                "dataframe", f"expected a pandas DataFrame, not {type(dataframe).__name__}"
            )
        (source,), workspace = _sources(target)
        if workspace is None or "datastore" not in source:
            raise ValidationError("target", "give a datastore folder: (datastore, 'folder')")
        data_module("pyarrow.parquet")  # to_parquet's engine, or the error naming the extra
        datastore = workspace.datastores.get(source["datastore"])
        if datastore is None:
            raise ValidationError("target", f"no datastore {source['datastore']!r}")
        folder = "/".join(part for part in (source["path"], uuid.uuid4().hex) if part)
        with tempfile.TemporaryDirectory(prefix="modelyard-frame-") as scratch:
            dataframe.to_parquet(Path(scratch) / "part-0.parquet", index=False)
            datastore.upload(scratch, target_path=folder, show_progress=show_progress)
        dataset = TabularDatasetFactory.from_parquet_files(path=(datastore, folder))
        return dataset.register(
            workspace, name, description=description, tags=tags, create_new_version=True
        )


__all__ = ["FileDatasetFactory", "TabularDatasetFactory"]
