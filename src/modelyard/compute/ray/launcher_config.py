"""The Ray cluster-launcher file (what ``ray up`` takes) of a provisioning configuration, for
AWS, GCP or Azure: ``modelyard compute export NAME --provider aws|gcp|azure``.

modelyard starts clusters on this machine only; on a cloud, Ray's cluster launcher starts the
cluster from this file and modelyard attaches it by address::

    text = export_yaml("gpucluster", provisioning_configuration(vm_size="NC6"), "aws")
    # ray up gpucluster.yaml; ray attach gpucluster.yaml -p 10001; then
    # AmlCompute.provisioning_configuration(address="ray://localhost:10001")

The file has one head node type (Ray's services and autoscaler; it holds no runs, CPU 0, as on
this machine) and one worker type of the configuration's VM size, between ``min_nodes`` and
``max_nodes``; ``vm_priority="lowpriority"`` makes the workers spot (preemptible) instances.
What it leaves out (start commands, the cloud SDK on the head) Ray fills in from its defaults
for the provider.
"""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

from modelyard.compute.ray.provisioning import WORKER_NODE_TYPE, ProvisioningConfiguration
from modelyard.compute.ray.vm_sizes import GCP_ACCELERATORS, VmSize, supported_vm_sizes
from modelyard.errors import ValidationError
from modelyard.names import check_name

CLOUD_PROVIDERS = ("aws", "gcp", "azure")
DEFAULT_REGIONS = {"aws": "us-west-2", "gcp": "us-west1", "azure": "westus2"}
# Underscores, not Ray's usual "ray.head.default": GCP labels (which carry the node type)
# allow no dots.
HEAD_NODE_TYPE = "ray_head_default"
# The head runs Ray's services and the autoscaler only: a small general-purpose machine.
HEAD_INSTANCE = {"aws": "m5.large", "gcp": "n1-standard-2", "azure": "Standard_D2s_v3"}
GCP_PROJECT_PLACEHOLDER = "fill-in-your-gcp-project-id"
# Google's Deep Learning VM images; the CUDA one has the NVIDIA driver installer.
GCP_CPU_IMAGE = "projects/deeplearning-platform-release/global/images/family/common-cpu"
GCP_GPU_IMAGE = (
    "projects/deeplearning-platform-release/global/images/family/common-cu121-debian-11-py310"
)
# Microsoft's Data Science VM image (CUDA drivers included), as in Ray's Azure defaults.
AZURE_IMAGE = {
    "imagePublisher": "microsoft-dsvm",
    "imageOffer": "ubuntu-2204",
    "imageSku": "2204-gen2",
    "imageVersion": "latest",
}
RAY_CLIENT_PORT = 10001
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# GCP label values (cluster names are labels there): lower case, digits, '-' and '_'.
_GCP_LABEL = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def cluster_launcher_config(
    name: str,
    config: ProvisioningConfiguration,
    provider: str,
    *,
    region: str | None = None,
) -> dict[str, Any]:
    """Ray's cluster-launcher config for cluster ``name`` on ``provider`` ("aws", "gcp" or
    "azure"), in ``region`` (default us-west-2, us-west1, westus2). Workers are the closest
    instance type to ``config.vm_size`` with its cores and GPUs as their Ray resources.

    Example::

        cfg = provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
        cluster_launcher_config("cpucluster", cfg, "aws")["available_node_types"]["worker"]
        # {'min_workers': 0, 'max_workers': 4, 'resources': {'CPU': 2},
        #  'node_config': {'InstanceType': 'm5.large'}}
    """
    check_name("name", name)
    if provider not in CLOUD_PROVIDERS:
        raise ValidationError(
            "provider",
            f"{provider!r} is not a cloud to write a cluster-launcher file for: use one of "
            f"{', '.join(CLOUD_PROVIDERS)} (a cluster on this machine needs no file)",
        )
    if provider == "gcp" and not _GCP_LABEL.fullmatch(name):
        raise ValidationError(
            "name",
            f"{name!r} cannot name a GCP cluster: GCP labels take lower-case letters, digits, "
            "'-' and '_' (at most 63)",
        )
    if region is None:
        region = DEFAULT_REGIONS[provider]
    elif not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ValidationError(
            "region",
            f"{region!r} is not a region name: write it as the cloud does, such as "
            f"{DEFAULT_REGIONS[provider]!r}",
        )
    config.validate_configuration()
    size = cloud_size(config.vm())
    spot = config.vm_priority == "lowpriority"
    worker_resources = {"CPU": size.cores}
    if size.gpus:
        worker_resources["GPU"] = size.gpus
    head, worker = _NODE_CONFIGS[provider](size, spot)
    return {
        "cluster_name": name,
        "max_workers": config.max_nodes,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": config.idle_seconds_before_scaledown / 60,
        "provider": _provider_block(provider, name, region),
        "auth": {"ssh_user": "ubuntu"},
        "available_node_types": {
            HEAD_NODE_TYPE: {"resources": {"CPU": 0}, "node_config": head},
            WORKER_NODE_TYPE: {
                "min_workers": config.min_nodes,
                "max_workers": config.max_nodes,
                "resources": worker_resources,
                "node_config": worker,
            },
        },
        "head_node_type": HEAD_NODE_TYPE,
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [_install_command()],
    }


