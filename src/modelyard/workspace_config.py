"""What ties a v1 notebook to a workspace: its ``config.json`` and v1's Azure coordinates.

``Workspace.from_config()`` reads a :class:`ConfigFile` (one ``Workspace.write_config`` wrote,
or a v1 notebook's own); ``ws.subscription_id``, ``ws.resource_group`` and ``ws.location``
read what the workspace or its config file recorded, else :data:`V1_PLACEHOLDERS`; v1's
arguments that mean nothing here are checked against :data:`V1_CREATE_ARGUMENTS` and recorded.

Example::

    config = ConfigFile(workspace_name="demo", subscription_id="...")
    config.workspace_folder(Path("project/config.json"))   # project/.modelyard/demo
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from modelyard.errors import ValidationError

CONFIG_DIR = ".modelyard"
CONFIG_FILE = "config.json"
# What ws.subscription_id, ws.resource_group and ws.location read when neither the workspace
# nor its config.json recorded one (v1 notebooks print them; an embedded workspace has none).
V1_PLACEHOLDERS = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "local",
    "location": "local",
}
DEFAULT_SKU = "basic"  # v1's default edition
# Where v1 and modelyard keep a config.json, looked for in this order in each folder.
CONFIG_NAMES = (f"{CONFIG_DIR}/{CONFIG_FILE}", CONFIG_FILE, f".azureml/{CONFIG_FILE}")
# Workspace.create's v1 arguments that mean nothing here: recorded, with one warning.
V1_CREATE_ARGUMENTS = frozenset(
    {
        "create_resource_group",
        "sku",
        "tags",
        "friendly_name",
        "storage_account",
        "key_vault",
        "app_insights",
        "container_registry",
        "adb_workspace",
        "primary_user_assigned_identity",
        "cmk_keyvault",
        "resource_cmk_uri",
        "hbi_workspace",
        "default_cpu_compute_target",
        "default_gpu_compute_target",
        "private_endpoint_config",
        "private_endpoint_auto_approval",
        "user_assigned_identity_for_cmk_encryption",
        "system_datastores_auth_mode",
        "v1_legacy_mode",
        "show_output",
    }
)


class ConfigFile(BaseModel):
    """The contents of a ``config.json``: one :meth:`Workspace.write_config` wrote, or a v1
    notebook's own (``subscription_id``, ``resource_group``, ``workspace_name``).

    ``folder`` is relative to the folder holding the config file when it is not absolute
    (``location`` is the name modelyard 0.1 wrote it under). Without one, the workspace is
    ``.modelyard/<workspace_name>`` beside the config file (in its folder when that is
    ``.modelyard`` itself).
    """

    model_config = ConfigDict(extra="ignore")

    workspace_name: str
    # A server's workspace: the server's URL (the token is never in this file).
    server: str | None = None
    folder: str | None = None
    location: str | None = None
    subscription_id: str | None = None
    resource_group: str | None = None

    def workspace_folder(self, config: Path) -> Path:
        """Where the workspace this config file (at ``config``) names lives."""
        named = self.folder or self.location
        if named is None:
            home = config.parent if config.parent.name == CONFIG_DIR else config.parent / CONFIG_DIR
            if config.parent.name == ".azureml":
                home = config.parent.parent / CONFIG_DIR
            return home / self.workspace_name
        folder = Path(named).expanduser()
        return folder if folder.is_absolute() else config.parent / folder


def check_auth(auth: object) -> None:
    """v1's ``auth`` means nothing for an embedded workspace; a path there is a folder given
    where modelyard 0.1 took it (second argument), which would otherwise be ignored."""
    if isinstance(auth, str | os.PathLike):
        raise ValidationError(
            "auth",
            f"{auth!r} is not an authentication object; to name the workspace's folder, "
            "pass folder=...",
        )


def v1_coordinates(
    subscription_id: str | None, resource_group: str | None, location: str | None
) -> dict[str, str]:
    """The v1 coordinates given (each a string), for workspace.json."""
    given = {
        "subscription_id": subscription_id,
        "resource_group": resource_group,
        "location": location,
    }
    for field_name, value in given.items():
        if value is not None and not isinstance(value, str):
            raise ValidationError(field_name, f"must be a string, not {type(value).__name__}")
    return {key: value for key, value in given.items() if value}


def recordable(value: object) -> object:
    """``value`` as workspace.json can hold it (JSON, else its repr)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
