"""The VM size catalogue: v1's size names in any spelling, their real figures, custom sizes."""

from __future__ import annotations

import pytest

from modelyard.compute.ray.vm_sizes import (
    CATALOGUE,
    GCP_ACCELERATORS,
    VmSize,
    supported_vm_sizes,
    vm_size,
)
from modelyard.errors import ValidationError

# The sizes v1 notebooks name most (the public samples), as they spell them.
COMMON_V1_SIZES = [
    "STANDARD_D1_V2",
    "STANDARD_D2_V2",
    "STANDARD_D3_V2",
    "STANDARD_D4_V2",
    "STANDARD_D11_V2",
    "STANDARD_D12_V2",
    "STANDARD_D13_V2",
    "STANDARD_D14_V2",
    "STANDARD_DS2_V2",
    "STANDARD_DS3_V2",
    "STANDARD_DS4_V2",
    "STANDARD_DS12_V2",
    "STANDARD_F4S_V2",
    "STANDARD_F8S_V2",
    "STANDARD_D2S_V3",
    "STANDARD_D4S_V3",
    "STANDARD_D8S_V3",
    "STANDARD_D16S_V3",
    "STANDARD_E4S_V3",
    "STANDARD_NC6",
    "STANDARD_NC12",
    "STANDARD_NC24",
    "STANDARD_NC6S_V2",
    "STANDARD_NC6S_V3",
    "STANDARD_NC12S_V3",
    "STANDARD_NC24S_V3",
    "STANDARD_NC4AS_T4_V3",
    "STANDARD_NC8AS_T4_V3",
    "STANDARD_ND6S",
    "STANDARD_ND40RS_V2",
    "STANDARD_NV6",
    "STANDARD_NV12",
]


@pytest.mark.parametrize("name", COMMON_V1_SIZES)
def test_the_common_v1_sizes_are_in_the_catalogue(name: str) -> None:
    size = vm_size(name)
    assert size.name.lower() == name.lower()
    assert size.name.startswith("Standard_")


@pytest.mark.parametrize(
    "spelling", ["Standard_NC6s_v3", "STANDARD_NC6S_V3", "standard_nc6s_v3", "NC6s_v3", " nc6S_V3 "]
)
def test_a_size_is_found_in_any_case_with_or_without_standard(spelling: str) -> None:
    assert vm_size(spelling).name == "Standard_NC6s_v3"


@pytest.mark.parametrize(
    ("name", "cores", "memory_gb", "gpus", "gpu_type"),
    [
        ("STANDARD_D2_V2", 2, 7.0, 0, None),
        ("STANDARD_D3_V2", 4, 14.0, 0, None),
        ("STANDARD_DS3_V2", 4, 14.0, 0, None),
        ("STANDARD_D14_V2", 16, 112.0, 0, None),
        ("STANDARD_F4S_V2", 4, 8.0, 0, None),
        ("STANDARD_E4S_V3", 4, 32.0, 0, None),
        ("STANDARD_NC6", 6, 56.0, 1, "K80"),
        ("STANDARD_NC24", 24, 224.0, 4, "K80"),
        ("STANDARD_NC6S_V3", 6, 112.0, 1, "V100"),
        ("STANDARD_NC24S_V3", 24, 448.0, 4, "V100"),
        ("STANDARD_NC4AS_T4_V3", 4, 28.0, 1, "T4"),
        ("STANDARD_ND40RS_V2", 40, 672.0, 8, "V100"),
        ("STANDARD_NV12", 12, 112.0, 2, "M60"),
    ],
)
def test_sizes_have_azures_figures(
    name: str, cores: int, memory_gb: float, gpus: int, gpu_type: str | None
) -> None:
    size = vm_size(name)
    assert (size.cores, size.memory_gb, size.gpus, size.gpu_type) == (
        cores,
        memory_gb,
        gpus,
        gpu_type,
    )


def test_a_size_lists_as_v1s_supported_vmsizes_does() -> None:
    assert vm_size("STANDARD_D2_V2").as_v1_dict() == {
        "name": "Standard_D2_v2",
        "vCPUs": 2,
        "gpus": 0,
        "memoryGB": 7.0,
        "maxResourceVolumeMB": 102400,
    }


def test_supported_vm_sizes_lists_the_whole_catalogue_sorted_by_name() -> None:
    sizes = supported_vm_sizes()
    names = [size.name for size in sizes]
    assert names == sorted(names)
    assert {size.name.lower() for size in sizes} == set(CATALOGUE)
    assert {name.lower() for name in COMMON_V1_SIZES} <= set(CATALOGUE)


def test_every_catalogue_size_can_be_exported_to_aws_and_gcp() -> None:
    for size in CATALOGUE.values():
        assert size.aws and size.gcp, size.name
        assert size.cores > 0 and size.memory_gb > 0 and size.max_resource_volume_mb > 0
        # A GPU size names its GPU, which has a GCP accelerator to attach.
        assert (size.gpus > 0) == (size.gpu_type is not None), size.name
        if size.gpu_type is not None:
            assert size.gpu_type in GCP_ACCELERATORS, size.name


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("cpu=2,memory=7GB,gpu=0", VmSize("cpu=2,memory=7GB,gpu=0", 2, 7.0, 0, None, None, None)),
        (
            " gpu = 1 , cpu=4, memory=16GiB",
            VmSize("cpu=4,memory=16GB,gpu=1", 4, 16.0, 1, *[None] * 3),
        ),
        ("CPU=1,Memory=512MB", VmSize("cpu=1,memory=0.5GB,gpu=0", 1, 0.5, 0, None, None, None)),
        ("cpu=2", VmSize("cpu=2,memory=7GB,gpu=0", 2, 7.0, 0, None, None, None)),
        ("memory=7.5gb,cpu=2", VmSize("cpu=2,memory=7.5GB,gpu=0", 2, 7.5, 0, None, None, None)),
    ],
)
def test_custom_sizes(spec: str, expected: VmSize) -> None:
    assert vm_size(spec) == expected


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("STANDARD_NC6S_V4", "did you mean 'Standard_NC6s_v3'"),
        ("Standard_D2_v3", "'Standard_D2s_v3'"),
        ("STANDARD_XYZ123", "AmlCompute.supported_vmsizes(ws) lists them"),
        ("", "is not a VM size"),
        ("cpu=0", "cpu=0 in 'cpu=0' must be a whole number of at least 1"),
        ("cpu=2,gpu=-1", "gpu=-1 in 'cpu=2,gpu=-1' must be a whole number of at least 0"),
        ("cpu=two", "cpu=two"),
        ("cpu=2,memory=abc", "memory=abc in 'cpu=2,memory=abc' is not an amount of memory"),
        ("cpu=2,memory=0GB", "memory=0GB"),
        ("cpu=2,disk=100GB", "unknown key 'disk'"),
        ("memory=7GB,gpu=0", "has no cpu"),
        ("cpu=2,cpu=4", "'cpu' is given twice"),
        ("cpu=2,,gpu=1", "is not key=value"),
    ],
)
def test_a_bad_vm_size_says_what_is_wrong_and_how_to_write_one(spec: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        vm_size(spec)
    assert caught.value.field == "vm_size"
    assert says in str(caught.value)
    assert "write a custom size as 'cpu=2,memory=7GB,gpu=0'" in str(caught.value)