def export_yaml(
    name: str, config: ProvisioningConfiguration, provider: str, region: str | None = None
) -> str:
    """The cluster-launcher file of :func:`cluster_launcher_config` as YAML, with a comment
    header saying what to fill in and how to start and attach the cluster. Needs PyYAML,
    which comes with Ray (``pip install 'modelyard[cluster]'``).

    Example::

        Path("gpucluster.yaml").write_text(export_yaml("gpucluster", cfg, "gcp"))
    """
    data = cluster_launcher_config(name, config, provider, region=region)
    # Imported here: exporting is rare, and modelyard.compute is on a script's import path.
    import yaml

    body: str = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    if provider == "gcp":
        body = body.replace(
            f"project_id: {GCP_PROJECT_PLACEHOLDER}",
            f"project_id: {GCP_PROJECT_PLACEHOLDER}  # FILL IN: your GCP project id",
        )
    return _header(name, config, provider) + body


def cloud_size(size: VmSize) -> VmSize:
    """The catalogue size a cloud node of ``size`` is made from: ``size`` itself, or for a
    custom size the smallest catalogue size holding its cores, memory and GPUs.

    Example::

        cloud_size(vm_size("cpu=3,memory=10GB")).name      # 'Standard_D3_v2'
    """
    if size.aws is not None and size.gcp is not None:
        return size
    holding = [
        s
        for s in supported_vm_sizes()
        if s.cores >= size.cores
        and s.memory_gb >= size.memory_gb
        and s.gpus >= size.gpus
        and (s.gpus > 0) == (size.gpus > 0)
    ]
    if not holding:
        raise ValidationError(
            "vm_size",
            f"no VM size of the catalogue holds {size.name}: export with one of "
            "AmlCompute.supported_vmsizes(ws)",
        )
    return min(holding, key=lambda s: (s.cores, s.gpus, s.memory_gb, s.name))


def _provider_block(provider: str, name: str, region: str) -> dict[str, Any]:
    if provider == "aws":
        return {"type": "aws", "region": region}
    if provider == "gcp":
        return {
            "type": "gcp",
            "region": region,
            # Zone b exists in every GCP region; some (us-east1, europe-west1) have no zone a.
            "availability_zone": f"{region}-b",
            "project_id": GCP_PROJECT_PLACEHOLDER,
        }
    # Ray creates the resource group when it does not exist; the subscription is the Azure
    # CLI's default (`az account show`) unless subscription_id is added here.
    return {"type": "azure", "location": region, "resource_group": f"ray-{name}"}


