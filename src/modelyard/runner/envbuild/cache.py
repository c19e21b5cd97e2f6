"""The machine-wide cache of built environments, shared by every workspace of the user.

Layout of the cache folder (``$MODELYARD_ENV_CACHE``, default ``~/.cache/modelyard/envs``)::

    <key>                       a finished environment: a link to builds/<key>-<token>
    builds/<key>-<token>/       an environment (a virtual environment or a conda prefix), with
                                modelyard-env.json, its record, written last
    locks/<key>.build           held while <key> is built: one build per key at a time
    locks/<key>.use             held shared by each run using <key>; prune needs it alone
    clients/<digest>/modelyard  a link to modelyard's package, for built environments' .pth

Publishing is atomic: an environment is built in its own folder, gets its record, and only
then does a link under its key appear (a rename), so a build that fails or is killed leaves a
folder under builds/ that nothing points to, never something a run would take for finished.
Environments never move once built (virtual environments hold absolute paths); the link is
what is renamed. Leftovers are removed by the next build of the same key and by prune.

The record's modification time is the environment's last use: each run that takes it
touches it, and prune removes the least recently used first.

Example::

    cache = EnvironmentCache(cache_root())
    with cache.lease(key):
        found = cache.find(key)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from modelyard.store.private import write_private_file

CACHE_ENV = "MODELYARD_ENV_CACHE"
RECORD_FILE = "modelyard-env.json"
KEY_PATTERN = re.compile(r"[0-9a-f]{20}")
LOCK_POLL_S = 0.1


def cache_root() -> Path:
    """The cache folder: ``$MODELYARD_ENV_CACHE``, else ``$XDG_CACHE_HOME/modelyard/envs``
    (``~/.cache/modelyard/envs``)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelyard" / "envs"


@dataclass(frozen=True)
class CachedEnvironment:
    """A finished environment of the cache, as its record describes it."""

    key: str
    path: Path
    record: dict[str, Any]
    last_used_at: float
    in_use: bool = field(default=False, compare=False)

    @property
    def python(self) -> str:
        """The interpreter a run starts its script with."""
        return str(self.path / self.record.get("python", "bin/python"))

    @property
    def size_bytes(self) -> int:
        return int(self.record.get("size_bytes", 0))

    @property
    def created_at(self) -> float:
        return float(self.record.get("created_at", 0.0))


@dataclass
class PruneResult:
    """What ``prune`` removed (or would remove, in a dry run)."""

    removed: list[CachedEnvironment] = field(default_factory=list)
    kept_in_use: list[CachedEnvironment] = field(default_factory=list)
    leftovers: int = 0

    @property
    def freed_bytes(self) -> int:
        return sum(environment.size_bytes for environment in self.removed)


