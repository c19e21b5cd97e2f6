"""The README's shell commands work as printed, from a clean clone, the way CI runs them.

The clone is the checkout's files as git sees them (tracked, and new files git does not
ignore, so uncommitted work is tested too) copied into a temporary folder, with its `.venv`
a link to this interpreter's virtual environment: what `make test` leaves behind. Every line
of the README's ```sh blocks then runs in one `bash -e`, from that folder, except the lines
that install or take minutes, each skipped by a rule below.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard import Workspace
from modelyard.compute.local import stop_agent

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# Lines not run, by rule and why. A new line that one of them takes must be added to
# EXPECTED_SKIPS on purpose, so a slow command cannot slip into the README unseen.
SKIP_RULES = {
    r"make (demo|test)\b": "installs everything, in minutes: the clone starts from what it leaves",
    r"modelyard migrate notebooks/": "rewrites the reader's own v1 notebooks",
    r"modelyard compute ": "starts or reads a Ray cluster: minutes on 2 cores (tests/compute)",
}
EXPECTED_SKIPS = {
    "make demo",
    "make test",
    "modelyard migrate notebooks/ --check",
    "modelyard migrate notebooks/",
    "modelyard migrate notebooks/ --out ported/",
    "modelyard compute create cpucluster --vm-size STANDARD_D2_V2 --max-nodes 4 --wait",
    "modelyard compute list",
    "modelyard compute show cpucluster --json",
    "modelyard compute export cpucluster --provider aws --output cluster.yaml",
    "modelyard compute delete cpucluster",
}


def shell_lines() -> list[str]:
    """Every command line of the README's ```sh blocks, in order, comments kept."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README, re.S | re.M)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def without_comment(line: str) -> str:
    # The README's comments start with two spaces and a '#', which no command holds.
    return re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()


def clone(destination: Path) -> Path:
    """Copy the checkout's files as git lists them into ``destination``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the checkout is not copied
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def environment_without_modelyard() -> dict[str, str]:
    """This environment, with no `modelyard` on the PATH and no virtual environment active."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MODELYARD_CONFIG")}
    folders = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(f for f in folders if not (Path(f) / "modelyard").exists())
    return env


def test_the_readme_shell_commands_run_as_printed_from_a_clean_clone(tmp_path: Path) -> None:
    if sys.prefix == sys.base_prefix:
        pytest.skip("not run from a virtual environment: there is no .venv to give the clone")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the clone is made from `git ls-files`")
    lines = shell_lines()
    skipped = {
        without_comment(line)
        for line in lines
        if any(re.match(rule, without_comment(line)) for rule in SKIP_RULES)
    }
    assert skipped == EXPECTED_SKIPS
    script = [line for line in lines if without_comment(line) not in skipped]
    assert without_comment(script[0]) == ". .venv/bin/activate"  # before any modelyard command

    root = clone(tmp_path / "modelyard")
    (root / ".venv").symlink_to(sys.prefix)
    env = environment_without_modelyard()
    before = subprocess.run(["bash", "-c", "command -v modelyard"], cwd=root, env=env)
    assert before.returncode != 0  # what a newcomer once met: command not found

    try:
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", "\n".join(script)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        if (root / ".modelyard" / "demo").is_dir():
            stop_agent(root / ".modelyard" / "demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "epoch 5: loss" in done.stdout  # the run's output, streamed by --wait
    assert "Status: Completed" in done.stdout
    assert "Registered hello-line:1" in done.stdout
    assert (root / "model" / "model" / "line.json").is_file()


def uploaded_files(workspace: Workspace, into: Path) -> list[str]:
    workspace.get_default_datastore().download(into, show_progress=False)
    return sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())


def test_the_readmes_python_and_shell_uploads_give_the_same_layout(tmp_path: Path) -> None:
    [(src_dir, target_path)] = re.findall(
        r'ds\.upload\(src_dir="([^"]+)", target_path="([^"]+)"', README
    )
    [(src, target)] = re.findall(r"^modelyard datastore upload (\S+) --target (\S+)", README, re.M)

    # The Python form, where the tour runs it: a folder holding a copy of examples/hello.
    tour = tmp_path / "tour"
    shutil.copytree(ROOT / "examples" / "hello", tour / "hello")
    from_python = Workspace.create("python", folder=tmp_path / "python-ws")
    previous = Path.cwd()
    os.chdir(tour)
    try:
        from_python.get_default_datastore().upload(
            src_dir=src_dir, target_path=target_path, show_progress=False
        )
    finally:
        os.chdir(previous)

    # The shell form, where the README runs it: the checkout's root.
    from_shell = Workspace.create("shell", folder=tmp_path / "shell-ws")
    config = from_shell.write_config(tmp_path / "shell-config")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard.cli.main",
            "--workspace-config",
            str(config),
            "datastore",
            "upload",
            src,
            "--target",
            target,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    python_files = uploaded_files(from_python, tmp_path / "python-files")
    assert python_files == uploaded_files(from_shell, tmp_path / "shell-files")
    # v1's layout: the folder's contents below the target, without the folder's own name.
    assert python_files == [f"{target_path}/holdout/points.csv", f"{target_path}/points.csv"]


def make_dry_run(target: str, venv: Path) -> list[str]:
    """The commands `make TARGET` would run on a fresh checkout (every target out of date)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # Under `make test` this make is a sub-make: without its parent's variables it prints
    # only the commands, not "make[1]: Entering directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    done = subprocess.run(
        ["make", "--dry-run", "--always-make", "--no-print-directory", target, f"VENV={venv}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_make_demo_needs_no_debian_packages_and_ends_with_the_line_to_activate(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    demo = make_dry_run("demo", venv)
    assert not [line for line in demo if "apt-get" in line or "sudo" in line]
    assert any("examples/tf-mnist/submit.py" in line for line in demo)
    assert f". {venv}/bin/activate" in demo[-1]
    assert f". {venv}/bin/activate" in make_dry_run("install", venv)[-1]
    # The tests need OpenMPI and PostgreSQL: `make test` still installs them when missing.
    assert any("apt-get install" in line for line in make_dry_run("test", venv))
