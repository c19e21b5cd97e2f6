"""The model registry: versioned sets of files, each linked to the run that made it.

Versions count from 1 per name; ``model.id`` is ``name:version``. A model's files keep the
last part of the path they were registered from: registering ``outputs/model`` (a folder)
stores ``model/...``, and ``model.download()`` returns ``<target_dir>/model``.

Example::

    model = Model.register(ws, model_path="./outputs/model", model_name="tf-dnn-mnist",
                           tags={"framework": "tensorflow"})
    model.version                        # 1
    Model(ws, "tf-dnn-mnist").download("./here")
"""

from __future__ import annotations

import builtins
import logging
import os
import shutil
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.backend.base import every_item
from modelyard.backend.records import ModelRecord
from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.names import check_name, check_tags, clean_relpath, tag_filter, temp_name
from modelyard.store import local_tree

if TYPE_CHECKING:
    from modelyard.run import Run
    from modelyard.workspace import Workspace

# Where get_model_path keeps downloaded models, relative to the current folder (v1 used
# ./azureml-models/<name>/<version>).
MODEL_CACHE_DIR = "modelyard-models"
MODEL_DIR_ENV = "MODELYARD_MODEL_DIR"

logger = logging.getLogger(__name__)


def _new_upload_id() -> str:
    return uuid.uuid4().hex


def _open_no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