def _aws_nodes(size: VmSize, spot: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    worker: dict[str, Any] = {"InstanceType": size.aws}
    if spot:
        worker["InstanceMarketOptions"] = {"MarketType": "spot"}
    return {"InstanceType": HEAD_INSTANCE["aws"]}, worker


def _gcp_nodes(size: VmSize, spot: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    worker: dict[str, Any] = {
        "machineType": size.gcp,
        "disks": [_gcp_disk(GCP_GPU_IMAGE if size.gpus else GCP_CPU_IMAGE)],
    }
    scheduling: dict[str, Any] = {}
    if size.gpus:
        # Every GPU size of the catalogue names its GPU type (a test holds it to that).
        accelerator = GCP_ACCELERATORS[str(size.gpu_type)]
        worker["guestAccelerators"] = [
            {"acceleratorType": accelerator, "acceleratorCount": size.gpus}
        ]
        worker["metadata"] = {"items": [{"key": "install-nvidia-driver", "value": "True"}]}
        # A machine with GPUs cannot live-migrate: GCP refuses it unless told to stop it.
        scheduling["onHostMaintenance"] = "TERMINATE"
    if spot:
        # GCP's preemptible machines must stop on maintenance and not restart by themselves.
        scheduling.update(preemptible=True, onHostMaintenance="TERMINATE", automaticRestart=False)
    if scheduling:
        worker["scheduling"] = scheduling
    head = {"machineType": HEAD_INSTANCE["gcp"], "disks": [_gcp_disk(GCP_CPU_IMAGE)]}
    return head, worker


def _gcp_disk(image: str) -> dict[str, Any]:
    return {
        "boot": True,
        "autoDelete": True,
        "type": "PERSISTENT",
        "initializeParams": {"diskSizeGb": 100, "sourceImage": image},
    }


def _azure_nodes(size: VmSize, spot: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    worker: dict[str, Any] = {"vmSize": size.name, **AZURE_IMAGE}
    if spot:
        worker["priority"] = "Spot"
    head = {"vmSize": HEAD_INSTANCE["azure"], **AZURE_IMAGE}
    return {"azure_arm_parameters": head}, {"azure_arm_parameters": worker}


_NODE_CONFIGS = {"aws": _aws_nodes, "gcp": _gcp_nodes, "azure": _azure_nodes}


def _install_command() -> str:
    # Ray Client needs the same Ray version on the cluster as here: pin it when Ray is installed.
    try:
        ray = f" 'ray[default]=={metadata.version('ray')}'"
    except metadata.PackageNotFoundError:
        ray = ""
    return f"pip install -U 'modelyard[cluster]'{ray}"


def _header(name: str, config: ProvisioningConfiguration, provider: str) -> str:
    size = config.vm()
    node = cloud_size(size)
    instance = {"aws": node.aws, "gcp": node.gcp, "azure": node.name}[provider]
    fill = {
        "aws": ["the account's credentials (aws configure)", "provider.region"],
        "gcp": [
            f"provider.project_id (now {GCP_PROJECT_PLACEHOLDER})",
            "provider.region and provider.availability_zone",
        ],
        "azure": [
            "az login; provider.subscription_id when not the Azure CLI's default",
            "provider.location",
        ],
    }[provider]
    lines = [
        f"Ray cluster-launcher file for modelyard compute target {name!r} on {provider}",
        "(written by `modelyard compute export`).",
        f"Workers: {size.name} -> {instance}, the closest {provider} machine: check that your",
        "region offers it, and that the images suit you.",
        "Fill in:",
        f"  - {fill[0]}",
        f"  - {fill[1]} if not {DEFAULT_REGIONS[provider]}",
        "Python on the nodes must have the minor version of the Python you submit from.",
        f"Start:   ray up {name}.yaml",
        f"Reach:   ray attach {name}.yaml -p {RAY_CLIENT_PORT}   (forwards the head's Ray "
        "Client port here)",
        f'Attach:  AmlCompute.provisioning_configuration(address="ray://<head>:{RAY_CLIENT_PORT}")',
        "         (<head>: localhost through `ray attach -p`, or `ray get-head-ip FILE`)",
        f"Stop:    ray down {name}.yaml",
    ]
    return "".join(f"# {line}\n" for line in lines)


__all__ = ["CLOUD_PROVIDERS", "cloud_size", "cluster_launcher_config", "export_yaml"]
