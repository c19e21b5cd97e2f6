"""The VM sizes a cluster's nodes can have: the common Azure sizes of v1 notebooks, or custom.

A size gives each node of a cluster its resources: on this machine the autoscaler starts nodes
with the size's cores and GPUs, and ``modelyard compute export`` picks the closest AWS or GCP
instance type for it. Names keep Azure's spelling and are looked up in any case, with or without
``Standard_``::

    vm_size("STANDARD_NC6s_v3")     # VmSize(name='Standard_NC6s_v3', cores=6, gpus=1, ...)
    vm_size("cpu=2, memory=7GB")    # VmSize(name='cpu=2,memory=7GB,gpu=0', ...)

The figures are Azure's published ones (vCPUs, memory in GiB, GPUs, temporary disk in GiB).
Several GPU sizes here (NC, NCv2, ND, NV) are retired on Azure; v1 notebooks still name them,
so they stay, and their export picks instances that exist.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from modelyard.errors import ValidationError

CUSTOM_SIZE_HELP = (
    "write a custom size as 'cpu=2,memory=7GB,gpu=0' (cpu required; memory in GB, GiB or MB, "
    "default 3.5GB per core; gpu default 0)"
)
# A custom size without memory gets the general-purpose Dv2 ratio (Standard_D2_v2: 2 cores, 7 GiB).
DEFAULT_GB_PER_CORE = 3.5


@dataclass(frozen=True)
class VmSize:
    """One node's size: ``cores``, ``memory_gb`` (GiB, as Azure counts), ``gpus`` of
    ``gpu_type``; ``aws`` and ``gcp`` name the closest instance types of those clouds (None for
    a custom size); ``max_resource_volume_mb`` is the temporary disk v1 lists.

    Example::

        size = vm_size("Standard_D2_v2")
        size.cores, size.memory_gb, size.aws      # (2, 7.0, 'm5.large')
    """

    name: str
    cores: int
    memory_gb: float
    gpus: int
    gpu_type: str | None
    aws: str | None
    gcp: str | None
    max_resource_volume_mb: int = 0

    def as_v1_dict(self) -> dict[str, Any]:
        """What v1's ``AmlCompute.supported_vmsizes`` lists for this size.

        Example::

            vm_size("D2_v2").as_v1_dict()
            # {'name': 'Standard_D2_v2', 'vCPUs': 2, 'gpus': 0, 'memoryGB': 7.0,
            #  'maxResourceVolumeMB': 102400}
        """
        return {
            "name": self.name,
            "vCPUs": self.cores,
            "gpus": self.gpus,
            "memoryGB": self.memory_gb,
            "maxResourceVolumeMB": self.max_resource_volume_mb,
        }


# name, vCPUs, memory GiB, GPUs, GPU type, temporary disk GiB, AWS instance, GCP machine type.
# AWS and GCP have no K80 or M60 left to rent in most regions and no P40 or 2-GPU V100 machine
# at all: those sizes map to the nearest instance holding at least as many GPUs.
_TABLE: tuple[tuple[str, int, float, int, str | None, int, str, str], ...] = (
    # General purpose, Dv2 / DSv2: 3.5 GiB per core.
    ("Standard_D1_v2", 1, 3.5, 0, None, 50, "m5.large", "n1-standard-1"),
    ("Standard_D2_v2", 2, 7, 0, None, 100, "m5.large", "n1-standard-2"),
    ("Standard_D3_v2", 4, 14, 0, None, 200, "m5.xlarge", "n1-standard-4"),
    ("Standard_D4_v2", 8, 28, 0, None, 400, "m5.2xlarge", "n1-standard-8"),
    ("Standard_D5_v2", 16, 56, 0, None, 800, "m5.4xlarge", "n1-standard-16"),
    ("Standard_DS1_v2", 1, 3.5, 0, None, 7, "m5.large", "n1-standard-1"),
    ("Standard_DS2_v2", 2, 7, 0, None, 14, "m5.large", "n1-standard-2"),
    ("Standard_DS3_v2", 4, 14, 0, None, 28, "m5.xlarge", "n1-standard-4"),
    ("Standard_DS4_v2", 8, 28, 0, None, 56, "m5.2xlarge", "n1-standard-8"),
    ("Standard_DS5_v2", 16, 56, 0, None, 112, "m5.4xlarge", "n1-standard-16"),
    # Memory optimised, Dv2 / DSv2 11-14: 7 GiB per core.
    ("Standard_D11_v2", 2, 14, 0, None, 100, "r5.large", "n1-highmem-2"),
    ("Standard_D12_v2", 4, 28, 0, None, 200, "r5.xlarge", "n1-highmem-4"),
    ("Standard_D13_v2", 8, 56, 0, None, 400, "r5.2xlarge", "n1-highmem-8"),
    ("Standard_D14_v2", 16, 112, 0, None, 800, "r5.4xlarge", "n1-highmem-16"),
    ("Standard_DS11_v2", 2, 14, 0, None, 28, "r5.large", "n1-highmem-2"),
    ("Standard_DS12_v2", 4, 28, 0, None, 56, "r5.xlarge", "n1-highmem-4"),
    ("Standard_DS13_v2", 8, 56, 0, None, 112, "r5.2xlarge", "n1-highmem-8"),
    ("Standard_DS14_v2", 16, 112, 0, None, 224, "r5.4xlarge", "n1-highmem-16"),
    # Compute optimised, Fsv2: 2 GiB per core.
    ("Standard_F2s_v2", 2, 4, 0, None, 16, "c5.large", "n1-highcpu-2"),
    ("Standard_F4s_v2", 4, 8, 0, None, 32, "c5.xlarge", "n1-highcpu-4"),
    ("Standard_F8s_v2", 8, 16, 0, None, 64, "c5.2xlarge", "n1-highcpu-8"),
    ("Standard_F16s_v2", 16, 32, 0, None, 128, "c5.4xlarge", "n1-highcpu-16"),
    # General purpose, Dsv3: 4 GiB per core; memory optimised, Esv3: 8 GiB per core.
    ("Standard_D2s_v3", 2, 8, 0, None, 16, "m5.large", "n2-standard-2"),
    ("Standard_D4s_v3", 4, 16, 0, None, 32, "m5.xlarge", "n2-standard-4"),
    ("Standard_D8s_v3", 8, 32, 0, None, 64, "m5.2xlarge", "n2-standard-8"),
    ("Standard_D16s_v3", 16, 64, 0, None, 128, "m5.4xlarge", "n2-standard-16"),
    ("Standard_D32s_v3", 32, 128, 0, None, 256, "m5.8xlarge", "n2-standard-32"),
    ("Standard_E4s_v3", 4, 32, 0, None, 64, "r5.xlarge", "n2-highmem-4"),
    ("Standard_E8s_v3", 8, 64, 0, None, 128, "r5.2xlarge", "n2-highmem-8"),
    ("Standard_E16s_v3", 16, 128, 0, None, 256, "r5.4xlarge", "n2-highmem-16"),
    # GPU: NC (K80), NCv2 (P100), NCv3 (V100), NCasT4_v3 (T4), ND (P40), NDv2 (8 V100), NV (M60).
    ("Standard_NC6", 6, 56, 1, "K80", 340, "p2.xlarge", "n1-highmem-8"),
    ("Standard_NC12", 12, 112, 2, "K80", 680, "p2.8xlarge", "n1-highmem-16"),
    ("Standard_NC24", 24, 224, 4, "K80", 1440, "p2.8xlarge", "n1-highmem-32"),
    ("Standard_NC6s_v2", 6, 112, 1, "P100", 736, "p3.2xlarge", "n1-highmem-8"),
    ("Standard_NC12s_v2", 12, 224, 2, "P100", 1474, "p3.8xlarge", "n1-highmem-16"),
    ("Standard_NC24s_v2", 24, 448, 4, "P100", 2948, "p3.8xlarge", "n1-highmem-32"),
    ("Standard_NC6s_v3", 6, 112, 1, "V100", 736, "p3.2xlarge", "n1-highmem-8"),
    ("Standard_NC12s_v3", 12, 224, 2, "V100", 1474, "p3.8xlarge", "n1-highmem-16"),
    ("Standard_NC24s_v3", 24, 448, 4, "V100", 2948, "p3.8xlarge", "n1-highmem-32"),
    ("Standard_NC4as_T4_v3", 4, 28, 1, "T4", 180, "g4dn.xlarge", "n1-highmem-4"),
    ("Standard_NC8as_T4_v3", 8, 56, 1, "T4", 360, "g4dn.2xlarge", "n1-highmem-8"),
    ("Standard_NC16as_T4_v3", 16, 110, 1, "T4", 360, "g4dn.4xlarge", "n1-highmem-16"),
    ("Standard_NC64as_T4_v3", 64, 440, 4, "T4", 2880, "g4dn.12xlarge", "n1-highmem-64"),
    ("Standard_ND6s", 6, 112, 1, "P40", 736, "p3.2xlarge", "n1-highmem-8"),
    ("Standard_ND12s", 12, 224, 2, "P40", 1474, "p3.8xlarge", "n1-highmem-16"),
    ("Standard_ND24s", 24, 448, 4, "P40", 2948, "p3.8xlarge", "n1-highmem-32"),
    ("Standard_ND40rs_v2", 40, 672, 8, "V100", 2948, "p3dn.24xlarge", "n1-highmem-96"),
    ("Standard_NV6", 6, 56, 1, "M60", 340, "g3.4xlarge", "n1-highmem-8"),
    ("Standard_NV12", 12, 112, 2, "M60", 680, "g3.8xlarge", "n1-highmem-16"),
    ("Standard_NV24", 24, 224, 4, "M60", 1440, "g3.16xlarge", "n1-highmem-32"),
)

CATALOGUE: dict[str, VmSize] = {
    name.lower(): VmSize(
        name=name,
        cores=cores,
        memory_gb=float(memory),
        gpus=gpus,
        gpu_type=gpu_type,
        aws=aws,
        gcp=gcp,
        max_resource_volume_mb=disk_gib * 1024,
    )
    for name, cores, memory, gpus, gpu_type, disk_gib, aws, gcp in _TABLE
}

# The GCP accelerator attached to a GCP machine for each Azure GPU type. GCP has no M60 or P40
# and has retired the K80 (2024): those take the T4 and P100 of the same generation of use.
GCP_ACCELERATORS: dict[str, str] = {
    "K80": "nvidia-tesla-t4",
    "M60": "nvidia-tesla-t4",
    "T4": "nvidia-tesla-t4",
    "P40": "nvidia-tesla-p100",
    "P100": "nvidia-tesla-p100",
    "V100": "nvidia-tesla-v100",
}

_PREFIX = "standard_"
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m)?", re.IGNORECASE)
_WHOLE = re.compile(r"[0-9]+")
_CUSTOM_KEYS = ("cpu", "memory", "gpu")


def vm_size(spec: str) -> VmSize:
    """The size ``spec`` names: a catalogue name in any case, with or without ``Standard_``, or a
    custom ``"cpu=2,memory=7GB,gpu=0"`` (keys in any order, spaces allowed).

    Raises ValidationError("vm_size", ...) saying what was wrong: for a name not in the
    catalogue, the close names; for a custom size, the key or value at fault.

    Example::

        vm_size("nc6").gpus                       # 1
        vm_size("gpu=1, cpu=4").name              # 'cpu=4,memory=14GB,gpu=1'
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValidationError(
            "vm_size",
            f"{spec!r} is not a VM size: name one of AmlCompute.supported_vmsizes(ws), "
            f"such as 'STANDARD_D2_V2', or {CUSTOM_SIZE_HELP}",
        )
    text = spec.strip()
    if "=" in text:
        return _custom(text)
    key = text.lower()
    if not key.startswith(_PREFIX):
        key = _PREFIX + key
    found = CATALOGUE.get(key)
    if found is not None:
        return found
    close = difflib.get_close_matches(key, CATALOGUE, n=3, cutoff=0.75)
    hint = (
        "did you mean " + ", ".join(repr(CATALOGUE[name].name) for name in close) + "? "
        if close
        else ""
    )
    raise ValidationError(
        "vm_size",
        f"{text!r} is not in the catalogue of VM sizes: {hint}AmlCompute.supported_vmsizes(ws) "
        f"lists them; or {CUSTOM_SIZE_HELP}",
    )


