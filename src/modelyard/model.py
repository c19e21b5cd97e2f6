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
from modelyard.deploy import deploy
from modelyard.environment import Environment
from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.hints import say
from modelyard.model_arguments import (
    CREATED_BY_PROPERTY,
    DATASETS_PROPERTY,
    DEPLOYMENT_PROPERTY,
    FRAMEWORK_PROPERTY,
    FRAMEWORK_VERSION_PROPERTY,
    RESERVED_PREFIX,
    Framework,
    only_children,
    recorded,
    user_properties,
    v1_properties,
)
from modelyard.names import check_name, check_tags, clean_relpath, tag_filter, temp_name
from modelyard.run_details import current_account
from modelyard.store import local_tree
from modelyard.webservice import DeploymentConfiguration, Webservice
from modelyard.widgets import html as repr_html
from modelyard.widgets.listing import DisplayList

if TYPE_CHECKING:
    from modelyard.run import Run
    from modelyard.workspace import Workspace

# Where get_model_path keeps downloaded models, relative to the current folder: v1's
# ./azureml-models/<name>/<version>, so v1 scripts that open that path find them. Earlier
# modelyard versions used ./modelyard-models, still looked in.
MODEL_CACHE_DIR = "azureml-models"
OLD_MODEL_CACHE_DIR = "modelyard-models"
MODEL_DIR_ENV = "MODELYARD_MODEL_DIR"
# What v1 sets to the folder of the models a scoring script gets: looked in first.
V1_MODEL_DIR_ENV = "AZUREML_MODEL_DIR"
# v1's mimeType of every model it registered from files.
MIME_TYPE = "application/octet-stream"

logger = logging.getLogger(__name__)


def _new_upload_id() -> str:
    return uuid.uuid4().hex


def _open_no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def _find_model(
    workspace: Workspace,
    name: str | None,
    version: int | None,
    tags: Any,
    properties: Any,
    run_id: str | None,
    framework: str | None,
) -> ModelRecord:
    """The newest version matching every filter given (v1's lookup by tags, properties, run
    id or framework), read a page at a time."""
    wanted_tags = tag_filter(tags, "tags")
    wanted_properties = tag_filter(properties, "properties") or {}
    records = every_item(
        lambda limit, after: workspace._backend.list_models(
            name, tags=wanted_tags, limit=limit, after=after
        )
    )
    for record in records:
        if version is not None and record.version != version:
            continue
        if run_id is not None and record.run_id != run_id:
            continue
        if framework is not None and record.properties.get(FRAMEWORK_PROPERTY) != framework:
            continue
        if all(
            key in record.properties and (value is None or record.properties[key] == value)
            for key, value in wanted_properties.items()
        ):
            return record
    asked = {
        "name": name,
        "version": version,
        "tags": tags,
        "properties": properties,
        "run_id": run_id,
        "model_framework": framework,
    }
    described = ", ".join(f"{k}={v!r}" for k, v in asked.items() if v is not None)
    raise NotFoundError(f"no registered model matches {described}; Model.list(ws) lists them")


def _version_folders(root: Path, version: int | None) -> builtins.list[Path]:
    """``root/<version>`` (the newest when None) when it is a folder; else nothing."""
    if not root.is_dir():
        return []
    if version is None:
        versions = sorted((int(p.name) for p in root.iterdir() if p.name.isdigit()), reverse=True)
        if not versions:
            return []
        version = versions[0]
    folder = root / str(version)
    return [folder] if folder.is_dir() else []


