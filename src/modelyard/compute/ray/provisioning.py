"""What ``AmlCompute.provisioning_configuration(...)`` returns, and the autoscaler config of a
Ray cluster on this machine made from it.

A configuration says how big a cluster's nodes are (``vm_size``), how many of them it may have
(``min_nodes`` to ``max_nodes``), how long an idle node stays, and where the cluster is: on this
machine (``provider="local"``, the default: modelyard starts Ray and its autoscaler) or an
existing Ray cluster (``address=``, stored as provider ``"attached"``). The v1 arguments that
mean nothing for a Ray cluster (virtual networks, admin accounts, ...) are accepted, recorded in
``ignored`` and warned about, so a v1 notebook runs unchanged::

    cfg = provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=4)
    cfg.vm().gpus                               # 1
    attached = provisioning_configuration(address="ray://head.example.com:10001")
    attached.provider                           # 'attached'
"""

from __future__ import annotations

import ipaddress
import json
import re
import warnings
from dataclasses import dataclass, field, fields
from typing import Any

from modelyard.compute.ray.vm_sizes import VmSize, vm_size
from modelyard.errors import ValidationError

# v1's defaults (AmlComputeProvisioningConfiguration): no size means Standard_NC6, no
# max_nodes means 4, no idle time means 1800 s.
DEFAULT_VM_SIZE = "STANDARD_NC6"
DEFAULT_MAX_NODES = 4
DEFAULT_IDLE_SECONDS = 1800
VM_PRIORITIES = ("dedicated", "lowpriority")
LOCAL = "local"
ATTACHED = "attached"
# The providers modelyard starts clusters with. Clouds are reached through Ray's cluster
# launcher (``modelyard compute export``) and then attached by address.
PROVIDERS = (LOCAL,)
RAY_SCHEME = "ray://"
SECRET = "<set>"

# The v1 arguments that have no meaning for a Ray cluster, with v1's defaults: a value other
# than its default is recorded in ``ignored``.
_V1_IGNORED: dict[str, Any] = {
    "admin_username": None,
    "admin_user_password": None,
    "admin_user_ssh_key": None,
    "vnet_resourcegroup_name": None,
    "vnet_name": None,
    "subnet_name": None,
    "tags": None,
    "description": None,
    "remote_login_port_public_access": "NotSpecified",
    "identity_type": None,
    "identity_id": None,
    "location": None,
    "enable_node_public_ip": True,
}
_SECRETS = frozenset({"admin_user_password", "admin_user_ssh_key"})
# An unknown argument whose name says it holds a secret is not recorded either.
_SECRET_WORDS = ("password", "secret", "token", "credential", "ssh_key", "private_key")

# The fake multi-node provider of Ray's autoscaler starts nodes as processes on this machine.
# Ray 2.60's "fake_multinode" provider type fails (its example.yaml is missing from the wheel),
# so it is named as an external provider by module; the head node id is the one it expects.
FAKE_PROVIDER_MODULE = "ray.autoscaler._private.fake_multi_node.node_provider.FakeMultiNodeProvider"
FAKE_HEAD_NODE_ID = "f" * 51 + "00000"
LOCAL_HEAD_NODE_TYPE = "ray.head.default"
WORKER_NODE_TYPE = "worker"

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_ADDRESS_HELP = (
    "write it as 'ray://<head>:10001' (Ray Client) or '<head>:6379' (the head's GCS port), "
    "<head> a host name or IP address"
)


