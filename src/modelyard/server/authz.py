"""Who may make which call on a server: one rule per route, and the roles' order.

A workspace's members have one role each: ``reader`` < ``contributor`` < ``owner``; a role
may do all that the roles before it may. Server admins may do everything, on every
workspace; the calls that run runs (claiming them, their leases) are theirs alone, since
the server's own agents make them on its machine and a remote node makes them as an admin
account. A run's token (``AccountStore.create_run_token``) is its supervisor's: it reaches
its run and what running it reads (:data:`RUN_TOKEN_CALLS`), nothing else.

The matrix below is the whole of the rules: ``docs/server.md`` shows it, and
tests/server/test_http_authz.py calls every route as every kind of caller and fails when
one can do more, or a route has no rule.

Objects of a workspace the caller is not a member of answer 404, as if the workspace did
not exist: a name is not confirmed to someone who may not see it.

Example::

    required_role("log_metrics")                   # 'contributor'
    allows("reader", "contributor")                # False
"""

from __future__ import annotations

from typing import Any

from modelyard.errors import PermissionDeniedError
from modelyard.runner.run_scope import RUN_CALLS

READER, CONTRIBUTOR, OWNER = "reader", "contributor", "owner"
ROLES = (READER, CONTRIBUTOR, OWNER)
# A rule no member role meets: server admins only.
ADMIN = "admin"
# Rules of the routes that are not contract calls: anyone (no token), any accepted token,
# any user's token (not a run's).
PUBLIC, AUTHENTICATED, USER = "public", "authenticated", "user"

_READS = (
    "get_workspace",
    "list_experiments",
    "get_run",
    "get_run_details",
    "list_runs",
    "list_metrics",
    "get_metric_series",
    "read_run_file",
    "list_run_files",
    "open_run_file",
    "get_datastore",
    "list_datastores",
    "list_datastore_files",
    "open_datastore_file",
    "get_compute",
    "find_compute",
    "list_computes",
    "get_model",
    "list_models",
    "list_model_files",
    "open_model_file",
    "get_environment",
    "list_environments",
    "get_dataset",
    "get_dataset_by_id",
    "find_dataset",
    "list_datasets",
    "missing_snapshot_blobs",
    "get_snapshot_manifest",
    "open_snapshot_blob",
)
_WRITES = (
    "ensure_experiment",
    "create_run",
    "update_run_status",
    "set_run_tags",
    "add_run_properties",
    "log_metrics",
    "upload_run_file",
    "append_run_file",
    "upload_datastore_file",
    "upload_model_file",
    "stage_model_from_run",
    "create_model",
    "update_model_tags",
    "register_environment",
    "create_dataset",
    "upload_snapshot_blob",
    "put_snapshot_manifest",
)
# What changes the workspace for everyone: where its data lives and its compute, and
# deleting what others may depend on.
_OWNS = (
    "register_datastore",
    "set_default_datastore",
    "create_compute",
    "update_compute",
    "delete_compute",
    "delete_model",
)
_RUNS_RUNS = ("claim_run", "renew_lease", "expire_leases", "list_runs_in_states")

CALL_RULES: dict[str, str] = {
    **dict.fromkeys(_READS, READER),
    **dict.fromkeys(_WRITES, CONTRIBUTOR),
    **dict.fromkeys(_OWNS, OWNER),
    **dict.fromkeys(_RUNS_RUNS, ADMIN),
}

# The routes beside the contract calls, by method and path. A workspace route's rule is a
# role in that workspace.
ROUTE_RULES: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/api/v1/whoami"): AUTHENTICATED,
    ("POST", "/api/v1/tokens"): USER,
    ("GET", "/api/v1/tokens"): USER,
    ("DELETE", "/api/v1/tokens/{token_id}"): USER,
    ("GET", "/api/v1/workspaces"): USER,
    ("POST", "/api/v1/workspaces"): ADMIN,
    ("GET", "/api/v1/workspaces/{workspace}"): READER,
    ("DELETE", "/api/v1/workspaces/{workspace}"): OWNER,
    ("GET", "/api/v1/workspaces/{workspace}/members"): READER,
    ("PUT", "/api/v1/workspaces/{workspace}/members/{user}"): OWNER,
    ("DELETE", "/api/v1/workspaces/{workspace}/members/{user}"): OWNER,
}

# A run's token: calls on its own run (``run_id``): those a script may make on it, and the
# supervisor's own (its state, its lease); and the reads running it needs.
_RUN_TOKEN_OWN_RUN = RUN_CALLS | {"update_run_status", "claim_run", "renew_lease"}
_RUN_TOKEN_READS = (
    "get_workspace",
    "get_snapshot_manifest",
    "open_snapshot_blob",
    "get_environment",
    "get_dataset",
    "get_dataset_by_id",
    "find_dataset",
)
RUN_TOKEN_CALLS = frozenset({*_RUN_TOKEN_OWN_RUN, *_RUN_TOKEN_READS})


def required_role(call: str) -> str:
    """The least role that may make contract call ``call`` (KeyError: a call with no rule,
    which the server refuses to serve)."""
    return CALL_RULES[call]


def allows(role: str | None, required: str) -> bool:
    """Whether a member with ``role`` (None: not a member) meets ``required``."""
    if role is None or required == ADMIN:
        return False
    return ROLES.index(role) >= ROLES.index(required)


def check_run_token(run_id: str, call: str, arguments: dict[str, Any] | None) -> None:
    """Refuse what the token of run ``run_id`` may not do (PermissionDeniedError); without
    ``arguments``, only whether it may make ``call`` at all."""
    if call not in RUN_TOKEN_CALLS:
        raise PermissionDeniedError(f"a run's token may not call {call}")
    if arguments is None:
        return
    if call in _RUN_TOKEN_OWN_RUN and arguments.get("run_id") != run_id:
        raise PermissionDeniedError(
            f"this token is run {run_id!r}'s, not run {arguments.get('run_id')!r}'s"
        )


__all__ = [
    "ADMIN",
    "AUTHENTICATED",
    "CALL_RULES",
    "CONTRIBUTOR",
    "OWNER",
    "PUBLIC",
    "READER",
    "ROLES",
    "ROUTE_RULES",
    "RUN_TOKEN_CALLS",
    "USER",
    "allows",
    "check_run_token",
    "required_role",
]
