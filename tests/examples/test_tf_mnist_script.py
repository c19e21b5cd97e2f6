"""The TensorFlow MNIST example: where its data comes from, and the training script run for real."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tf-mnist"
NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def load_mnist_data() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mnist_data", EXAMPLE / "mnist_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mnist_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example's data module, with its cache in a temporary folder and no $MNIST_DIR."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.delenv("MODELYARD_NO_DOWNLOAD", raising=False)
    return load_mnist_data()


@pytest.fixture
def sample() -> Path:
    """The 10,000-image sample beside the repository, found as the example finds it."""
    folder = load_mnist_data().shared_mnist_dir()
    if folder is None:
        pytest.skip(
            "no MNIST sample: shared/data/mnist is not beside the repository and "
            "MODELYARD_SHARED_DATA is not set"
        )
    return Path(folder)


@pytest.fixture
def mirror(sample: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a copy of the sample: (base URL, its folder)."""
    served = tmp_path / "served"
    shutil.copytree(sample, served)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", served
    finally:
        server.shutdown()
        server.server_close()


def pin_official_files(mnist_data: ModuleType, folder: Path) -> None:
    """Make the sample's files the 'official' ones, so a local mirror can serve them."""
    mnist_data.OFFICIAL_FILES = {
        name: (
            hashlib.sha256((folder / name).read_bytes()).hexdigest(),
            (folder / name).stat().st_size,
        )
        for name in NAMES
    }


# --- where the data comes from ------------------------------------------------------------------


def test_given_folder_wins_then_mnist_dir(
    mnist_data: ModuleType, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "elsewhere"))
    assert mnist_data.find_mnist(str(sample))[0] == sample

    monkeypatch.setenv("MNIST_DIR", str(sample))
    folder, source = mnist_data.find_mnist(None)
    assert folder == sample and "$MNIST_DIR" in source

    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(sample / NAMES[0], partial)
    monkeypatch.setenv("MNIST_DIR", str(partial))
    with pytest.raises(mnist_data.MnistNotFound, match="t10k-images-idx3-ubyte"):
        mnist_data.find_mnist(None)


def test_download_falls_through_mirrors_and_is_cached(
    mnist_data: ModuleType, mirror: tuple[str, Path], tmp_path: Path
) -> None:
    url, served = mirror
    pin_official_files(mnist_data, served)
    # Port 9 on 127.0.0.1 refuses the connection at once: a mirror that is down.
    mnist_data.MIRRORS = ("http://127.0.0.1:9/", url)

    folder, source = mnist_data.find_mnist(None)
    assert folder == tmp_path / "cache" / "modelyard" / "mnist"
    assert url in source
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES)

    # Cached with the right checksums: no mirror is needed the second time.
    mnist_data.MIRRORS = ("http://127.0.0.1:9/",)
    assert mnist_data.find_mnist(None)[0] == folder


