"""provisioning_configuration: v1's call and defaults, the v1 arguments that mean nothing here,
attached clusters, bad values, what the workspace stores, the autoscaler config on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from typing import Any

import pytest

from modelyard.compute.ray.provisioning import (
    FAKE_HEAD_NODE_ID,
    AmlComputeProvisioningConfiguration,
    ProvisioningConfiguration,
    local_autoscaler_config,
    provisioning_configuration,
    split_address,
)
from modelyard.errors import ValidationError
from tests.compute.ray_schema import ray_checks

# Every v1 argument without meaning for a Ray cluster, each with a value other than v1's default.
V1_UNUSED: dict[str, Any] = {
    "admin_username": "azureuser",
    "admin_user_password": "Hunter2-Password!",
    "admin_user_ssh_key": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@laptop",
    "vnet_resourcegroup_name": "rg-net",
    "vnet_name": "vnet1",
    "subnet_name": "default",
    "tags": {"team": "vision"},
    "description": "GPU cluster for the MNIST notebook",
    "remote_login_port_public_access": "Disabled",
    "identity_type": "UserAssigned",
    "identity_id": ["/subscriptions/0000/identities/me"],
    "location": "westeurope",
    "enable_node_public_ip": False,
}
SECRETS = ("Hunter2-Password!", "AAAAB3NzaC1yc2EAAAADAQABAAABAQC7")


def test_the_seeds_call_gives_a_local_cluster_of_nc6_nodes_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=4)
    assert (cfg.vm_size, cfg.max_nodes, cfg.min_nodes, cfg.provider) == (
        "STANDARD_NC6",
        4,
        0,
        "local",
    )
    assert (cfg.vm().cores, cfg.vm().gpus, cfg.vm().gpu_type) == (6, 1, "K80")
    assert cfg.ignored == {}


def test_the_defaults_are_v1s() -> None:
    cfg = provisioning_configuration()
    assert cfg == ProvisioningConfiguration(
        vm_size="STANDARD_NC6",
        vm_priority="dedicated",
        min_nodes=0,
        max_nodes=4,
        idle_seconds_before_scaledown=1800,
        provider="local",
        address=None,
        ignored={},
    )
    assert AmlComputeProvisioningConfiguration is ProvisioningConfiguration


def test_vm_priority_is_read_in_any_case_and_stored_as_v1_spells_it() -> None:
    assert provisioning_configuration(vm_priority="LowPriority").vm_priority == "lowpriority"
    assert provisioning_configuration(vm_priority="Dedicated").vm_priority == "dedicated"


def test_v1_arguments_given_their_defaults_warn_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = provisioning_configuration(
            vm_size="STANDARD_D2_V2",
            remote_login_port_public_access="NotSpecified",
            enable_node_public_ip=True,
            admin_username=None,
        )
    assert cfg.ignored == {}


def test_every_v1_argument_without_meaning_is_recorded_with_one_warning() -> None:
    with pytest.warns(UserWarning) as caught:
        cfg = provisioning_configuration("STANDARD_D2_V2", "dedicated", 0, 2, 600, **V1_UNUSED)
    assert len(caught) == 1
    message = str(caught[0].message)
    for name in V1_UNUSED:
        assert name in message
    # The warning points at the caller's line, not at modelyard.
    assert caught[0].filename == __file__
    assert set(cfg.ignored) == set(V1_UNUSED)
    assert cfg.ignored["vnet_name"] == "vnet1"
    assert cfg.ignored["tags"] == {"team": "vision"}
    assert cfg.ignored["enable_node_public_ip"] is False
    # What the arguments that count asked for holds.
    assert (cfg.vm_size, cfg.max_nodes, cfg.idle_seconds_before_scaledown) == (
        "STANDARD_D2_V2",
        2,
        600,
    )


def test_passwords_and_keys_are_recorded_as_set_never_their_value() -> None:
    with pytest.warns(UserWarning) as caught:
        cfg = provisioning_configuration(
            vm_size="STANDARD_D2_V2",
            admin_user_password=V1_UNUSED["admin_user_password"],
            admin_user_ssh_key=V1_UNUSED["admin_user_ssh_key"],
            storage_account_key_secret="s3cr3t-value",
        )
    assert cfg.ignored == {
        "admin_user_password": "<set>",
        "admin_user_ssh_key": "<set>",
        "storage_account_key_secret": "<set>",
    }
    seen = [str(caught[0].message), repr(cfg), json.dumps(cfg.to_dict())]
    for secret in (*SECRETS, "s3cr3t-value"):
        assert not any(secret in text for text in seen), secret


def test_unknown_keyword_arguments_are_accepted_and_recorded_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="not an argument of v1") as caught:
        cfg = provisioning_configuration(
            vm_size="STANDARD_D2_V2", vnet_name="v", gpu_driver="535", node_setup=object
        )
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "gpu_driver" in message and "node_setup" in message and "vnet_name" in message
    assert cfg.ignored["gpu_driver"] == "535"
    # What JSON cannot hold is kept as its repr, so the configuration can still be stored.
    assert cfg.ignored["node_setup"] == repr(object)
    json.dumps(cfg.to_dict())


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [
        ("ray://head.example.com:10001", "head.example.com", 10001),
        ("10.0.0.5:6379", "10.0.0.5", 6379),
        ("ray://[::1]:10001", "::1", 10001),
        ("localhost:10001", "localhost", 10001),
        ("ray://ray-head.ns.svc.cluster.local:10001", "ray-head.ns.svc.cluster.local", 10001),
    ],
)
def test_an_address_attaches_an_existing_cluster(address: str, host: str, port: int) -> None:
    cfg = provisioning_configuration(address=address, max_nodes=2)
    assert (cfg.provider, cfg.address) == ("attached", address)
    assert split_address(address) == (host, port)


@pytest.mark.parametrize(
    ("arguments", "field", "says"),
    [
        ({"vm_size": "STANDARD_NC7"}, "vm_size", "did you mean"),
        ({"vm_size": "cpu=0"}, "vm_size", "at least 1"),
        ({"vm_priority": "spot"}, "vm_priority", "'dedicated' or 'lowpriority'"),
        ({"min_nodes": -1}, "min_nodes", "at least 0"),
        ({"max_nodes": 0}, "max_nodes", "at least 1"),
        ({"max_nodes": "4"}, "max_nodes", "whole number"),
        ({"max_nodes": True}, "max_nodes", "whole number"),
        ({"min_nodes": 3, "max_nodes": 2}, "max_nodes", "below min_nodes=3"),
        ({"idle_seconds_before_scaledown": -5}, "idle_seconds_before_scaledown", "at least 0"),
        ({"idle_seconds_before_scaledown": 1.5}, "idle_seconds_before_scaledown", "whole"),
        ({"provider": "aws"}, "provider", "modelyard compute export NAME --provider aws"),
        ({"provider": "attached"}, "address", "needs its address"),
        ({"provider": "gcp", "address": "head:10001"}, "provider", "contradict"),
        ({"address": "http://head:10001"}, "address", "scheme other than ray://"),
        ({"address": "head"}, "address", "no host and port"),
        ({"address": "ray://:10001"}, "address", "no host and port"),
        ({"address": "head:0"}, "address", "from 1 to 65535"),
        ({"address": "head:70000"}, "address", "from 1 to 65535"),
        ({"address": "head:port"}, "address", "not a port"),
        ({"address": "bad_host!:10001"}, "address", "not a host name or IP address"),
        ({"address": "300.1.1.1:10001"}, "address", "not a host name or IP address"),
        ({"address": "::1:10001"}, "address", "in brackets"),
        ({"address": "ray://head:10001/"}, "address", "not a port"),
    ],
)
def test_a_bad_value_is_refused_naming_the_argument(
    arguments: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        provisioning_configuration(**arguments)
    assert caught.value.field == field
    assert says in str(caught.value)


def test_a_field_changed_after_the_call_is_caught_by_validate_configuration() -> None:
    cfg = provisioning_configuration(vm_size="STANDARD_D2_V2")
    cfg.max_nodes = 0
    with pytest.raises(ValidationError, match="max_nodes"):
        cfg.validate_configuration()


@pytest.mark.parametrize(
    "make",
    [
        lambda: provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=4),
        lambda: provisioning_configuration(
            vm_size="cpu=2,memory=7GB", vm_priority="lowpriority", min_nodes=1, max_nodes=3
        ),
        lambda: provisioning_configuration(address="ray://head:10001", tags=("a", "b"), foo=1),
    ],
)
def test_what_the_workspace_stores_gives_the_same_configuration_back(make: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = make()
    stored = json.loads(json.dumps(cfg.to_dict()))
    assert ProvisioningConfiguration.from_dict(stored) == cfg
    assert ProvisioningConfiguration.from_dict(cfg.to_dict()) == cfg


def test_a_stored_configuration_is_checked_when_read() -> None:
    assert ProvisioningConfiguration.from_dict({"vm_size": "D2_v2"}).max_nodes == 4
    with pytest.raises(ValidationError, match="unknown field max_node"):
        ProvisioningConfiguration.from_dict({"max_node": 2})
    with pytest.raises(ValidationError) as caught:
        ProvisioningConfiguration.from_dict({"vm_size": "D2_v2", "max_nodes": 0})
    assert caught.value.field == "max_nodes"


def test_the_local_autoscaler_config_gives_workers_the_sizes_cores_and_gpus() -> None:
    gpu = local_autoscaler_config(
        provisioning_configuration(vm_size="STANDARD_NC12", min_nodes=1, max_nodes=3),
        "gpucluster",
        "127.0.0.1:6379",
    )
    worker = gpu["available_node_types"]["worker"]
    assert worker["resources"] == {"CPU": 12, "GPU": 2}
    assert (worker["min_workers"], worker["max_workers"], gpu["max_workers"]) == (1, 3, 3)
    assert gpu["available_node_types"]["ray.head.default"]["resources"] == {"CPU": 0}
    assert gpu["head_node_type"] == "ray.head.default"
    assert gpu["idle_timeout_minutes"] == 30.0
    assert gpu["provider"]["gcs_address"] == "127.0.0.1:6379"
    assert gpu["provider"]["head_node_id"] == FAKE_HEAD_NODE_ID == "f" * 51 + "00000"
    assert gpu["provider"]["type"] == "external"
    cpu = local_autoscaler_config(
        provisioning_configuration(vm_size="STANDARD_D2_V2", idle_seconds_before_scaledown=90),
        "cpucluster",
        "127.0.0.1:6379",
    )
    # No GPU entry for a CPU size, and never memory: the fake provider refuses it.
    assert cpu["available_node_types"]["worker"]["resources"] == {"CPU": 2}
    assert cpu["idle_timeout_minutes"] == 1.5


def test_the_local_autoscaler_config_passes_rays_own_checks() -> None:
    configs = [
        local_autoscaler_config(provisioning_configuration(vm_size=size), "c", "127.0.0.1:6379")
        for size in ("STANDARD_D2_V2", "STANDARD_NC24S_V3", "cpu=3,memory=5GB,gpu=1")
    ]
    for result in ray_checks(configs):
        assert result["error"] is None, result["error"]


def test_an_attached_cluster_has_no_local_autoscaler() -> None:
    cfg = provisioning_configuration(address="head:6379")
    with pytest.raises(ValidationError, match="scale with their own"):
        local_autoscaler_config(cfg, "c", "127.0.0.1:6379")


def test_the_modules_import_without_ray_or_pyyaml() -> None:
    code = (
        "import sys\n"
        "import modelyard.compute.ray.provisioning, modelyard.compute.ray.launcher_config\n"
        "print(sorted(m for m in ('ray', 'yaml') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