@dataclass
class ProvisioningConfiguration:
    """How a Ray cluster compute target is provisioned. Make one with
    :func:`provisioning_configuration` (``AmlCompute.provisioning_configuration``); the fields
    are checked when it is made and by :meth:`validate_configuration`.

    Example::

        cfg = ProvisioningConfiguration(vm_size="STANDARD_D2_V2", max_nodes=2)
        cfg.to_dict()["max_nodes"]                # 2
    """

    vm_size: str = DEFAULT_VM_SIZE
    vm_priority: str = "dedicated"
    min_nodes: int = 0
    max_nodes: int = DEFAULT_MAX_NODES
    idle_seconds_before_scaledown: int = DEFAULT_IDLE_SECONDS
    provider: str = LOCAL
    address: str | None = None
    ignored: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate_configuration()

    def validate_configuration(self) -> None:
        """Check every field (v1's name); raise ValidationError naming the first one at fault.

        Example::

            cfg.max_nodes = 0
            cfg.validate_configuration()          # ValidationError: max_nodes: ...
        """
        vm_size(self.vm_size)
        if not isinstance(self.vm_priority, str) or self.vm_priority not in VM_PRIORITIES:
            raise ValidationError(
                "vm_priority",
                f"{self.vm_priority!r} is not a VM priority: use 'dedicated' or 'lowpriority'",
            )
        min_nodes = _whole("min_nodes", self.min_nodes, minimum=0)
        max_nodes = _whole("max_nodes", self.max_nodes, minimum=1)
        if max_nodes < min_nodes:
            raise ValidationError(
                "max_nodes",
                f"max_nodes={max_nodes} is below min_nodes={min_nodes}: raise max_nodes or "
                "lower min_nodes",
            )
        _whole("idle_seconds_before_scaledown", self.idle_seconds_before_scaledown, minimum=0)
        if self.address is None:
            if self.provider == ATTACHED:
                raise ValidationError(
                    "address",
                    "an attached cluster needs its address: "
                    "provisioning_configuration(address='ray://<head>:10001')",
                )
            if self.provider not in PROVIDERS:
                raise ValidationError(
                    "provider",
                    f"{self.provider!r} is not a provider modelyard starts clusters with: "
                    f"'{LOCAL}' starts one on this machine. For aws, gcp or azure, write a "
                    "cluster-launcher file with `modelyard compute export NAME --provider "
                    "aws`, start it with `ray up FILE`, then attach it with "
                    "address='ray://<head>:10001'",
                )
        else:
            split_address(self.address)
            if self.provider != ATTACHED:
                raise ValidationError(
                    "provider",
                    f"provider={self.provider!r} and address={self.address!r} contradict "
                    f"each other: an address attaches an existing cluster (provider "
                    f"'{ATTACHED}'); give one of them",
                )
        if not isinstance(self.ignored, dict):
            raise ValidationError("ignored", "must be a dict of argument names to values")

    def vm(self) -> VmSize:
        """The size of each node.

        Example::

            provisioning_configuration(vm_size="nc6").vm().gpu_type     # 'K80'
        """
        return vm_size(self.vm_size)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field: what the workspace stores.

        Example::

            ProvisioningConfiguration.from_dict(cfg.to_dict()) == cfg    # True
        """
        return {
            "vm_size": self.vm_size,
            "vm_priority": self.vm_priority,
            "min_nodes": self.min_nodes,
            "max_nodes": self.max_nodes,
            "idle_seconds_before_scaledown": self.idle_seconds_before_scaledown,
            "provider": self.provider,
            "address": self.address,
            "ignored": dict(self.ignored),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProvisioningConfiguration:
        """The configuration ``to_dict`` gave ``data`` for; missing fields take their
        defaults, unknown ones raise ValidationError.

        Example::

            ProvisioningConfiguration.from_dict({"vm_size": "D2_v2", "max_nodes": 2})
        """
        if not isinstance(data, dict):
            raise ValidationError(
                "provisioning", f"expected a dict of fields, got {type(data).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(
                "provisioning",
                f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: the "
                f"fields are {', '.join(sorted(known))}",
            )
        values = dict(data)
        if isinstance(values.get("ignored"), dict):
            values["ignored"] = dict(values["ignored"])
        return cls(**values)


AmlComputeProvisioningConfiguration = ProvisioningConfiguration


def provisioning_configuration(
    vm_size: str = "",
    vm_priority: str = "dedicated",
    min_nodes: int = 0,
    max_nodes: int | None = None,
    idle_seconds_before_scaledown: int | None = None,
    admin_username: str | None = None,
    admin_user_password: str | None = None,
    admin_user_ssh_key: str | None = None,
    vnet_resourcegroup_name: str | None = None,
    vnet_name: str | None = None,
    subnet_name: str | None = None,
    tags: dict[str, str] | None = None,
    description: str | None = None,
    remote_login_port_public_access: str = "NotSpecified",
    identity_type: str | None = None,
    identity_id: list[str] | None = None,
    location: str | None = None,
    enable_node_public_ip: bool = True,
    *,
    provider: str = LOCAL,
    address: str | None = None,
    **more: Any,
) -> ProvisioningConfiguration:
    """The configuration of a Ray cluster compute target, with v1's arguments and defaults.

    ``provider="local"`` (the default) means a Ray cluster on this machine whose nodes have
    ``vm_size``'s cores and GPUs; ``address="ray://host:10001"`` or ``"host:6379"`` attaches an
    existing Ray cluster. The v1 arguments without meaning here, and unknown keyword
    arguments, are recorded in ``ignored`` (passwords and keys as ``"<set>"``) with one
    UserWarning naming them. Bad values raise ValidationError naming the argument.

    Example::

        cfg = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
        ComputeTarget.create(ws, "cpucluster", cfg)
    """
    given = {
        "admin_username": admin_username,
        "admin_user_password": admin_user_password,
        "admin_user_ssh_key": admin_user_ssh_key,
        "vnet_resourcegroup_name": vnet_resourcegroup_name,
        "vnet_name": vnet_name,
        "subnet_name": subnet_name,
        "tags": tags,
        "description": description,
        "remote_login_port_public_access": remote_login_port_public_access,
        "identity_type": identity_type,
        "identity_id": identity_id,
        "location": location,
        "enable_node_public_ip": enable_node_public_ip,
    }
    v1_unused = [name for name, value in given.items() if value != _V1_IGNORED[name]]
    ignored = {name: _recorded(name, given[name]) for name in v1_unused}
    ignored.update({name: _recorded(name, value) for name, value in more.items()})
    if address is not None and provider in (LOCAL, ATTACHED):
        provider = ATTACHED
    config = ProvisioningConfiguration(
        vm_size=vm_size if vm_size != "" else DEFAULT_VM_SIZE,
        vm_priority=vm_priority.lower() if isinstance(vm_priority, str) else vm_priority,
        min_nodes=min_nodes,
        max_nodes=DEFAULT_MAX_NODES if max_nodes is None else max_nodes,
        idle_seconds_before_scaledown=(
            DEFAULT_IDLE_SECONDS
            if idle_seconds_before_scaledown is None
            else idle_seconds_before_scaledown
        ),
        provider=provider,
        address=address,
        ignored=ignored,
    )
    parts = []
    if v1_unused:
        parts.append(
            f"{', '.join(v1_unused)} {'has' if len(v1_unused) == 1 else 'have'} no meaning "
            "for a Ray cluster"
        )
    if more:
        parts.append(
            f"{', '.join(more)} {'is' if len(more) == 1 else 'are'} not an argument of v1's "
            "provisioning_configuration"
        )
    if parts:
        warnings.warn(
            f"provisioning_configuration: {'; '.join(parts)}; recorded in the "
            "configuration's `ignored`, not used",
            UserWarning,
            stacklevel=2,
        )
    return config


def local_autoscaler_config(
    config: ProvisioningConfiguration, cluster_name: str, gcs_address: str
) -> dict[str, Any]:
    """The Ray autoscaler config of a cluster on this machine: Ray's fake multi-node provider
    starts each worker node as local processes with ``config``'s cores and GPUs, between
    ``min_nodes`` and ``max_nodes``; the head holds no runs (CPU 0).

    Example::

        local_autoscaler_config(cfg, "cpucluster", "127.0.0.1:6379")["max_workers"]    # 4
    """
    if config.provider != LOCAL:
        raise ValidationError(
            "provider",
            f"only a cluster on this machine (provider '{LOCAL}') has a local autoscaler; "
            f"{config.provider!r} clusters scale with their own",
        )
    size = config.vm()
    # Only CPU and GPU: the fake provider refuses "memory" as a custom resource.
    resources = {"CPU": size.cores}
    if size.gpus > 0:
        resources["GPU"] = size.gpus
    return {
        "cluster_name": cluster_name,
        "max_workers": config.max_nodes,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": config.idle_seconds_before_scaledown / 60,
        "provider": {
            "type": "external",
            "module": FAKE_PROVIDER_MODULE,
            "gcs_address": gcs_address,
            "launch_multiple": True,
            "head_node_id": FAKE_HEAD_NODE_ID,
            "disable_launch_config_check": True,
            "disable_node_updaters": True,
        },
        "auth": {"ssh_user": "ubuntu"},
        "docker": {},
        "head_node_type": LOCAL_HEAD_NODE_TYPE,
        "available_node_types": {
            LOCAL_HEAD_NODE_TYPE: {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            WORKER_NODE_TYPE: {
                "resources": resources,
                "node_config": {},
                "min_workers": config.min_nodes,
                "max_workers": config.max_nodes,
            },
        },
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


def split_address(address: str) -> tuple[str, int]:
    """The host and port of a Ray cluster address, ``ray://host:port`` or ``host:port``
    (IPv6 in brackets); ValidationError("address", ...) when it is neither.

    Example::

        split_address("ray://10.0.0.5:10001")     # ('10.0.0.5', 10001)
    """
    if not isinstance(address, str):
        raise ValidationError("address", f"{address!r} is not an address: {_ADDRESS_HELP}")
    rest = address[len(RAY_SCHEME) :] if address.startswith(RAY_SCHEME) else address
    if "://" in rest:
        raise ValidationError(
            "address",
            f"{address!r} has a scheme other than ray://: {_ADDRESS_HELP}",
        )
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port:
        raise ValidationError("address", f"{address!r} has no host and port: {_ADDRESS_HELP}")
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise ValidationError(
            "address", f"{port!r} in {address!r} is not a port: use a number from 1 to 65535"
        )
    if not _is_host(host):
        raise ValidationError(
            "address",
            f"{host!r} in {address!r} is not a host name or IP address (an IPv6 address goes "
            f"in brackets, [::1]:10001): {_ADDRESS_HELP}",
        )
    return host.strip("[]"), int(port)


def _is_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return True
    labels = host.removesuffix(".").split(".")
    # An all-digit last label is a mistyped IPv4 address (300.1.1.1), not a host name.
    return (
        len(host) <= 253
        and all(_HOST_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )


def _whole(name: str, value: object, minimum: int) -> int:
    # bool is an int in Python; max_nodes=True is a mistake, not 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValidationError(name, f"{value!r} must be a whole number of at least {minimum}")
    return value


def _recorded(name: str, value: Any) -> Any:
    """How an ignored argument is kept: secrets as "<set>", the rest as JSON would store them
    (tuples become lists), or their repr when JSON cannot hold them."""
    if name in _SECRETS or any(word in name.lower() for word in _SECRET_WORDS):
        return SECRET
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return repr(value)


__all__ = [
    "FAKE_HEAD_NODE_ID",
    "AmlComputeProvisioningConfiguration",
    "ProvisioningConfiguration",
    "local_autoscaler_config",
    "provisioning_configuration",
    "split_address",
]