def test_bad_download_is_not_kept_and_the_sample_is_used(
    mnist_data: ModuleType,
    mirror: tuple[str, Path],
    sample: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, served = mirror
    pin_official_files(mnist_data, served)
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not what was pinned")
    mnist_data.MIRRORS = (url,)
    monkeypatch.setenv("MODELYARD_SHARED_DATA", str(sample.parent))

    folder, source = mnist_data.find_mnist(None)
    assert folder == sample and "sample" in source
    cache = mnist_data.cache_dir()
    assert "t10k-labels-idx1-ubyte.gz" not in {p.name for p in cache.iterdir()}
    assert not [p for p in cache.iterdir() if p.name.endswith(".part")]


def test_offline_the_sample_is_used_and_one_line_says_why(
    mnist_data: ModuleType,
    sample: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Port 9 on 127.0.0.1 refuses the connection at once: two mirrors that are down.
    mnist_data.MIRRORS = ("http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/")
    monkeypatch.setenv("MODELYARD_SHARED_DATA", str(sample.parent))

    folder, _source = mnist_data.find_mnist(None)

    assert folder == sample
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1, printed  # not a line per mirror before it
    assert printed[0].startswith(f"MNIST: the 10,000-image sample in {sample}, not the full set")
    assert (
        "no mirror could be reached (127.0.0.1:9: Connection refused; 127.0.0.1:9:" in (printed[0])
    )


def test_when_every_source_fails_the_error_lists_each(
    mnist_data: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mnist_data.MIRRORS = ("http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/")
    monkeypatch.setenv("MODELYARD_SHARED_DATA", str(tmp_path / "no-shared-data"))

    with pytest.raises(mnist_data.MnistNotFound) as error:
        mnist_data.find_mnist(None)

    assert str(error.value).splitlines() == [
        "no MNIST files: set MNIST_DIR to a folder holding them. Tried:",
        "  http://127.0.0.1:9/a/: Connection refused",
        "  http://127.0.0.1:9/b/: Connection refused",
        "  shared/data/mnist: not found beside the repository or in $MODELYARD_SHARED_DATA",
    ]
    assert capsys.readouterr().out == ""


def test_tampered_sample_is_refused(
    mnist_data: ModuleType, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "shared-data" / "mnist"
    shutil.copytree(sample, copy)
    (copy / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0" * 8))
    monkeypatch.setenv("MODELYARD_SHARED_DATA", str(copy.parent))
    monkeypatch.setenv("MODELYARD_NO_DOWNLOAD", "1")
    with pytest.raises(mnist_data.MnistNotFound, match="does not match"):
        mnist_data.find_mnist(None)


# --- the accuracy plot and the TensorFlow install ---------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed"
)
@pytest.mark.parametrize("epochs", [2, 3, 20])
def test_accuracy_plot_has_whole_epoch_ticks(epochs: int) -> None:
    spec = importlib.util.spec_from_file_location("accuracy_plot", EXAMPLE / "accuracy_plot.py")
    assert spec is not None and spec.loader is not None
    accuracy_plot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(accuracy_plot)
    history = {
        "accuracy": [0.9 + i / 1000 for i in range(epochs)],
        "val_accuracy": [0.89 + i / 1000 for i in range(epochs)],
    }

    figure = accuracy_plot.accuracy_figure(history)
    figure.canvas.draw()

    (axes,) = figure.axes
    low, high = axes.get_xlim()
    shown = [tick for tick in axes.get_xticks() if low <= tick <= high]
    assert shown and all(tick == int(tick) for tick in shown), shown
    labels = [label.get_text() for label in axes.get_xticklabels() if label.get_text()]
    assert all(label.isdigit() for label in labels), labels
    assert axes.get_xlabel() == "epoch"


def installed_tensorflow() -> list[str]:
    """The TensorFlow distributions installed, as 'name version'."""
    installed = []
    for name in ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            installed.append(f"{name} {importlib.metadata.version(name)}")
    return installed


def test_one_tensorflow_distribution_is_installed() -> None:
    """tf-keras requires the distribution named ``tensorflow``: installed beside
    ``tensorflow-cpu`` it overwrites the same ``tensorflow/`` package with its CUDA build,
    whose start-up prints CUDA errors on a machine without a GPU. The extra installs
    tensorflow-cpu, and tf-keras without its requirements (see the Makefile)."""
    installed = installed_tensorflow()
    if not installed:
        pytest.skip("TensorFlow is not installed: pip install -e '.[tensorflow]'")
    assert len(installed) == 1, (
        f"{' and '.join(installed)} are installed, one over the other; rebuild the "
        "environment (make clean install)"
    )


# --- the training script ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="TensorFlow is not installed: pip install -e '.[tensorflow]'",
)
def test_script_trains_logs_and_saves_a_model_that_loads(sample: Path, tmp_path: Path) -> None:
    # The files nested at different depths, half of them unzipped: the script searches.
    data = tmp_path / "datastore"
    for name in NAMES[:2]:
        (data / "mnist" / "train").mkdir(parents=True, exist_ok=True)
        shutil.copy(sample / name, data / "mnist" / "train" / name)
    (data / "test").mkdir(parents=True)
    for name in NAMES[2:]:
        with gzip.open(sample / name) as packed:
            (data / "test" / name.removesuffix(".gz")).write_bytes(packed.read())
    cwd = tmp_path / "run"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_RUN")}

    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "tf_mnist.py"), "--data-folder", str(data), "--epochs", "2"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    final = re.search(
        r"^final_acc: ([0-9.]+), the accuracy on the ([0-9,]+) test images",
        done.stdout,
        re.MULTILINE,
    )
    assert final is not None, done.stdout[-3000:]
    assert float(final.group(1)) > 0.8 and final.group(2) == "2,000"  # the sample's t10k files
    # Quiet: TensorFlow's C++ INFO lines (CPU instructions) are not printed by default. Its
    # oneDNN notice is the exception: TensorFlow 2.21 logs it as its libraries load, before
    # it reads TF_CPP_MIN_LOG_LEVEL, whatever that is set to (3 included).
    assert "cpu_feature_guard" not in done.stdout + done.stderr, done.stderr
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert all("oneDNN" in line or "absl::InitializeLog" in line for line in said), said
    if [line.split()[0] for line in installed_tensorflow()] == ["tensorflow-cpu"]:
        # The CPU build has no CUDA to look for: no cuInit error, no CUDA stub lines.
        assert not re.search(r"cuInit|cudart_stub|cuda", done.stderr), done.stderr
    # Outside a modelyard run, Run.get_context() prints each call as v1's offline run did.
    assert done.stdout.count("metric training_acc") == 2
    assert done.stdout.count("metric validation_acc") == 2
    assert done.stdout.count("metric final_acc") == 1
    model = cwd / "outputs" / "model" / "model.keras"
    assert model.is_file()
    assert list((cwd / "logs").rglob("events.out.tfevents.*"))

    check = (
        "import gzip, sys, numpy as np, tensorflow as tf\n"
        "model = tf.keras.models.load_model(sys.argv[1])\n"
        "x = np.frombuffer(open(sys.argv[2], 'rb').read(), np.uint8, offset=16)\n"
        "y = np.frombuffer(open(sys.argv[3], 'rb').read(), np.uint8, offset=8)\n"
        "guess = model.predict(x.reshape(-1, 784)[:500] / 255.0, verbose=0).argmax(axis=1)\n"
        "print('accuracy', (guess == y[:500]).mean())\n"
    )
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            check,
            str(model),
            str(data / "test" / "t10k-images-idx3-ubyte"),
            str(data / "test" / "t10k-labels-idx1-ubyte"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    accuracy = re.search(r"^accuracy ([0-9.]+)", loaded.stdout, re.MULTILINE)
    assert accuracy is not None and float(accuracy.group(1)) > 0.8
