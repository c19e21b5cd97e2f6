"""A dataset of files (v1's ``azureml.data.file_dataset.FileDataset``).

``Dataset.File.from_files(path=[(datastore, "mnist/*.gz")])`` makes one. Its files keep their
paths below the folder its patterns share (``mnist/*.gz`` gives ``/train.gz``), in
:meth:`~FileDataset.to_path`, :meth:`~FileDataset.download` and :meth:`~FileDataset.mount`.

Example::

    mnist = Dataset.File.from_files(path=[(ws.get_default_datastore(), "mnist/*.gz")])
    mnist.to_path()                          # ['/t10k-images.gz', '/train-images.gz', ...]
    mnist.download(target_path="./data", overwrite=True)
    with mnist.mount() as context:
        os.listdir(context.mount_point)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from modelyard.backend.dataset_files import FileGroup, relative_paths, select_files
from modelyard.data.abstract_dataset import FILE, AbstractDataset
from modelyard.data.dataset_consumption_config import (
    DatasetConsumptionConfig,
)
from modelyard.errors import ConflictError, ValidationError
from modelyard.store import transfer

StrPath = str | os.PathLike[str]


class FileDataset(AbstractDataset):
    """Files in datastores or at URLs; see the module docstring."""

    _type = FILE

    def _selected(self) -> list[FileGroup]:
        return select_files(self._groups(), self._row_steps())

    def to_path(self) -> list[str]:
        """The path of each file, as ``/`` and its path below the folder the dataset's
        patterns share (v1's form).

        Example::

            Dataset.File.from_files((ds, "mnist/*.gz")).to_path()[0]    # '/t10k-images.gz'
        """
        return ["/" + path for path in relative_paths(self._selected())]

    def download(self, target_path: StrPath | None = None, overwrite: bool = False) -> list[str]:
        """Copy the files into ``target_path`` (a new temporary folder when None), keeping
        their paths; return the local path of each.

        As in v1, a file that exists there already raises ConflictError unless
        ``overwrite``, and nothing is copied then. Each file is written under a temporary name
        and renamed, with the progress bar of datastore downloads; a symbolic link below
        ``target_path`` where a folder goes is refused before anything is written.

        Example::

            mnist.download(target_path="./data", overwrite=True)   # ['./data/train.gz', ...]
        """
        groups = self._selected()
        paths = relative_paths(groups)
        root = (
            Path(tempfile.mkdtemp(prefix="modelyard-dataset-"))
            if target_path is None
            else Path(target_path)
        )
        if not overwrite:
            existing = [p for p in paths if os.path.lexists(root / p)]
            if existing:
                raise ConflictError(
                    f"{root / existing[0]} exists ({len(existing)} of the dataset's files do): "
                    "pass overwrite=True to replace them, or download to another folder"
                )
        for group in groups:
            transfer.download(group.store, group.files, root, overwrite=True, field="path")
        return [os.fspath(root / path) for path in paths]

    def mount(self, mount_point: StrPath | None = None, **kwargs: Any) -> MountContext:
        """A context that gives the files in a local folder (``.mount_point``) while it is
        open; v1's options (``**kwargs``) are accepted and not needed here.

        - A local datastore's folder named whole (no pattern, no row step): the folder itself,
          in place, with nothing copied; writes there change the datastore, so treat it as
          read-only (the files are not made read-only for you).
        - Anything else (patterns, several sources, S3 and other object stores, URLs): the
          files are downloaded into ``mount_point`` (a new temporary folder when None) on
          entry, and that copy is removed on exit.

        Example::

            with mnist.mount() as context:
                print(sorted(os.listdir(context.mount_point)))
        """
        return MountContext(self._selected(), mount_point)

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        """This dataset as a run input, mounted, named after the dataset (or ``dataset``).

        Example::

            script_params = {"--data-folder": mnist.as_mount()}
        """
        return self.as_named_input(self.name or "dataset").as_mount(path_on_compute)

    def as_download(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        """This dataset as a run input, downloaded, named after the dataset (or ``dataset``).

        Example::

            script_params = {"--data-folder": mnist.as_download("data")}
        """
        return self.as_named_input(self.name or "dataset").as_download(path_on_compute)


class MountContext:
    """The folder of a :meth:`FileDataset.mount` while it is started (``start()`` and
    ``stop()``, or a ``with`` block)."""

    def __init__(self, groups: list[FileGroup], mount_point: StrPath | None) -> None:
        self._groups = groups
        self._asked = Path(mount_point) if mount_point is not None else None
        self._copy: Path | None = None
        self.mount_point: str | None = None

    def start(self) -> None:
        """Make the files available at ``mount_point``."""
        if self.mount_point is not None:
            return
        single = self._groups[0] if len(self._groups) == 1 else None
        if single is not None and single.in_place is not None and self._asked is None:
            self.mount_point = os.fspath(single.in_place)
            return
        relative_paths(self._groups)  # two sources with one path: refused before copying
        if self._asked is None:
            folder = Path(tempfile.mkdtemp(prefix="modelyard-mount-"))
        else:
            folder = self._asked
            if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
                raise ValidationError(
                    "mount_point", f"{folder} is not an empty folder; mount into an empty one"
                )
            folder.mkdir(parents=True, exist_ok=True)
        self._copy = folder
        try:
            for group in self._groups:
                transfer.download(group.store, group.files, folder, field="path")
        except BaseException:
            self.stop()
            raise
        self.mount_point = os.fspath(folder)

    def stop(self) -> None:
        """Remove the copy (a mount in place is left as it is)."""
        if self._copy is not None:
            shutil.rmtree(self._copy, ignore_errors=True)
            self._copy = None
        self.mount_point = None

    def __enter__(self) -> MountContext:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["FileDataset", "MountContext"]