class Model:
    """One version of a registered model. ``Model(ws, name, version=None)`` gets the latest
    version when ``version`` is None; ``Model(ws, id="name:3")`` works too."""

    def __init__(
        self,
        workspace: Workspace,
        name: str | None = None,
        id: str | None = None,
        version: int | None = None,
    ) -> None:
        if id is not None:
            name, _, number = id.partition(":")
            if not number.isdigit():
                raise ValidationError("id", f"{id!r} is not a model id of the form name:version")
            version = int(number)
        if name is None:
            raise ValidationError("name", "give the model's name (or id='name:version')")
        check_name("name", name)
        self._workspace = workspace
        self._record = workspace._backend.get_model(name, version)

    @classmethod
    def _from_record(cls, workspace: Workspace, record: ModelRecord) -> Model:
        model = cls.__new__(cls)
        model._workspace = workspace
        model._record = record
        return model

    # -- registering ---------------------------------------------------------------------

    @classmethod
    def register(
        cls,
        workspace: Workspace,
        model_path: str | os.PathLike[str],
        model_name: str,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Model:
        """Register a local file or folder as the next version of ``model_name``.

        In a folder, links follow a run snapshot's rule: a link to a file inside the folder is
        stored as that file; links to folders, links leading out of the folder (to
        ``/etc/passwd``, say), broken links and special files are left out, with a warning
        naming them. ``model_path`` itself may be a link: it is the path you chose.

        Example::

            Model.register(ws, "./outputs/model.pkl", "sklearn-mnist", tags={"area": "mnist"})
        """
        check_name("model_name", model_name)
        clean_tags = check_tags("tags", tags)
        clean_properties = check_tags("properties", properties)
        source = Path(model_path).expanduser()
        if not source.exists():
            raise ValidationError("model_path", f"{source} does not exist")
        source = source.resolve()
        if source.is_file():
            files = [(os.fspath(source), source.name)]
        else:
            found = local_tree.files_to_read(os.fspath(source), "registering", logger)
            files = [(path, f"{source.name}/{relpath}") for path, relpath in found]
            if not files:
                raise ValidationError("model_path", f"{source} holds no files")
        for _path, relpath in files:
            clean_relpath("model_path", relpath)
        backend = workspace._backend
        upload_id = _new_upload_id()
        for path, relpath in files:
            # O_NOFOLLOW: a file swapped for a link since the walk must not lead elsewhere.
            with open(path, "rb", opener=_open_no_follow) as data:
                backend.upload_model_file(model_name, upload_id, relpath, data)
        record = backend.create_model(
            model_name,
            upload_id,
            source.name,
            tags=clean_tags,
            properties=clean_properties,
            description=description,
        )
        return cls._from_record(workspace, record)

    @classmethod
    def _register_from_run(
        cls,
        run: Run,
        model_name: str,
        model_path: str,
        *,
        tags: dict[str, Any] | None,
        properties: dict[str, Any] | None,
        description: str | None,
    ) -> Model:
        check_name("model_name", model_name)
        clean_tags = check_tags("tags", tags)
        clean_properties = check_tags("properties", properties)
        run_path = clean_relpath("model_path", model_path)
        backend = run.workspace._backend
        run.flush()
        upload_id = _new_upload_id()
        root_name = backend.stage_model_from_run(model_name, upload_id, run.id, run_path)
        record = backend.create_model(
            model_name,
            upload_id,
            root_name,
            run_id=run.id,
            tags=clean_tags,
            properties=clean_properties,
            description=description,
        )
        return cls._from_record(run.workspace, record)

    # -- reading -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def version(self) -> int:
        return self._record.version

    @property
    def id(self) -> str:
        """``name:version``."""
        return self._record.id

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._record.tags)

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._record.properties)

    @property
    def description(self) -> str | None:
        return self._record.description

    @property
    def created_time(self) -> datetime:
        return datetime.fromtimestamp(self._record.created_at, UTC)

    @property
    def run_id(self) -> str | None:
        """The run that made this model, when it was registered from one."""
        return self._record.run_id

    @property
    def workspace(self) -> Workspace:
        return self._workspace

    @staticmethod
    def list(
        workspace: Workspace,
        name: str | None = None,
        tags: Any = None,
        latest: bool = False,
    ) -> builtins.list[Model]:
        """Model versions, newest first. ``tags`` filters by a key, a ``[key, value]`` pair, a
        list of those, or a dict; ``latest`` keeps the newest version of each name."""
        if (
            isinstance(tags, list)
            and tags
            and not (len(tags) == 2 and all(isinstance(item, str) for item in tags))
        ):
            wanted: dict[str, str | None] = {}
            for item in tags:
                wanted.update(tag_filter(item, "tags") or {})
        else:
            wanted = tag_filter(tags, "tags") or {}
        records = every_item(
            lambda limit, after: workspace._backend.list_models(
                name, tags=wanted or None, latest=latest, limit=limit, after=after
            )
        )
        return [Model._from_record(workspace, record) for record in records]

    def get_file_names(self) -> builtins.list[str]:
        """The model's files, relative to the download folder (``model/...``)."""
        return [
            info.path for info in self._workspace._backend.list_model_files(self.name, self.version)
        ]

    def download(self, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False) -> str:
        """Download the model's files into ``target_dir``; returns the path of the model's
        file or folder there.

        The result appears whole or not at all; an existing one (a link by that name too) is
        replaced only with ``exist_ok=True``, and a link is replaced, never followed. The files
        are written in a new folder made inside ``target_dir``, reached without following
        links, then renamed into place.

        Example::

            Model(ws, "tf-dnn-mnist").download("./here")     # './here/model' (absolute)
        """
        target_root = Path(target_dir).expanduser().resolve()
        root_name = clean_relpath("name", self._record.root_name)
        final = target_root / root_name
        if os.path.lexists(final) and not exist_ok:
            raise ConflictError(
                f"{final} exists already; pass exist_ok=True to replace it, or choose another "
                "target_dir"
            )
        backend = self._workspace._backend
        infos = backend.list_model_files(self.name, self.version)
        root_fd = local_tree.open_root(os.fspath(target_root), create=True)
        staging = temp_name()
        where = str(target_root)
        try:
            folder = any("/" in info.path for info in infos)
            if folder:
                os.mkdir(staging, 0o777, dir_fd=root_fd)
            for info in infos:
                relpath = clean_relpath("name", info.path)
                # Files live under <root_name>/...; the staging name stands in for the root.
                inside = relpath.split("/", 1)[1] if "/" in relpath else ""
                destination = f"{staging}/{inside}" if inside else staging
                with (
                    backend.open_model_file(self.name, self.version, relpath) as source,
                    local_tree.open_write_at(
                        root_fd, destination, field="target_dir", where=where
                    ) as out,
                ):
                    shutil.copyfileobj(source, out, 8 << 20)
            existing = local_tree.lstat(root_fd, root_name)
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                shutil.rmtree(root_name, dir_fd=root_fd)
            elif existing is not None:
                local_tree.remove(root_fd, root_name)  # a file or a link, not what it names
            local_tree.replace(root_fd, staging, root_name)
        except BaseException:
            local_tree.remove_tree(root_fd, staging, field="target_dir", where=where)
            raise
        finally:
            os.close(root_fd)
        return str(final)

    @staticmethod
    def get_model_path(
        model_name: str, version: int | None = None, _workspace: Workspace | None = None
    ) -> str:
        """The local path of a model's file or folder.

        With ``_workspace`` the model is downloaded (once) to
        ``./modelyard-models/<name>/<version>/``. Without it, the path is looked up there and in
        ``$MODELYARD_MODEL_DIR``; the error lists where it looked.
        """
        check_name("model_name", model_name)
        if _workspace is not None:
            model = Model(_workspace, model_name, version=version)
            cache = Path(MODEL_CACHE_DIR) / model.name / str(model.version)
            local = cache / model._record.root_name
            if not local.exists():
                model.download(cache, exist_ok=True)
            return str(local.resolve())
        looked = []
        roots = [Path(MODEL_CACHE_DIR) / model_name]
        if os.environ.get(MODEL_DIR_ENV):
            roots.append(Path(os.environ[MODEL_DIR_ENV]) / model_name)
        for root in roots:
            looked.append(str(root))
            if not root.is_dir():
                continue
            versions = sorted(
                (int(p.name) for p in root.iterdir() if p.name.isdigit()), reverse=True
            )
            chosen = version if version is not None else (versions[0] if versions else None)
            if chosen is not None and (root / str(chosen)).is_dir():
                entries = [p for p in (root / str(chosen)).iterdir() if not p.name.startswith(".")]
                if len(entries) == 1:
                    return str(entries[0].resolve())
        raise NotFoundError(
            f"model {model_name!r} (version {version or 'latest'}) is not on this machine; "
            f"looked in: {', '.join(looked)}. Pass _workspace=ws to download it"
        )

    # -- changing ------------------------------------------------------------------------

    def add_tags(self, tags: dict[str, Any]) -> None:
        """Add or replace tags."""
        self._record = self._workspace._backend.update_model_tags(
            self.name, self.version, add=check_tags("tags", tags), remove=[]
        )

    def remove_tags(self, tags: builtins.list[str]) -> None:
        """Remove the tags with these keys."""
        if isinstance(tags, str):
            tags = [tags]
        self._record = self._workspace._backend.update_model_tags(
            self.name, self.version, add={}, remove=list(tags)
        )

    def delete(self) -> None:
        """Delete this version and its files. Deleting it again (a retry) is not an error."""
        self._workspace._backend.delete_model(self.name, self.version)

    def __repr__(self) -> str:
        return (
            f"Model(workspace={self._workspace.name!r}, name={self.name!r}, version={self.version})"
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Model) and other.id == self.id and other._workspace == self._workspace
        )

    def __hash__(self) -> int:
        return hash(self.id)
