"""A second local account for the tests about what one account can do to another's files.

As root, the ``mallory`` fixture (tests/conftest.py) makes a throwaway account with
``useradd``; :meth:`Account.do` runs a function as that account in a forked child. Without
root the tests that need it are skipped, saying why.

Example::

    def test_private(mallory: Account, workspace: Workspace) -> None:
        mallory.do(lambda: open(workspace.folder / "modelyard.db").read())   # fails
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int

    def do(self, work: Callable[[], None]) -> None:
        """Run ``work`` in a child process that is this account (not root any more); an
        exception in it (an assertion, say) fails the caller."""
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setgroups([])
                os.setgid(self.gid)
                os.setuid(self.uid)
                work()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def make_account() -> Iterator[Account]:
    """The body of the ``mallory`` fixture: a new account, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to create a second local account with useradd")
    if shutil.which("useradd") is None:
        pytest.skip("useradd is not installed")
    name = f"mytest{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        entry = pwd.getpwnam(name)
        yield Account(name, entry.pw_uid, entry.pw_gid)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
