"""Telling a process from a later one that got its number: process ids are reused.

A number recorded in ``processes.json`` (a supervisor, the process groups of a run) may, once
that process is gone, belong to an unrelated process. Before the agent decides a supervisor is
alive, or signals a recorded process group, it compares the start time the kernel keeps for
the process (``/proc/<pid>/stat``, field 22: clock ticks since boot) with the one recorded.

A process group outlives its leader while members remain, and Linux hands out no pid that a
live group still uses as its id; so a group whose leader's pid is free is still the run's (or
empty), and only a leader pid held by a process that started at another time marks the group
as reused. Where ``/proc`` is missing (not Linux) no start time is known and the numbers are
trusted as before.

Example::

    started = start_time(os.getpid())
    is_running(os.getpid(), started)        # True
    is_reused(os.getpid(), started - 1)     # True: that number belongs to another process now
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses,
# hence the split after its last ")"): state is field 3, starttime field 22.
_START_FIELD = 22 - 3


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None when it does not exist
    or the system does not tell."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    try:
        return int(data[data.rindex(b")") + 2 :].split()[_START_FIELD])
    except (ValueError, IndexError):
        return None


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_running(pid: int, recorded_start: int | None) -> bool:
    """Whether the process recorded as (``pid``, ``recorded_start``) still runs: a process of
    that number exists and, when both start times are known, started when it did."""
    if not _exists(pid):
        return False
    if recorded_start is None:
        return True
    now = start_time(pid)
    return now is None or now == recorded_start


def is_reused(pid: int, recorded_start: int | None) -> bool:
    """Whether ``pid`` now belongs to another process than the one recorded (only knowable when
    a start time was recorded)."""
    if recorded_start is None:
        return False
    now = start_time(pid)
    return now is not None and now != recorded_start


def group_alive(group: int) -> bool:
    """Whether a process of process group ``group`` still runs. A zombie left for an init
    that does not reap (some containers' first process) is not counted, so ``/proc`` is read
    where there is one.

    Example::

        group_alive(os.getpgid(0))      # True: this process is in it
    """
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    return any(group_members(group))  # pids are never 0


def group_members(group: int) -> Iterator[int]:
    """The pids of the live (not zombie) processes of process group ``group``, from
    ``/proc`` (none where there is no ``/proc``).

    Example::

        os.getpid() in group_members(os.getpgid(0))     # True
    """
    if not os.path.isdir("/proc/self"):
        return
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
                fields = stat_file.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != b"Z":
            yield int(entry.name)
