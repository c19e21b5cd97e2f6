"""The Python interpreters on this machine, for an environment's ``python_version``.

Looked for: modelyard's own Python, ``python3`` and ``python3.N`` on the PATH, pyenv's versions
(``$PYENV_ROOT/versions``, whose shims only run the selected version) and the Pythons that uv
installed (``uv python install``). Each candidate is asked for its version by running it; the
answers are kept in ``interpreters.json`` in the environment cache, keyed by path and
modification time, so a lookup costs a file read once the machine is known.

``python_version`` is a prefix: ``"3"`` takes any 3.x, ``"3.12"`` any 3.12.x, ``"3.12.1"`` that
release. modelyard's own Python wins when it matches, then the newest match.

Example::

    find_interpreter("3.12", cache_dir).path    # '~/.pyenv/versions/3.12.1/bin/python3.12'
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from modelyard.runner.envbuild.errors import EnvironmentBuildError
from modelyard.store.private import write_private_file

CACHE_FILE = "interpreters.json"
_NAME = re.compile(r"python3(\.\d+)?")
_PROBE = "import sys, platform; print(platform.python_implementation(), platform.python_version())"


@dataclass(frozen=True)
class Interpreter:
    """A base Python interpreter (never a virtual environment's)."""

    path: str
    version: str
    implementation: str = "CPython"

    @property
    def short_version(self) -> str:
        """``3.11``."""
        return ".".join(self.version.split(".")[:2])


def current_interpreter() -> Interpreter:
    """The Python modelyard runs in (the base interpreter of its virtual environment)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Interpreter(
        os.path.realpath(base),
        ".".join(str(part) for part in sys.version_info[:3]),
        "PyPy" if sys.implementation.name == "pypy" else "CPython",
    )


def matches(version: str, request: str) -> bool:
    """Whether ``version`` (``3.11.7``) is what ``request`` (``3.11``) asks for."""
    return version.split(".")[: len(request.split("."))] == request.split(".")


def _candidates() -> list[Path]:
    found: list[Path] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        with contextlib.suppress(OSError):
            found += [
                entry for entry in Path(folder or ".").iterdir() if _NAME.fullmatch(entry.name)
            ]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    uv_pythons = Path(
        os.environ.get("UV_PYTHON_INSTALL_DIR")
        or Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        / "uv"
        / "python"
    )
    for root in (pyenv, uv_pythons):
        with contextlib.suppress(OSError):
            found += [version / "bin" / "python3" for version in root.iterdir()]
    return found


def _probe(path: str) -> Interpreter | None:
    try:
        answer = subprocess.run(
            [path, "-I", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None  # not runnable: a pyenv shim of an unselected version, a broken link
    if len(answer) != 2:
        return None
    return Interpreter(path, answer[1], answer[0])


def list_interpreters(cache_dir: Path) -> list[Interpreter]:
    """Every runnable Python 3 found here, newest first, one per real path."""
    cache_file = cache_dir / CACHE_FILE
    try:
        known: dict[str, list[str | int]] = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        known = {}
    result: dict[str, Interpreter] = {}
    to_probe: dict[str, int] = {}
    for candidate in [Path(current_interpreter().path), *_candidates()]:
        try:
            real = os.path.realpath(candidate)
            stamp = os.stat(real).st_mtime_ns
        except OSError:
            continue
        if not os.access(real, os.X_OK) or real in result or real in to_probe:
            continue
        entry = known.get(real)
        if entry is not None and entry[0] == stamp:
            if entry[1]:
                result[real] = Interpreter(real, str(entry[1]), str(entry[2]))
            continue
        to_probe[real] = stamp
    if to_probe:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            probed = dict(zip(to_probe, pool.map(_probe, to_probe), strict=True))
        for real, interpreter in probed.items():
            if interpreter is not None and interpreter.version.startswith("3."):
                result[real] = interpreter
                known[real] = [to_probe[real], interpreter.version, interpreter.implementation]
            else:
                known[real] = [to_probe[real], "", ""]
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_private_file(cache_file, json.dumps(known, indent=1, sort_keys=True).encode())
    return sorted(
        result.values(),
        key=lambda found: [int(part) for part in found.version.split(".") if part.isdigit()],
        reverse=True,
    )


def find_interpreter(request: str, cache_dir: Path) -> Interpreter:
    """The interpreter for ``python_version=request``; EnvironmentBuildError listing the
    versions present when none matches."""
    current = current_interpreter()
    if matches(current.version, request):
        return current
    present = list_interpreters(cache_dir)
    for interpreter in present:
        if matches(interpreter.version, request):
            return interpreter
    versions = sorted(
        {found.version for found in present},
        key=lambda version: [int(part) for part in version.split(".") if part.isdigit()],
    )
    raise EnvironmentBuildError(
        f"python_version {request!r}: no such Python on this machine; the versions present "
        f"are {', '.join(versions) or 'none'}. Choose one of them, or install {request} "
        f"(uv python install {request}, pyenv install {request})",
        field="python_version",
    )