def supported_vm_sizes() -> list[VmSize]:
    """Every size of the catalogue, sorted by name.

    Example::

        [s.name for s in supported_vm_sizes() if s.gpus]   # ['Standard_NC12', ...]
    """
    return sorted(CATALOGUE.values(), key=lambda size: size.name)


def _custom(text: str) -> VmSize:
    values: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key or not value:
            raise ValidationError(
                "vm_size", f"{part.strip()!r} in {text!r} is not key=value: {CUSTOM_SIZE_HELP}"
            )
        if key not in _CUSTOM_KEYS:
            raise ValidationError(
                "vm_size",
                f"unknown key {key!r} in {text!r}: the keys are cpu, memory and gpu; "
                f"{CUSTOM_SIZE_HELP}",
            )
        if key in values:
            raise ValidationError(
                "vm_size", f"{key!r} is given twice in {text!r}: {CUSTOM_SIZE_HELP}"
            )
        values[key] = value
    if "cpu" not in values:
        raise ValidationError("vm_size", f"{text!r} has no cpu: {CUSTOM_SIZE_HELP}")
    cores = _count(text, "cpu", values["cpu"], minimum=1)
    gpus = _count(text, "gpu", values.get("gpu", "0"), minimum=0)
    memory = (
        _memory_gb(text, values["memory"]) if "memory" in values else cores * DEFAULT_GB_PER_CORE
    )
    return VmSize(
        name=f"cpu={cores},memory={memory:g}GB,gpu={gpus}",
        cores=cores,
        memory_gb=memory,
        gpus=gpus,
        gpu_type=None,
        aws=None,
        gcp=None,
    )


def _count(text: str, key: str, value: str, minimum: int) -> int:
    if not _WHOLE.fullmatch(value) or int(value) < minimum:
        raise ValidationError(
            "vm_size",
            f"{key}={value} in {text!r} must be a whole number of at least {minimum}: "
            f"{CUSTOM_SIZE_HELP}",
        )
    return int(value)


def _memory_gb(text: str, value: str) -> float:
    match = _MEMORY.fullmatch(value)
    if match is None or float(match.group(1)) <= 0:
        raise ValidationError(
            "vm_size",
            f"memory={value} in {text!r} is not an amount of memory (7GB, 7GiB, 512MB): "
            f"{CUSTOM_SIZE_HELP}",
        )
    amount = float(match.group(1))
    # GB and GiB are the same here, as in Azure's figures (memoryGB counts GiB).
    unit = (match.group(2) or "gb").lower()
    return amount / 1024 if unit.startswith("m") else amount


__all__ = ["CATALOGUE", "GCP_ACCELERATORS", "VmSize", "supported_vm_sizes", "vm_size"]
