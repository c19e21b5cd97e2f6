"""A process forked after it used an object store (the agent forks each run's supervisor)
goes on using the store: s3fs runs its requests on an event loop in a thread of the process
that made the filesystem, which a forked child does not have."""

from __future__ import annotations

import os
from typing import Any

from modelyard.store.files import FileStore


def test_a_forked_child_uses_the_object_store_its_parent_opened(
    s3_store: tuple[str, dict[str, Any]],
) -> None:
    url, options = s3_store
    store = FileStore(url, options)
    store.write_bytes("before.txt", b"written by the parent")
    assert store.read_bytes("before.txt") == b"written by the parent"  # the loop is running

    pid = os.fork()
    if pid == 0:  # the child: any failure is its exit code
        code = 1
        try:
            store.append("log.txt", 0, b"from the child")
            code = 0 if store.read_bytes("before.txt") == b"written by the parent" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert store.read_bytes("log.txt") == b"from the child"  # and the parent still works
