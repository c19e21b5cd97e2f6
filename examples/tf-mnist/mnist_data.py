"""Where the MNIST example gets its four IDX files, and which source it used.

:func:`find_mnist` looks, in order, at:

1. ``prefer_dir``, when the caller passes one (a command-line option, say);
2. ``$MNIST_DIR``, when it is set;
3. the full 70,000-image set downloaded from a public mirror, checked against the SHA-256 of the
   official files and cached in ``~/.cache/modelyard/mnist`` (``$XDG_CACHE_HOME`` is honoured);
   skipped when ``MODELYARD_NO_DOWNLOAD=1``;
4. the 10,000-image sample in ``shared/data/mnist`` beside the repository (or below
   ``$MODELYARD_SHARED_DATA``), checked against its ``SHA256SUMS``.

It prints one line saying which one it used and, when it fell back to the sample, why (the
mirrors it could not reach, each with its reason). Only when every source fails are all the
attempts listed, in the error. A folder given by the user (1, 2) only has to hold the four
files, gzipped or not, anywhere below it: the training script searches it the same way.

Example::

    from mnist_data import find_mnist

    folder, source = find_mnist(None)
    # MNIST: the 10,000-image sample in .../shared/data/mnist, not the full set: no mirror
    # could be reached (storage.googleapis.com: Name or service not known; ...)
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# The four official files: name -> (SHA-256, size in bytes), as published with the CVDF mirror
# (https://github.com/cvdfoundation/mnist) and pinned by TensorFlow Datasets.
OFFICIAL_FILES = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        9_912_422,
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        28_881,
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        1_648_877,
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        4_542,
    ),
}
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
# Short enough that an offline machine falls through to the local sample in seconds; a
# reachable mirror answers the first byte well within it.
TIMEOUT_S = 5.0
_CHUNK = 1 << 20


class MnistNotFound(RuntimeError):
    """No usable MNIST folder was found; the message lists every place tried."""


def find_mnist(prefer_dir: str | None = None) -> tuple[Path, str]:
    """A folder holding the four MNIST files, and a sentence saying where it came from."""
    tried: list[str] = []
    for label, given in (
        ("the folder given", prefer_dir),
        ("$MNIST_DIR", os.environ.get("MNIST_DIR")),
    ):
        if given:
            folder = Path(given).expanduser()
            missing = missing_files(folder)
            if missing:
                raise MnistNotFound(
                    f"{label} is {str(folder)!r}, which lacks {', '.join(missing)} (gzipped or "
                    "not, anywhere below it)"
                )
            return _used(folder, f"{folder} ({label})")

    if os.environ.get("MODELYARD_NO_DOWNLOAD") == "1":
        tried.append("download: turned off by MODELYARD_NO_DOWNLOAD=1")
        why = "the download is turned off (MODELYARD_NO_DOWNLOAD=1)"
    else:
        cache = cache_dir()
        failures: list[str] = []
        for mirror in MIRRORS:
            try:
                download(mirror, cache)
            except (OSError, ValueError) as error:  # URLError and timeouts are OSErrors
                # Collected, not printed: an offline machine is the usual case, and one line
                # below says what was used instead.
                failures.append(f"{urllib.parse.urlsplit(mirror).netloc}: {_reason(error)}")
                tried.append(f"{mirror}: {_reason(error)}")
                continue
            return _used(cache, f"the full 70,000-image set from {mirror} (cached in {cache})")
        why = f"no mirror could be reached ({'; '.join(failures)})"

    shared = shared_mnist_dir()
    if shared is not None:
        verify_sums(shared)
        return _used(shared, f"the 10,000-image sample in {shared}, not the full set: {why}")
    tried.append("shared/data/mnist: not found beside the repository or in $MODELYARD_SHARED_DATA")
    raise MnistNotFound(
        "no MNIST files: set MNIST_DIR to a folder holding them. Tried:\n  " + "\n  ".join(tried)
    )


def missing_files(folder: Path) -> list[str]:
    """The standard file names (without .gz) not found anywhere below ``folder``."""
    wanted = {name.removesuffix(".gz") for name in OFFICIAL_FILES}
    if folder.is_dir():
        for _, _, names in os.walk(folder):
            wanted -= {name.removesuffix(".gz") for name in names}
    return sorted(wanted)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelyard" / "mnist"


def download(mirror: str, cache: Path) -> None:
    """Fetch each official file not yet cached with the right checksum; raise on any failure."""
    cache.mkdir(parents=True, exist_ok=True)
    for name, (sha256, size) in OFFICIAL_FILES.items():
        target = cache / name
        if target.is_file() and _sha256(target) == sha256:
            continue
        # A temporary name beside the target, renamed only once the checksum matches: an
        # interrupted download never leaves a file that looks complete.
        fd, temp = tempfile.mkstemp(dir=cache, prefix=f".{name}.", suffix=".part")
        try:
            digest = hashlib.sha256()
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(mirror + name, timeout=TIMEOUT_S) as response,
            ):
                # Said once the mirror answers: an unreachable one is reported by find_mnist.
                print(f"MNIST: downloading {mirror}{name} ({size:,} bytes)", flush=True)
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                raise ValueError(f"{name} from {mirror} has the wrong SHA-256")
            os.replace(temp, target)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)


def shared_mnist_dir() -> Path | None:
    """``$MODELYARD_SHARED_DATA/mnist``, else the first ``shared/data/mnist`` found beside this
    file's folder or one of its parents (the repository's parent holds ``shared/``)."""
    env = os.environ.get("MODELYARD_SHARED_DATA")
    if env:
        candidate = Path(env).expanduser() / "mnist"
        return candidate if candidate.is_dir() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "mnist"
        if candidate.is_dir():
            return candidate
    return None


def verify_sums(folder: Path) -> None:
    """Check every file that ``folder/SHA256SUMS`` lists; raise MnistNotFound on a mismatch."""
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        raise MnistNotFound(f"{folder} has no SHA256SUMS file to check its files against")
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        expected, name = line.split(maxsplit=1)
        path = folder / name.lstrip("*")
        if not path.is_file() or _sha256(path) != expected:
            raise MnistNotFound(f"{path} is missing or does not match {sums}")


def _reason(error: BaseException) -> str:
    """The cause of a failed download in a few words: ``Name or service not known``, not
    ``<urlopen error [Errno -2] Name or service not known>``."""
    cause: object = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _used(folder: Path, source: str) -> tuple[Path, str]:
    print(f"MNIST: {source}", flush=True)
    return folder, source


if __name__ == "__main__":
    try:
        print(find_mnist(sys.argv[1] if len(sys.argv) > 1 else None)[0])
    except MnistNotFound as error:
        sys.exit(f"mnist_data.py: {error}")