def _lock(path: Path, mode: int) -> IO[str] | None:
    """An open lock file holding ``mode`` (non-blocking), or None when another holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")  # noqa: SIM115 - the caller keeps it open while it holds the lock
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class Lease:
    """A run's shared hold on an environment: prune leaves it alone while the lease is open.

    A supervisor keeps its lease until it exits; closing it (or the process ending) lets go.
    """

    def __init__(self, handle: IO[str]) -> None:
        self._handle: IO[str] | None = handle

    def fileno(self) -> int:
        """The lock file's descriptor: a child process given it (``pass_fds``) holds the
        lease with this one, and alone once this one closes it (flock locks belong to the
        open file, which the child shares)."""
        if self._handle is None:
            raise ValueError("the lease is closed")
        return self._handle.fileno()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EnvironmentCache:
    """The cache folder; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.builds = root / "builds"
        self.locks = root / "locks"

    # -- reading -------------------------------------------------------------------------

    def find(self, key: str) -> CachedEnvironment | None:
        """The finished environment ``key``, or None."""
        path = self.root / key
        record_file = path / RECORD_FILE
        try:
            record = json.loads(record_file.read_text())
            last_used = record_file.stat().st_mtime
        except (OSError, ValueError):
            return None
        return CachedEnvironment(key, path, record, last_used)

    def touch(self, key: str) -> None:
        """Record that ``key`` was used now."""
        with contextlib.suppress(OSError):
            os.utime(self.root / key / RECORD_FILE)

    def entries(self) -> list[CachedEnvironment]:
        """Every finished environment, least recently used first, each marked in use or
        not."""
        found = []
        with contextlib.suppress(OSError):
            for entry in self.root.iterdir():
                if not KEY_PATTERN.fullmatch(entry.name):
                    continue
                environment = self.find(entry.name)
                if environment is not None:
                    found.append(
                        CachedEnvironment(
                            environment.key,
                            environment.path,
                            environment.record,
                            environment.last_used_at,
                            in_use=self._in_use(entry.name),
                        )
                    )
        return sorted(found, key=lambda environment: environment.last_used_at)

    def resolve_key(self, prefix: str) -> str | None:
        """The one finished environment whose key starts with ``prefix`` (None when none or
        several do)."""
        matching = [entry.key for entry in self.entries() if entry.key.startswith(prefix)]
        return matching[0] if len(matching) == 1 else None

    def _in_use(self, key: str) -> bool:
        handle = _lock(self.locks / f"{key}.use", fcntl.LOCK_EX)
        if handle is None:
            return True
        handle.close()
        return False

    # -- runs ----------------------------------------------------------------------------

    def lease(self, key: str) -> Lease:
        """Hold ``key`` shared (blocks only while a prune is removing it)."""
        path = self.locks / f"{key}.use"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 - kept open by the Lease
        fcntl.flock(handle, fcntl.LOCK_SH)
        return Lease(handle)

    @contextlib.contextmanager
    def build_lock(
        self, key: str, on_wait: Callable[[], None], poll: Callable[[], None]
    ) -> Iterator[None]:
        """Hold the build lock of ``key``. While another process holds it, ``on_wait`` is
        called once and ``poll`` (which may raise to give up) every 0.1 s."""
        handle = _lock(self.locks / f"{key}.build", fcntl.LOCK_EX)
        if handle is None:
            on_wait()
            while handle is None:
                poll()
                time.sleep(LOCK_POLL_S)
                handle = _lock(self.locks / f"{key}.build", fcntl.LOCK_EX)
        try:
            yield
        finally:
            handle.close()

    # -- building (with the build lock held) ---------------------------------------------

    def new_build_folder(self, key: str) -> Path:
        """An empty folder to build ``key`` in."""
        self.builds.mkdir(parents=True, exist_ok=True)
        folder = self.builds / f"{key}-{secrets.token_hex(4)}"
        folder.mkdir()
        return folder

    def discard_leftovers(self, key: str) -> int:
        """Remove folders of earlier builds of ``key`` that were never published (a failed or
        killed build); returns how many."""
        published = self._target(key)
        count = 0
        with contextlib.suppress(OSError):
            for folder in self.builds.glob(f"{key}-*"):
                if folder.name != published:
                    shutil.rmtree(folder, ignore_errors=True)
                    count += 1
        return count

    def publish(self, key: str, folder: Path, record: dict[str, Any]) -> CachedEnvironment:
        """Write ``record`` into the built ``folder``, then make it the environment ``key``
        in one rename."""
        write_private_file(
            folder / RECORD_FILE, json.dumps(record, indent=2, sort_keys=True).encode()
        )
        link = self.root / f".{key}.{secrets.token_hex(4)}.link"
        link.symlink_to(Path("builds") / folder.name)
        os.replace(link, self.root / key)
        found = self.find(key)
        if found is None:
            raise OSError(f"the environment {key} vanished right after it was published")
        return found

    def _target(self, key: str) -> str | None:
        try:
            return Path(os.readlink(self.root / key)).name
        except OSError:
            return None

    # -- removing ------------------------------------------------------------------------

    def remove(self, key: str) -> bool:
        """Remove the environment ``key`` unless a run uses it; False when one does."""
        handle = _lock(self.locks / f"{key}.use", fcntl.LOCK_EX)
        if handle is None:
            return False
        try:
            target = self._target(key)
            with contextlib.suppress(FileNotFoundError):
                (self.root / key).unlink()  # unpublished first: no run can take it from now on
            if target is not None:
                shutil.rmtree(self.builds / target, ignore_errors=True)
        finally:
            handle.close()
        return True

    def _remove_leftovers(self, dry_run: bool) -> int:
        published = {self._target(entry.key) for entry in self.entries()}
        count = 0
        with contextlib.suppress(OSError):
            for folder in self.builds.iterdir():
                key = folder.name.split("-", 1)[0]
                if folder.name in published:
                    continue
                handle = _lock(self.locks / f"{key}.build", fcntl.LOCK_EX)
                if handle is None:
                    continue  # being built right now
                try:
                    if self._target(key) != folder.name:
                        count += 1
                        if not dry_run:
                            shutil.rmtree(folder, ignore_errors=True)
                finally:
                    handle.close()
            for link in self.root.glob(".*.link"):
                if not dry_run:
                    link.unlink(missing_ok=True)
        return count

    def prune(
        self,
        *,
        keep: int | None = None,
        unused_for_s: float | None = None,
        max_bytes: int | None = None,
        everything: bool = False,
        dry_run: bool = False,
    ) -> PruneResult:
        """Remove environments, least recently used first: all of them (``everything``),
        those unused for ``unused_for_s`` seconds, all but the ``keep`` most recently used,
        and then more until the rest take at most ``max_bytes``. Environments in use by a run
        stay. Leftovers of failed or killed builds always go.

        Example::

            cache.prune(keep=5)                      # the 5 most recently used stay
        """
        result = PruneResult(leftovers=self._remove_leftovers(dry_run))
        entries = self.entries()
        now = time.time()
        chosen: list[CachedEnvironment] = []
        for index, entry in enumerate(entries):
            newer = len(entries) - index - 1
            if (
                everything
                or (unused_for_s is not None and now - entry.last_used_at >= unused_for_s)
                or (keep is not None and newer >= keep)
            ):
                chosen.append(entry)
        if max_bytes is not None:
            left = sum(
                entry.size_bytes
                for entry in entries
                if entry not in chosen or entry.in_use  # what stays either way
            )
            for entry in entries:
                if left <= max_bytes:
                    break
                if entry not in chosen and not entry.in_use:
                    chosen.append(entry)
                    left -= entry.size_bytes
        for entry in sorted(chosen, key=lambda entry: entry.last_used_at):
            if entry.in_use:
                result.kept_in_use.append(entry)
            elif dry_run or self.remove(entry.key):
                result.removed.append(entry)
            else:
                result.kept_in_use.append(entry)
        return result
