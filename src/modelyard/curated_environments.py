"""The curated environments: v1's ``AzureML-*`` names, with current package sets.

v1 notebooks take a ready environment by name (``Environment.get(ws, "AzureML-Minimal")``).
Those images were docker images of Microsoft's, with Python 3.6 to 3.8 and packages of their
day (none of which install on the Python modelyard runs on). Here each name v1 notebooks use
(counted in the public Azure ML v1 samples) resolves to the packages of today that do the same
job; names kept, contents modern. GPU names get the same packages as CPU ones: the framework
wheels below carry their GPU support, or run on the CPU where there is no GPU. None pins
Python: runs use modelyard's own Python version.

Example::

    env = Environment.get(ws, "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu")
    env.python.conda_dependencies.pip_packages   # ['scikit-learn==1.9.*', 'pandas==3.1.*', ...]
    modelyard env curated
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.runner.envbuild.requirements import framework_requirements

CURATED_PREFIX = "AzureML-"
CURATED_VERSION = 1

# Current releases (PyPI, CPython 3.11) that the sets below pin to the minor version.
_SKLEARN = ["scikit-learn==1.9.*", "pandas==3.1.*", "numpy==2.4.*", "scipy==1.17.*", "joblib"]
_TENSORFLOW = framework_requirements("tensorflow", None, use_gpu=False)
_PYTORCH = framework_requirements("pytorch", None, use_gpu=False)


@dataclass(frozen=True)
class CuratedEnvironment:
    """One curated name: what v1 held under it, and what it holds here."""

    name: str
    v1_held: str
    pip_packages: list[str] = field(default_factory=list)
    environment_variables: dict[str, str] = field(default_factory=dict)


_TABLE = [
    # v1: Python 3.6 with azureml-defaults only. Here: nothing beyond the client, so a run on
    # it uses modelyard's own Python with nothing built.
    CuratedEnvironment("AzureML-Minimal", "Python 3.6, azureml-defaults"),
    # v1: the tutorials' image (azureml-defaults, azureml-widgets, scikit-learn, pandas,
    # matplotlib, numpy). Here: the same data science packages, current.
    CuratedEnvironment(
        "AzureML-Tutorial",
        "Python 3.6, azureml-defaults and -widgets, scikit-learn 0.22, pandas, matplotlib",
        [*_SKLEARN, "matplotlib==3.11.*"],
    ),
    # v1: scikit-learn 0.20.3 on Python 3.6. Here: current scikit-learn.
    CuratedEnvironment("AzureML-Scikit-learn-0.20.3", "Python 3.6, scikit-learn 0.20.3", _SKLEARN),
    # v1: scikit-learn 0.24 on Ubuntu 18.04, Python 3.7 (and its CUDA/OpenMPI variant).
    CuratedEnvironment(
        "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu", "Python 3.7, scikit-learn 0.24", _SKLEARN
    ),
    CuratedEnvironment(
        "AzureML-Scikit-learn0.24-Cuda11-OpenMpi4.1.0-py36",
        "Python 3.6, scikit-learn 0.24, CUDA 11, OpenMPI 4.1",
        _SKLEARN,
    ),
    # v1: scikit-learn 1.0 on Ubuntu 20.04, Python 3.8; later 1.5. Here: current scikit-learn.
    CuratedEnvironment(
        "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu", "Python 3.8, scikit-learn 1.0", _SKLEARN
    ),
    CuratedEnvironment("AzureML-sklearn-1.0", "Python 3.8, scikit-learn 1.0", _SKLEARN),
    CuratedEnvironment("AzureML-sklearn-1.5", "Python 3.9, scikit-learn 1.5", _SKLEARN),
    # v1: LightGBM 3.2 on Python 3.7. Here: current LightGBM with the scikit-learn set.
    CuratedEnvironment(
        "AzureML-lightgbm-3.2-ubuntu18.04-py37-cpu",
        "Python 3.7, LightGBM 3.2, scikit-learn 0.24",
        ["lightgbm==4.7.*", *_SKLEARN],
    ),
    # v1: TensorFlow 2.0 to 2.7 images (GPU ones with CUDA). Here: TensorFlow's default
    # release, with tf-keras for tf.distribute (the TensorFlow estimator's set).
    *(
        CuratedEnvironment(name, f"TensorFlow {release}", _TENSORFLOW)
        for name, release in [
            ("AzureML-TensorFlow-2.x-CPU", "2.x"),
            ("AzureML-TensorFlow-2.0-GPU", "2.0"),
            ("AzureML-TensorFlow-2.1-GPU", "2.1"),
            ("AzureML-TensorFlow-2.3-CPU", "2.3"),
            ("AzureML-TensorFlow-2.3-GPU", "2.3"),
            ("AzureML-tensorflow-2.6-ubuntu20.04-py38-cuda11-gpu", "2.6"),
            ("AzureML-tensorflow-2.7-ubuntu20.04-py38-cuda11-gpu", "2.7"),
        ]
    ),
    # v1: PyTorch 1.4 to 1.9 images. Here: the PyTorch estimator's default set (torch with
    # the torchvision built for it, and numpy; see runner/envbuild/requirements.py).
    *(
        CuratedEnvironment(name, f"PyTorch {release}, torchvision", _PYTORCH)
        for name, release in [
            ("AzureML-PyTorch-1.x-CPU", "1.x"),
            ("AzureML-PyTorch-1.4-GPU", "1.4"),
            ("AzureML-PyTorch-1.6-CPU", "1.6"),
            ("AzureML-PyTorch-1.6-GPU", "1.6"),
            ("AzureML-PyTorch-1.9-CU11-ubuntu18.04-Py37", "1.9"),
        ]
    ),
]

CURATED = {entry.name: entry for entry in _TABLE}


def is_curated_name(name: str) -> bool:
    """Whether a name is in the curated namespace (``AzureML-...``), which registrations
    cannot use."""
    return name.lower().startswith(CURATED_PREFIX.lower())


def find_curated(name: str) -> CuratedEnvironment | None:
    """The curated environment of this name (case as v1 wrote it, or any case), or None."""
    found = CURATED.get(name)
    if found is None:
        found = next((e for e in _TABLE if e.name.lower() == name.lower()), None)
    return found


__all__ = ["CURATED", "CuratedEnvironment", "find_curated", "is_curated_name"]