class InferenceConfig:
    """How a deployed model is scored (v1's ``InferenceConfig``): the entry script, the folder
    it lives in, and the Environment it runs in (default: modelyard's own Python, as runs).

    The entry script defines ``init()`` (run once per worker: load the model from
    ``Model.get_model_path(name)`` or ``$AZUREML_MODEL_DIR``) and ``run(raw_data)`` (answer
    one request, given its body as a string). ``conda_file`` (a conda YAML file) stands for
    an Environment made from it. v1's image settings (``runtime``, ``base_image``,
    ``extra_docker_file_steps``, ...) have no meaning here and are kept only as given.

    Example::

        inference_config = InferenceConfig(entry_script="score.py", source_directory="./svc",
                                           environment=env)
    """

    def __init__(
        self,
        entry_script: str | os.PathLike[str] | None = None,
        runtime: str | None = None,
        conda_file: str | os.PathLike[str] | None = None,
        extra_docker_file_steps: str | None = None,
        source_directory: str | os.PathLike[str] | None = None,
        enable_gpu: bool | None = None,
        description: str | None = None,
        base_image: str | None = None,
        base_image_registry: object = None,
        cuda_version: str | None = None,
        environment: Environment | None = None,
    ) -> None:
        if entry_script is None:
            raise ValidationError("entry_script", "give the scoring script, e.g. 'score.py'")
        if environment is not None and conda_file is not None:
            raise ValidationError(
                "conda_file", "give environment= or conda_file=, not both (conda_file makes one)"
            )
        if conda_file is not None:
            from_folder = Path(source_directory or ".") / conda_file
            conda_path = from_folder if from_folder.is_file() else Path(conda_file)
            environment = Environment.from_conda_specification("scoring", conda_path)
        self.entry_script = os.fspath(entry_script)
        self.source_directory = os.fspath(source_directory) if source_directory else None
        self.environment = environment
        self.description = description
        self.enable_gpu = enable_gpu
        self.runtime = runtime

    def _source(self) -> tuple[Path | None, str]:
        """The source folder (absolute) and the entry script relative to it; without a
        folder, (None, the script's path)."""
        if self.source_directory is None:
            return None, self.entry_script
        folder = Path(self.source_directory).expanduser().resolve()
        if not folder.is_dir():
            raise ValidationError(
                "source_directory", f"{self.source_directory} is not a folder on this machine"
            )
        entry = clean_relpath("entry_script", Path(self.entry_script).as_posix())
        return folder, entry

    def __repr__(self) -> str:
        return (
            f"InferenceConfig(entry_script={self.entry_script!r}, "
            f"source_directory={self.source_directory!r})"
        )


