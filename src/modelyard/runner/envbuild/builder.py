"""Building one environment: a virtual environment (or conda prefix), its packages, the client.

Steps, each a subprocess whose output goes to the run's build log as it comes:

1. ``uv venv`` with the chosen interpreter (``python -m venv`` when the installer is pip and uv
   is missing), or ``conda create`` when the environment has conda packages;
2. two ``.pth`` files in its site-packages: one that puts modelyard's package on the path
   (through a link in the cache, so the environment has exactly the client code of the
   supervisor that talks to it, without a copy to keep in step), and, with
   ``inherit_base_packages``, one that adds modelyard's own site-packages after the
   environment's (so its own packages win);
3. without conda, the conda packages' PyPI twins (``conda.py``) looked up in the package
   index with a dry run, the mapping written to the log, the missing ones refused by name;
   then ``uv pip install -r`` (or ``pip install -r``) of the run's requirements, those twins
   and the client's runtime requirements, resolved together so a conflict between them is
   the installer's plain error; Horovod, when asked for, after them, compiled against the
   framework just installed (``horovod.py``);
4. ``import modelyard.run`` inside it, to fail here rather than in the script;
5. the record (resolved packages from ``pip freeze``, sizes, times), then publication.

A poll callback runs every 0.2 s while a step runs: it raises to stop the build (a cancel
request), and the step's process group is then stopped.

Example::

    builder = Builder(cache, log=print, poll=lambda: None, on_process=lambda pgid: None)
    environment = builder.build(request)
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import hashlib
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.runner.envbuild.cache import CachedEnvironment, EnvironmentCache
from modelyard.runner.envbuild.errors import EnvironmentBuildError
from modelyard.runner.envbuild.horovod import BUILD_TOOLS, HorovodBuild

if TYPE_CHECKING:
    from modelyard.runner.envbuild.prepare import BuildRequest

REQUIREMENTS_FILE = "modelyard-requirements.txt"
ENV_FOLDER = "env"  # the environment itself, inside its build folder
CLIENT_PTH = "modelyard-client.pth"
BASE_PTH = "modelyard-base.pth"
POLL_INTERVAL_S = 0.2
TAIL_LINES = 25
STOP_GRACE_S = 2.0

_PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"


def client_folder(cache: EnvironmentCache) -> Path:
    """A folder holding only a link named ``modelyard`` to modelyard's package: what a built
    environment's ``.pth`` names. (The package's own parent may be a site-packages holding
    everything else modelyard's Python has.)"""
    import modelyard

    package = Path(modelyard.__file__).resolve().parent
    folder = cache.root / "clients" / hashlib.sha256(str(package).encode()).hexdigest()[:16]
    link = folder / "modelyard"
    if not link.is_symlink():
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".modelyard.{os.getpid()}"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(package, target_is_directory=True)
        os.replace(temporary, link)
    return folder


