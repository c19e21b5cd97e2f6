"""A run's files: uploading, listing and downloading them, its logs and its source snapshot.

:class:`RunFiles` is the part of :class:`~modelyard.run.Run` that moves files between this
machine and the run; every download appears whole or not at all, and nothing is written
through a symbolic link below the folder it goes to.

Example::

    run.upload_file("notes.txt", "./notes.txt")
    run.download_files(prefix="outputs/", output_directory="./results")
    run.get_all_logs("./logs-of-run")
    run.restore_snapshot(path="./restored")
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import IO

from modelyard.backend.base import Backend, every_item
from modelyard.backend.records import RunRecord
from modelyard.backend.snapshot import restore_snapshot as restore_snapshot_files
from modelyard.errors import NotFoundError, ValidationError
from modelyard.names import clean_relpath
from modelyard.run_details import SNAPSHOT_PROPERTY, download_logs, write_snapshot_zip
from modelyard.store import local_tree

logger = logging.getLogger("modelyard.run")


class RunFiles:
    """The file methods of a run (a part of :class:`~modelyard.run.Run`)."""

    _backend: Backend
    _record: RunRecord

    def upload_file(self, name: str, path_or_stream: str | os.PathLike[str] | IO[bytes]) -> None:
        """Store a local file (or a binary stream) among the run's files as ``name``."""
        name = clean_relpath("name", name)
        if isinstance(path_or_stream, str | os.PathLike):
            source = Path(path_or_stream)
            if not source.is_file():
                raise ValidationError("path_or_stream", f"{source} is not a file")
            self._backend.upload_run_file(self._record.id, name, source)
        else:
            self._backend.upload_run_file(self._record.id, name, path_or_stream)

    def upload_files(self, names: list[str], paths: list[str | os.PathLike[str]]) -> None:
        """Store several local files; every name and path is checked before any is stored."""
        if len(names) != len(paths):
            raise ValidationError("paths", "names and paths must have the same length")
        clean = [clean_relpath("names", name) for name in names]
        sources = [Path(path) for path in paths]
        for source in sources:
            if not source.is_file():
                raise ValidationError("paths", f"{source} is not a file")
        for name, source in zip(clean, sources, strict=True):
            self._backend.upload_run_file(self._record.id, name, source)

    def upload_folder(self, name: str, path: str | os.PathLike[str]) -> None:
        """Store every file under the local folder ``path`` as ``name/<relative path>``.

        Links follow the snapshot's rule: a link to a file inside the folder is stored as that
        file; links to folders, links leading out of it and special files are left out, with
        a warning naming them."""
        prefix = clean_relpath("name", name)
        folder = Path(path)
        if not folder.is_dir():
            raise ValidationError("path", f"{folder} is not a folder")
        found = local_tree.files_to_read(os.fspath(folder), "uploading", logger)
        self.upload_files(
            [f"{prefix}/{relpath}" for _, relpath in found], [source for source, _ in found]
        )

    def get_file_names(self) -> list[str]:
        """The names of every file of the run, sorted."""
        return [
            info.path
            for info in every_item(
                lambda limit, after: self._backend.list_run_files(
                    self._record.id, limit=limit, after=after
                )
            )
        ]

    def download_file(
        self, name: str, output_file_path: str | os.PathLike[str] | None = None
    ) -> Path:
        """Download one of the run's files; returns where it went. ``output_file_path``
        defaults to the file's base name in the current folder; an existing folder gets the
        file inside it. The file appears whole or not at all; a symbolic link at its name is
        replaced, never written through.

        Example::

            run.download_file("outputs/model/saved_model.pb", "./model/saved_model.pb")
        """
        name = clean_relpath("name", name)
        target = (
            Path(output_file_path)
            if output_file_path is not None
            else Path(name.rsplit("/", 1)[-1])
        )
        if target.is_dir():
            target = target / name.rsplit("/", 1)[-1]
        with self._backend.open_run_file(self._record.id, name) as source:
            _write_stream_atomically(source, target.parent, target.name, "output_file_path")
        return target

    def download_files(
        self,
        prefix: str | None = None,
        output_directory: str | os.PathLike[str] | None = None,
        append_prefix: bool = True,
    ) -> list[Path]:
        """Download every file whose name starts with ``prefix`` (all by default) into
        ``output_directory`` (default: the current folder), keeping their relative paths
        (without the prefix when ``append_prefix=False``). Returns the local paths.

        Each file appears whole or not at all. A symbolic link below ``output_directory``
        where a folder goes (``outputs -> /elsewhere``) raises ValidationError (field
        ``output_directory``) and nothing is written through it; a link at a file's name is
        replaced.

        Example::

            run.download_files(prefix="outputs/", output_directory="./results")
        """
        # A prefix is a plain string prefix, as in v1: "outputs/" or "outputs/model".
        wanted = clean_relpath("prefix", prefix or "", allow_root=True)
        if wanted and (prefix or "").endswith("/"):
            wanted += "/"
        out = Path(output_directory) if output_directory is not None else Path.cwd()
        wanted_files = []
        for info in self._backend.list_run_files(self._record.id):
            if not info.path.startswith(wanted):
                continue
            relative = info.path if append_prefix else info.path[len(wanted) :].lstrip("/")
            wanted_files.append((info.path, relative or info.path.rsplit("/", 1)[-1]))
        # Every folder checked before the first file is written.
        local_tree.check_folders(
            os.fspath(out), [relative for _, relative in wanted_files], field="output_directory"
        )
        written = []
        for name, relative in wanted_files:
            with self._backend.open_run_file(self._record.id, name) as source:
                _write_stream_atomically(source, out, relative, "output_directory")
            written.append(out / relative)
        return written

    def get_all_logs(self, destination: str | os.PathLike[str] | None = None) -> list[str]:
        """Download every log file of the run into ``destination`` (default: a folder named
        by the run id in the current folder), keeping their folders (``user_logs/...``);
        returns their paths. Each file appears whole or not at all; a link below
        ``destination`` where a folder goes raises ValidationError and nothing is written.

        Example::

            run.get_all_logs("./logs-of-run")   # ['./logs-of-run/user_logs/std_log.txt', ...]
        """
        where = Path(destination) if destination is not None else Path(self._record.id)
        return download_logs(self._backend, self._record.id, where)

    def restore_snapshot(
        self,
        snapshot_id: str | None = None,
        path: str | os.PathLike[str] | None = None,
        *,
        extract: bool = False,
    ) -> str:
        """Write the run's source snapshot (or snapshot ``snapshot_id``) as
        ``<path>/<snapshot id>.zip`` and return its path, as v1 did; ``path`` is a folder,
        the current one by default. With ``extract=True`` the files go into the new folder
        ``<path>/<snapshot id>`` instead. Either appears whole or not at all, and nothing is
        written outside ``path``.

        Example::

            run.restore_snapshot(path="./restored")   # './restored/3f1c....zip'
        """
        if snapshot_id is None:
            snapshot_id = self._backend.get_run_details(self._record.id).properties.get(
                SNAPSHOT_PROPERTY
            )
            if snapshot_id is None:
                raise NotFoundError(
                    f"run {self._record.id!r} has no snapshot: it was not submitted, nor "
                    "started with exp.start_logging(snapshot_directory=...)"
                )
        folder = Path(path) if path is not None else Path.cwd()
        if not extract:
            return write_snapshot_zip(self._backend, snapshot_id, folder)
        # The function that gives a submitted run its working folder: it refuses a folder
        # that holds anything already, so nothing is mixed with what is there.
        target = folder / snapshot_id
        restore_snapshot_files(self._backend, snapshot_id, target)
        return os.fspath(target)


def _write_stream_atomically(source: IO[bytes], root: Path, relpath: str, field: str) -> None:
    """Write ``source`` to ``root/relpath`` whole, following no link below ``root``."""
    with local_tree.open_write(os.fspath(root), relpath, field=field) as out:
        while chunk := source.read(8 << 20):
            out.write(chunk)
