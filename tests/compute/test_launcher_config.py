"""The cluster-launcher file of `modelyard compute export`: valid for Ray's own checks on each
cloud, spot workers for lowpriority, accelerators for GPU sizes, YAML that reads back."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest

from modelyard.compute.ray.launcher_config import (
    CLOUD_PROVIDERS,
    GCP_PROJECT_PLACEHOLDER,
    cluster_launcher_config,
    export_yaml,
)
from modelyard.compute.ray.provisioning import (
    ProvisioningConfiguration,
    provisioning_configuration,
)
from modelyard.errors import ValidationError
from tests.compute.ray_schema import ray_checks

CPU = provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
GPU_SPOT = provisioning_configuration(
    vm_size="STANDARD_NC6S_V3", vm_priority="lowpriority", min_nodes=1, max_nodes=2
)


def worker(config: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = config["available_node_types"]["worker"]
    return node


def head(config: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = config["available_node_types"][config["head_node_type"]]
    return node


def test_every_export_passes_rays_checks_without_the_network() -> None:
    configs = [
        cluster_launcher_config("cluster1", cfg, provider)
        for provider in CLOUD_PROVIDERS
        for cfg in (CPU, GPU_SPOT, provisioning_configuration(vm_size="cpu=3,memory=10GB"))
    ]
    results = ray_checks(configs)
    for config, result in zip(configs, results, strict=True):
        assert result["error"] is None, (config["provider"]["type"], result["error"])
        prepared = result["prepared"]
        # Ray's defaults for the provider do not replace what the file says.
        assert prepared["setup_commands"] == config["setup_commands"]
        assert worker(prepared)["node_config"] == worker(config)["node_config"]
        assert prepared["max_workers"] == config["max_workers"]


@pytest.mark.parametrize("provider", CLOUD_PROVIDERS)
def test_the_cluster_scales_as_the_configuration_says(provider: str) -> None:
    config = cluster_launcher_config("cluster1", GPU_SPOT, provider)
    assert config["cluster_name"] == "cluster1"
    assert config["max_workers"] == 2
    assert (worker(config)["min_workers"], worker(config)["max_workers"]) == (1, 2)
    assert config["idle_timeout_minutes"] == 30.0
    assert worker(config)["resources"] == {"CPU": 6, "GPU": 1}
    # The head runs Ray's services only, as on this machine.
    assert head(config)["resources"] == {"CPU": 0}


def test_each_cloud_gets_its_provider_block_and_default_region() -> None:
    aws = cluster_launcher_config("c1", CPU, "aws")["provider"]
    gcp = cluster_launcher_config("c1", CPU, "gcp")["provider"]
    azure = cluster_launcher_config("c1", CPU, "azure")["provider"]
    assert aws == {"type": "aws", "region": "us-west-2"}
    assert gcp == {
        "type": "gcp",
        "region": "us-west1",
        "availability_zone": "us-west1-b",
        "project_id": GCP_PROJECT_PLACEHOLDER,
    }
    assert azure == {"type": "azure", "location": "westus2", "resource_group": "ray-c1"}
    assert cluster_launcher_config("c1", CPU, "aws", region="eu-west-1")["provider"]["region"] == (
        "eu-west-1"
    )
    assert cluster_launcher_config("c1", CPU, "azure", region="eastus")["provider"] == {
        "type": "azure",
        "location": "eastus",
        "resource_group": "ray-c1",
    }


def test_the_workers_are_the_closest_instance_types_to_the_vm_size() -> None:
    assert worker(cluster_launcher_config("c1", CPU, "aws"))["node_config"] == {
        "InstanceType": "m5.large"
    }
    assert worker(cluster_launcher_config("c1", CPU, "gcp"))["node_config"]["machineType"] == (
        "n1-standard-2"
    )
    azure = worker(cluster_launcher_config("c1", CPU, "azure"))["node_config"]
    assert azure["azure_arm_parameters"]["vmSize"] == "Standard_D2_v2"


def test_lowpriority_makes_the_workers_spot_and_keeps_the_head_on_demand() -> None:
    aws = cluster_launcher_config("c1", GPU_SPOT, "aws")
    assert worker(aws)["node_config"]["InstanceMarketOptions"] == {"MarketType": "spot"}
    assert "InstanceMarketOptions" not in head(aws)["node_config"]
    gcp = cluster_launcher_config("c1", GPU_SPOT, "gcp")
    assert worker(gcp)["node_config"]["scheduling"]["preemptible"] is True
    assert "scheduling" not in head(gcp)["node_config"]
    azure = cluster_launcher_config("c1", GPU_SPOT, "azure")
    assert worker(azure)["node_config"]["azure_arm_parameters"]["priority"] == "Spot"
    assert "priority" not in head(azure)["node_config"]["azure_arm_parameters"]


@pytest.mark.parametrize("provider", CLOUD_PROVIDERS)
def test_dedicated_workers_are_not_spot(provider: str) -> None:
    text = str(cluster_launcher_config("c1", CPU, provider))
    for spot in ("InstanceMarketOptions", "preemptible", "Spot"):
        assert spot not in text


def test_a_gpu_size_gets_its_gpus_on_every_cloud() -> None:
    gcp = worker(cluster_launcher_config("c1", GPU_SPOT, "gcp"))["node_config"]
    assert gcp["guestAccelerators"] == [
        {"acceleratorType": "nvidia-tesla-v100", "acceleratorCount": 1}
    ]
    assert gcp["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert "cu" in gcp["disks"][0]["initializeParams"]["sourceImage"]
    eight = provisioning_configuration(vm_size="STANDARD_ND40RS_V2")
    assert worker(cluster_launcher_config("c1", eight, "gcp"))["node_config"][
        "guestAccelerators"
    ] == [{"acceleratorType": "nvidia-tesla-v100", "acceleratorCount": 8}]
    assert worker(cluster_launcher_config("c1", eight, "aws"))["node_config"] == {
        "InstanceType": "p3dn.24xlarge"
    }
    aws = worker(cluster_launcher_config("c1", GPU_SPOT, "aws"))["node_config"]
    assert aws["InstanceType"] == "p3.2xlarge"
    cpu_gcp = worker(cluster_launcher_config("c1", CPU, "gcp"))["node_config"]
    assert "guestAccelerators" not in cpu_gcp and "scheduling" not in cpu_gcp


def test_a_custom_size_exports_the_smallest_catalogue_size_holding_it() -> None:
    cfg = provisioning_configuration(vm_size="cpu=3,memory=10GB")
    config = cluster_launcher_config("c1", cfg, "azure")
    assert worker(config)["node_config"]["azure_arm_parameters"]["vmSize"] == "Standard_D3_v2"
    assert worker(config)["resources"] == {"CPU": 4}
    gpu = provisioning_configuration(vm_size="cpu=4,gpu=1")
    assert worker(cluster_launcher_config("c1", gpu, "aws"))["node_config"] == {
        "InstanceType": "g4dn.xlarge"
    }
    with pytest.raises(ValidationError) as caught:
        cluster_launcher_config("c1", provisioning_configuration(vm_size="cpu=500"), "aws")
    assert caught.value.field == "vm_size"
    assert "supported_vmsizes" in str(caught.value)


@pytest.mark.parametrize("provider", CLOUD_PROVIDERS)
def test_every_node_installs_modelyard_with_the_ray_installed_here(provider: str) -> None:
    commands = cluster_launcher_config("c1", CPU, provider)["setup_commands"]
    assert any("'modelyard[cluster]'" in command for command in commands)
    try:
        version = metadata.version("ray")
    except metadata.PackageNotFoundError:
        return
    assert any(f"'ray[default]=={version}'" in command for command in commands)


@pytest.mark.parametrize(
    ("name", "provider", "region", "field", "says"),
    [
        ("c1", "kubernetes", None, "provider", "use one of aws, gcp, azure"),
        ("c1", "local", None, "provider", "use one of aws, gcp, azure"),
        ("c1", "aws", "US West 2", "region", "'us-west-2'"),
        ("c1", "aws", "", "region", "not a region name"),
        ("GPU.Cluster", "gcp", None, "name", "GCP labels"),
        ("bad name", "aws", None, "name", "not a valid name"),
    ],
)
def test_a_bad_export_is_refused_naming_the_argument(
    name: str, provider: str, region: str | None, field: str, says: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        cluster_launcher_config(name, CPU, provider, region=region)
    assert caught.value.field == field
    assert says in str(caught.value)


def test_a_configuration_changed_into_a_bad_one_is_not_exported() -> None:
    cfg = ProvisioningConfiguration(vm_size="STANDARD_D2_V2")
    cfg.min_nodes = 9
    with pytest.raises(ValidationError, match="below min_nodes"):
        cluster_launcher_config("c1", cfg, "aws")


@pytest.mark.parametrize("provider", CLOUD_PROVIDERS)
def test_the_yaml_reads_back_as_the_config_and_says_how_to_start_and_attach(
    provider: str,
) -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the cluster extra")
    text = export_yaml("gpucluster", GPU_SPOT, provider)
    assert yaml.safe_load(text) == cluster_launcher_config("gpucluster", GPU_SPOT, provider)
    header = text[: text.index("cluster_name:")]
    assert all(line.startswith("# ") for line in header.splitlines())
    assert "ray up gpucluster.yaml" in header
    assert 'AmlCompute.provisioning_configuration(address="ray://<head>:10001")' in header
    assert "Fill in:" in header
    if provider == "gcp":
        assert "project_id: fill-in-your-gcp-project-id  # FILL IN" in text