class Model:
    """One version of a registered model, looked up as v1 did: ``Model(ws, name)`` is the
    latest version, ``Model(ws, name, version=3)`` or ``Model(ws, id="name:3")`` one version;
    ``tags``, ``properties``, ``run_id`` and ``model_framework`` keep the newest version that
    matches them all (with or without a name). NotFoundError when none does. v1's ``expand``
    changes nothing here: a version always comes whole.

    Example::

        Model(ws, "mnist", tags={"stage": "prod"}).version       # 4
        Model(ws, run_id=run.id)                                   # what that run registered
    """

    Framework = Framework

    def __init__(
        self,
        workspace: Workspace,
        name: str | None = None,
        id: str | None = None,
        tags: Any = None,
        properties: Any = None,
        version: int | str | None = None,
        run_id: str | None = None,
        model_framework: str | None = None,
        expand: bool = True,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise ValidationError(
                sorted(kwargs)[0], "Model() has no such argument (v1's or modelyard's)"
            )
        if id is not None:
            name, _, number = id.partition(":")
            if not number.isdigit():
                raise ValidationError("id", f"{id!r} is not a model id of the form name:version")
            version = int(number)
        if isinstance(version, str):
            if not version.isdigit():
                raise ValidationError("version", f"{version!r} is not a version number")
            version = int(version)
        if name is not None:
            check_name("name", name)
        self._workspace = workspace
        filters = tags, properties, run_id, model_framework
        if name is not None and all(f is None for f in filters):
            self._record = workspace._backend.get_model(name, version)
            return
        if name is None and version is None and all(f is None for f in filters):
            raise ValidationError("name", "give the model's name (or id='name:version')")
        self._record = _find_model(
            workspace, name, version, tags, properties, run_id, model_framework
        )

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
        datasets: builtins.list[tuple[str, Any]] | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        child_paths: builtins.list[str] | None = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
        **kwargs: Any,
    ) -> Model:
        """Register a local file or folder as the next version of ``model_name``.

        v1's arguments are taken (see model_arguments.py): ``model_framework`` and
        ``model_framework_version`` are recorded and read back, ``datasets`` recorded by
        name, ``child_paths`` (paths inside the ``model_path`` folder) registers only those
        files or folders; the deployment ones (``sample_input_dataset``, ...) are recorded
        with one warning. An unknown keyword is a ValidationError naming it.

        In a folder, links follow a run snapshot's rule: a link to a file inside the folder is
        stored as that file; links to folders, links leading out of the folder (to
        ``/etc/passwd``, say), broken links and special files are left out, with a warning
        naming them. ``model_path`` itself may be a link: it is the path you chose.

        Example::

            Model.register(ws, "./outputs/model.pkl", "sklearn-mnist", tags={"area": "mnist"})
        """
        check_name("model_name", model_name)
        clean_tags = check_tags("tags", tags)
        clean_properties = user_properties(properties)
        clean_properties.update(
            Model._v1_arguments(
                "Model.register",
                model_framework=model_framework,
                model_framework_version=model_framework_version,
                datasets=datasets,
                sample_input_dataset=sample_input_dataset,
                sample_output_dataset=sample_output_dataset,
                resource_configuration=resource_configuration,
                **kwargs,
            )
        )
        source = Path(model_path).expanduser()
        if not source.exists():
            raise ValidationError("model_path", f"{source} does not exist")
        source = source.resolve()
        if source.is_file():
            if child_paths is not None:
                raise ValidationError(
                    "child_paths", f"{source} is a file; child_paths choose files of a folder"
                )
            files = [(os.fspath(source), source.name)]
        else:
            found = local_tree.files_to_read(os.fspath(source), "registering", logger)
            if child_paths is not None:
                found = only_children(found, child_paths, source)
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
        v1: dict[str, str],
    ) -> Model:
        check_name("model_name", model_name)
        clean_tags = check_tags("tags", tags)
        clean_properties = {**user_properties(properties), **v1}
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

    @staticmethod
    def _v1_arguments(caller: str, **arguments: Any) -> dict[str, str]:
        """The reserved properties recording v1's arguments, with who registers."""
        return {
            **v1_properties(caller, **arguments),
            CREATED_BY_PROPERTY: current_account(),
        }

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
        """The properties given at registration (modelyard's own ``modelyard.`` ones left
        out: they are read back by the attributes of their names)."""
        return {
            key: value
            for key, value in self._record.properties.items()
            if not key.startswith(RESERVED_PREFIX)
        }

    @property
    def model_framework(self) -> str | None:
        """The framework given at registration (``Model.Framework.TENSORFLOW``...), or None."""
        return self._record.properties.get(FRAMEWORK_PROPERTY)

    @property
    def model_framework_version(self) -> str | None:
        return self._record.properties.get(FRAMEWORK_VERSION_PROPERTY)

    @property
    def created_by(self) -> str | None:
        """The OS account that registered this version (None for versions older than this
        record)."""
        return self._record.properties.get(CREATED_BY_PROPERTY)

    @property
    def url(self) -> str:
        """Where the version's files are stored: a local folder, or the store's URL (v1's
        storage URL of the model)."""
        return self._workspace._backend.model_url(self._record)

    @property
    def experiment_name(self) -> str | None:
        """The experiment of the run that made this model, when it was registered from one."""
        if self._record.run_id is None:
            return None
        try:
            return self._workspace._backend.get_run(self._record.run_id).experiment_name
        except NotFoundError:
            return None

    def serialize(self) -> dict[str, Any]:
        """The version as v1's JSON dict (``createdTime``, ``createdBy``, ``description``,
        ``id``, ``mimeType``, ``name``, ``framework``, ``frameworkVersion``, ``tags``,
        ``properties``, ``version``, ``url``, ``experimentName``, ``runId``, ...).

        Example::

            json.dumps(Model(ws, "mnist").serialize())
        """
        properties = self._record.properties
        deployment = recorded(properties, DEPLOYMENT_PROPERTY) or {}
        return {
            "createdTime": self.created_time.isoformat(),
            "createdBy": {"userName": self.created_by} if self.created_by else None,
            "description": self.description,
            "id": self.id,
            "mimeType": MIME_TYPE,
            "name": self.name,
            "framework": self.model_framework or Framework.CUSTOM,
            "frameworkVersion": self.model_framework_version,
            "tags": self.tags,
            "kvTags": self.tags,
            "properties": self.properties,
            "unpack": False,
            "url": self.url,
            "version": self.version,
            "experimentName": self.experiment_name,
            "runId": self.run_id,
            "datasets": recorded(properties, DATASETS_PROPERTY) or {},
            "sampleInputDatasetId": deployment.get("sample_input_dataset"),
            "sampleOutputDatasetId": deployment.get("sample_output_dataset"),
            "resourceConfiguration": deployment.get("resource_configuration"),
            "parentModelId": None,
            "derivedModelIds": [],
        }

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
        # A list as v1's is, which a notebook shows as a table.
        return DisplayList(
            [Model._from_record(workspace, record) for record in records],
            lambda models: repr_html.models_html([m._record for m in models]),
        )

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
                f"{final} exists already; pass {say('exist_ok=True')} to replace it, or choose "
                f"another {say('target_dir')}"
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
        """The local path of a model's file or folder, where v1 kept it.

        With ``_workspace`` the model is downloaded (once) to v1's
        ``./azureml-models/<name>/<version>/``, so a script that opens that path by name
        finds it too. Without it, the path is looked up in ``$AZUREML_MODEL_DIR`` (v1's
        folder of a scoring script's models: the model's own version folder, or a folder of
        ``<name>/<version>/``), ``$MODELYARD_MODEL_DIR``, ``./azureml-models`` and
        ``./modelyard-models``; the error lists where it looked.

        Example::

            path = Model.get_model_path("sklearn-mnist", _workspace=ws)
            # '/home/me/project/azureml-models/sklearn-mnist/1/model.pkl'
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
        folders: builtins.list[Path] = []
        for variable in (V1_MODEL_DIR_ENV, MODEL_DIR_ENV):
            if os.environ.get(variable):
                base = Path(os.environ[variable])
                # v1 sets it to azureml-models/<name>/<version> when a script has one model.
                if (
                    base.name.isdigit()
                    and base.parent.name == model_name
                    and (version is None or int(base.name) == version)
                ):
                    folders.append(base)
                folders.extend(_version_folders(base / model_name, version))
                looked.append(f"{variable}={base}")
        for cache_dir in (MODEL_CACHE_DIR, OLD_MODEL_CACHE_DIR):
            folders.extend(_version_folders(Path(cache_dir) / model_name, version))
            looked.append(str(Path(cache_dir) / model_name))
        for folder in folders:
            entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
            if len(entries) == 1:
                return str(entries[0].resolve())
        raise NotFoundError(
            f"model {model_name!r} (version {version or 'latest'}) is not on this machine; "
            f"looked in: {', '.join(looked)}. Pass _workspace=ws to download it"
        )

    @staticmethod
    def deploy(
        workspace: Workspace,
        name: str,
        models: builtins.list[Model],
        inference_config: InferenceConfig | None = None,
        deployment_config: DeploymentConfiguration | None = None,
        deployment_target: object = None,
        overwrite: bool = False,
        show_output: bool = False,
    ) -> Webservice:
        """Deploy ``models`` as the scoring service ``name`` (see :mod:`modelyard.webservice`);
        returns it while it starts: ``wait_for_deployment()`` waits until it answers.

        Example::

            service = Model.deploy(ws, "tf-mnist-svc", [model], inference_config,
                                   LocalWebservice.deploy_configuration(port=6789))
            service.wait_for_deployment(show_output=True)
        """
        if inference_config is None:
            raise ValidationError(
                "inference_config", "give InferenceConfig(entry_script='score.py', ...)"
            )
        service = deploy(
            workspace,
            name,
            models,
            inference_config,
            deployment_config,
            overwrite,
            deployment_target,
        )
        if show_output:
            print(f"{name}: {service.state} (wait_for_deployment() waits until it answers)")
        return service

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

    def _repr_html_(self) -> str:
        return repr_html.model_html(self._record)

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


__all__ = ["InferenceConfig", "Model"]