def _worth_quoting(line: str) -> bool:
    """Whether an output line belongs in a failed step's error message (uv's "Using Python
    ... environment at" lines say nothing about the failure)."""
    return bool(line.strip()) and not line.startswith(("Using Python ", "Using CPython "))


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the step's process group, SIGKILL it after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def folder_size(folder: Path) -> int:
    """Bytes of the files below ``folder`` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


class Builder:
    """Builds environments into a cache; see the module docstring.

    ``log`` receives the build log's text; ``poll`` runs while steps run and may raise to stop
    the build; ``on_process`` is told the process group of each step (None after it), so the
    run's processes file can name it while it runs.
    """

    def __init__(
        self,
        cache: EnvironmentCache,
        log: Callable[[str], None],
        poll: Callable[[], None],
        on_process: Callable[[int | None], None],
    ) -> None:
        self.cache = cache
        self.log = log
        self.poll = poll
        self.on_process = on_process

    def run_step(
        self, what: str, command: list[str], *, cwd: Path, env: dict[str, str] | None = None
    ) -> None:
        """Run one step with its output in the log; EnvironmentBuildError when it fails."""
        self.log(f"$ {shlex.join(command)}\n")
        try:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one signal stops the step and what it started
            )
        except OSError as error:
            raise EnvironmentBuildError(f"{what} could not start: {error}") from None
        assert process.stdout is not None
        self.on_process(process.pid)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        partial = ""
        next_poll = time.monotonic() + POLL_INTERVAL_S
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                while True:
                    if selector.select(POLL_INTERVAL_S):
                        chunk = os.read(process.stdout.fileno(), 65536)
                        if not chunk:
                            break
                        text = decoder.decode(chunk)
                        self.log(text)
                        lines = (partial + text).split("\n")
                        partial = lines.pop()
                        tail.extend(line for line in lines if _worth_quoting(line))
                    if time.monotonic() >= next_poll:  # not once per chunk of a flood
                        self.poll()
                        next_poll = time.monotonic() + POLL_INTERVAL_S
            code = process.wait()
        except BaseException:
            _stop(process)
            raise
        finally:
            process.stdout.close()
            self.on_process(None)
        if partial.strip():
            if _worth_quoting(partial):
                tail.append(partial)
            self.log("\n")
        if code != 0:
            output = "\n".join(tail)
            raise EnvironmentBuildError(
                f"{what} failed (exit code {code}):\n{output}", output_tail=output
            )

    def _output(self, command: list[str], what: str) -> str:
        """A short step whose output is data, not log."""
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as error:
            raise EnvironmentBuildError(f"{what} failed: {error}") from None
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()[-2000:]
            raise EnvironmentBuildError(f"{what} failed:\n{output}", output_tail=output)
        return done.stdout

    def build(self, request: BuildRequest, run_id: str | None = None) -> CachedEnvironment:
        """Build ``request`` into a new folder and publish it (the caller holds the key's
        build lock)."""
        started = time.monotonic()
        folder = self.cache.new_build_folder(request.key)
        try:
            environment = folder / ENV_FOLDER
            python = self._create(request, environment, folder)
            site_packages = Path(
                self._output([str(python), "-c", _PURELIB], "finding site-packages").strip()
            )
            (site_packages / CLIENT_PTH).write_text(f"{client_folder(self.cache)}\n")
            if request.inherit_base_packages:
                lines = "".join(
                    f"import site; site.addsitedir({folder_path!r})\n"
                    for folder_path in request.base_site_packages
                )
                (site_packages / BASE_PTH).write_text(lines)
            self._check_conda_on_pypi(request, folder, python)
            self._install(request, folder, python)
            packages = self._freeze(request, python)
            # -I: the check must not find a modelyard in the current folder instead.
            self._output(
                [str(python), "-I", "-c", "import modelyard.run"], "importing modelyard there"
            )
            record: dict[str, Any] = {
                "format": 1,
                "key": request.key,
                "python": f"{ENV_FOLDER}/bin/python",
                "python_version": request.interpreter.version,
                "base_interpreter": request.interpreter.path,
                "installer": request.installer,
                "requirements": list(request.requirements),
                "options": list(request.options),
                "client_requirements": list(request.client_requirements),
                "conda_packages": list(request.conda_packages),
                "conda_on_pypi": [list(pair) for pair in request.conda_on_pypi],
                "inherit_base_packages": request.inherit_base_packages,
                "packages": packages,
                "sources": request.sources.describe(),
                "content": request.content(),
                "created_at": time.time(),
                "build_seconds": round(time.monotonic() - started, 3),
                "size_bytes": folder_size(folder),
                "built_for_run": run_id,
            }
            return self.cache.publish(request.key, folder, record)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _environ(self, request: BuildRequest) -> dict[str, str]:
        environ = dict(os.environ)
        environ.update(request.sources.uv_environment(environ))
        environ["UV_PYTHON_DOWNLOADS"] = "never"  # the interpreter was chosen; use it
        environ.pop("VIRTUAL_ENV", None)
        environ.pop("CONDA_PREFIX", None)
        return environ

    def _create(self, request: BuildRequest, environment: Path, folder: Path) -> Path:
        environ = self._environ(request)
        if request.conda_tool is not None:
            self.run_step(
                f"creating the conda environment ({request.conda_tool})",
                [
                    request.conda_tool,
                    "create",
                    "--yes",
                    "--prefix",
                    str(environment),
                    f"python={request.interpreter.short_version}",
                    *request.conda_packages,
                ],
                cwd=folder,
                env=environ,
            )
        elif request.uv is not None:
            command = [request.uv, "venv", str(environment), "--python", request.interpreter.path]
            if request.installer == "pip":
                command.append("--seed")  # pip inside the environment
            self.run_step("creating the virtual environment", command, cwd=folder, env=environ)
        else:
            self.run_step(
                "creating the virtual environment",
                [request.interpreter.path, "-m", "venv", str(environment)],
                cwd=folder,
                env=environ,
            )
        python = environment / "bin" / "python"
        if not python.exists():
            raise EnvironmentBuildError(f"the new environment has no {python}")
        return python

    def _install(self, request: BuildRequest, folder: Path, python: Path) -> None:
        horovod = request.horovod
        later = set(horovod.requirements) if horovod is not None else set()
        lines = [
            *request.options,
            *(line for line in request.requirements if line not in later),
            *(pip for _conda, pip in request.conda_on_pypi),
            *request.client_requirements,
        ]
        if horovod is not None:
            lines += [*horovod.companions, *BUILD_TOOLS]
        if not any(not line.startswith("-") for line in lines):
            return
        requirements = folder / REQUIREMENTS_FILE
        requirements.write_text("".join(f"{line}\n" for line in lines))
        self.run_step(
            f"installing the packages ({request.installer})",
            self._install_command(request, python, ["-r", str(requirements)]),
            cwd=folder,
            env=self._environ(request),
        )
        if horovod is not None:
            self._install_horovod(request, horovod, folder, python)

    def _install_horovod(
        self, request: BuildRequest, horovod: HorovodBuild, folder: Path, python: Path
    ) -> None:
        """Compile Horovod against the framework just installed (horovod.py says why it
        comes second, without build isolation)."""
        environ = {**self._environ(request), **horovod.variables()}
        arguments = ["--no-build-isolation", *request.options, *horovod.requirements]
        if request.installer == "uv" and request.uv is not None:
            # A wheel uv built for another environment was compiled against that
            # environment's framework: build this one's.
            arguments.insert(0, "--no-cache")
        self.run_step(
            f"compiling Horovod against {horovod.framework} (several minutes)",
            self._install_command(request, python, arguments),
            cwd=folder,
            env=environ,
        )

    def _install_command(
        self, request: BuildRequest, python: Path, arguments: list[str]
    ) -> list[str]:
        if request.installer == "uv" and request.uv is not None:
            return [
                request.uv,
                "pip",
                "install",
                "--python",
                str(python),
                *arguments,
                *request.sources.uv_arguments(),
            ]
        # pip reads the machine's pip configuration itself.
        return [str(python), "-m", "pip", "install", "--disable-pip-version-check", *arguments]

    def _check_conda_on_pypi(self, request: BuildRequest, folder: Path, python: Path) -> None:
        """Each conda package's PyPI twin must be in the index: a dry run of each (no
        download, no dependencies) says which are not, before anything is installed."""
        if not request.conda_on_pypi:
            return
        self.log("No conda on this machine: conda packages come from PyPI, same names:\n")
        missing = []
        options = list(request.options)
        for conda, pip in request.conda_on_pypi:
            command = self._install_command(
                request, python, ["--dry-run", "--no-deps", *options, pip]
            )
            try:
                done = subprocess.run(
                    command,
                    cwd=folder,
                    env=self._environ(request),
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
            except (OSError, subprocess.SubprocessError) as error:
                raise EnvironmentBuildError(f"looking up {pip} failed: {error}") from None
            self.poll()
            if done.returncode == 0:
                self.log(f"  {conda} -> {pip}\n")
            else:
                reason = (done.stderr or done.stdout).strip().splitlines()
                self.log(f"  {conda} -> {pip}: not in the package index\n")
                missing.append((conda, reason[-1] if reason else ""))
        if missing:
            output = "\n".join(f"{conda}: {reason}" for conda, reason in missing)
            raise EnvironmentBuildError(
                f"conda package(s) {', '.join(conda for conda, _ in missing)} have no PyPI "
                "package of the same name and version, and there is no conda, mamba or "
                "micromamba on this machine to install them. Install one of those, or replace "
                "them with their PyPI names in the pip section (pip_packages).\n" + output,
                field="conda_packages",
                output_tail=output,
            )

    def _freeze(self, request: BuildRequest, python: Path) -> list[str]:
        if request.uv is not None:
            command = [request.uv, "pip", "freeze", "--python", str(python)]
        else:
            command = [str(python), "-m", "pip", "freeze", "--disable-pip-version-check"]
        output = self._output(command, "listing the installed packages")
        return [line.strip() for line in output.splitlines() if line.strip()]
