"""What a run's token may do on a server: what the run's script may do through its channel,
and what its supervisor does for its own run.

A run handed to a cluster of the server is supervised on a node with a token of its own
(``AccountStore.create_run_token``). The script on that node runs as the same account as the
supervisor, so it can read the token: the server cannot trust the node to keep the script to
its run, and holds every call made with a run's token to the rules a supervisor holds its
script to (``runner/run_scope.RunScope``, built here for the token's run, with the
datastores its job was given), plus the supervisor's own calls on its own run
(:data:`SUPERVISOR_CALLS`: claiming it and its lease; its state, files, logs and metrics are
calls the script may make on it too).

The run's job file is what the scope is read from (its experiment, its datastores), so the
token may not rewrite its own run's job file.

Example::

    scopes = RunTokenScopes()
    scope = scopes.authorize(backend, principal, "set_run_tags", {"run_id": "other"})
    # PermissionDeniedError: a run's script may not use run 'other' ...
"""

from __future__ import annotations

import threading
from typing import Any

from modelyard.backend.local import LocalBackend
from modelyard.errors import ModelyardError, PermissionDeniedError
from modelyard.runner.data import datastores_given
from modelyard.runner.job import JOB_FILE, JobSpec
from modelyard.runner.run_scope import SCOPED_CALLS, RunScope
from modelyard.server.account_records import Principal

# What a run's supervisor does that its script may not, on its own run only.
SUPERVISOR_CALLS = frozenset({"claim_run", "renew_lease"})
# Every call a run's token may make, for some arguments (the authorization matrix's column).
RUN_TOKEN_CALLS = SCOPED_CALLS | SUPERVISOR_CALLS
# Scopes kept, by token: more than the runs a server has running at once. One is made again
# from the store when it was dropped (what it learned of the run's children is found again
# by walking their parents).
_KEPT_SCOPES = 1024
_JOB_WRITES = ("upload_run_file", "append_run_file")


class RunTokenScopes:
    """The scope of each run's token, made when the token is first used (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[tuple[str, str], RunScope] = {}

    def authorize(
        self, backend: LocalBackend, principal: Principal, call: str, arguments: dict[str, Any]
    ) -> RunScope:
        """The scope of ``principal``'s run, once it allows ``call`` with ``arguments``
        (PermissionDeniedError: it does not); its ``answer`` then learns from the result."""
        run_id = principal.run_id
        assert run_id is not None
        scope = self.scope(backend, principal)
        if call in SUPERVISOR_CALLS:
            if arguments.get("run_id") != run_id:
                raise PermissionDeniedError(
                    f"this token is run {run_id!r}'s: it may {call} for that run only, not "
                    f"for {arguments.get('run_id')!r}"
                )
            return scope
        own_job = arguments.get("run_id") == run_id and arguments.get("name") == JOB_FILE
        if call in _JOB_WRITES and own_job:
            raise PermissionDeniedError(
                f"a run's token may not rewrite its own run's {JOB_FILE}: it is its "
                "submitter's, and says what the run may reach"
            )
        scope.authorize(call, arguments)
        return scope

    def scope(self, backend: LocalBackend, principal: Principal) -> RunScope:
        run_id = principal.run_id
        assert run_id is not None
        key = (principal.token_id, backend.workspace_id)
        with self._lock:
            found = self._scopes.get(key)
        if found is not None:
            return found
        made = RunScope(
            backend,
            run_id,
            backend.get_run(run_id).experiment_name,
            None,  # the server reads no path on the run's behalf: files come as bytes
            _datastores_of(backend, run_id),
        )
        with self._lock:
            found = self._scopes.setdefault(key, made)
            while len(self._scopes) > _KEPT_SCOPES:
                del self._scopes[next(iter(self._scopes))]
        return found


def _datastores_of(backend: LocalBackend, run_id: str) -> set[str]:
    """The datastores run ``run_id``'s job was given (as data references, or read by its
    dataset inputs); none for a run without a job that can be read."""
    try:
        with backend.open_run_file(run_id, JOB_FILE) as job:
            spec = JobSpec.from_json(job.read().decode())
        return datastores_given(spec.data_references())
    except (ModelyardError, ValueError, KeyError, TypeError):
        # No job (a run made by other means than a submit), or one its supervisor cannot
        # read either: it was given no datastore.
        return set()


__all__ = ["RUN_TOKEN_CALLS", "SUPERVISOR_CALLS", "RunTokenScopes"]
