"""Who may make which call on a server: one rule per route, and the roles' order.

A workspace's members have one role each: ``reader`` < ``contributor`` < ``owner``; a role
may do all that the roles before it may. Server admins may do everything, on every
workspace; the calls that run runs (claiming them, their leases) are theirs alone, since
the server's own agents make them on its machine and a remote node makes them as an admin
account. A run's token (``AccountStore.create_run_token``) is its supervisor's: it may make
the calls of :data:`RUN_TOKEN_CALLS`, each held to what the run's script may do and its
supervisor needs (``run_tokens.py``), nothing else. A cluster's token
(``AccountStore.create_cluster_token``) is its admission's: it may make the calls of
:data:`CLUSTER_TOKEN_CALLS` on its compute target's runs (``cluster_tokens.py``), and fetch
their access (the :data:`CLUSTER` route), nothing else.

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

from modelyard.server.cluster_tokens import CLUSTER_TOKEN_CALLS
from modelyard.server.run_tokens import RUN_TOKEN_CALLS

READER, CONTRIBUTOR, OWNER = "reader", "contributor", "owner"
ROLES = (READER, CONTRIBUTOR, OWNER)
# A rule no member role meets: server admins only.
ADMIN = "admin"
# Rules of the routes that are not contract calls: anyone (no token), any accepted token,
# any user's token (not a run's).
PUBLIC, AUTHENTICATED, USER = "public", "authenticated", "user"
# A route for the token of a compute target of that workspace only (its admission).
CLUSTER = "cluster"

_READS = (
    "get_workspace",
    "list_experiments",
    "get_run",
    "get_run_details",
    "get_run_status_history",
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
    "get_compute_node_history",
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
    ("GET", "/api/v1/workspaces/{workspace}/computes/{compute}/runs/{run_id}/access"): CLUSTER,
}


def required_role(call: str) -> str:
    """The least role that may make contract call ``call`` (KeyError: a call with no rule,
    which the server refuses to serve)."""
    return CALL_RULES[call]


def allows(role: str | None, required: str) -> bool:
    """Whether a member with ``role`` (None: not a member) meets ``required``."""
    if role is None or required == ADMIN:
        return False
    return ROLES.index(role) >= ROLES.index(required)


__all__ = [
    "ADMIN",
    "AUTHENTICATED",
    "CALL_RULES",
    "CLUSTER",
    "CLUSTER_TOKEN_CALLS",
    "CONTRIBUTOR",
    "OWNER",
    "PUBLIC",
    "READER",
    "ROLES",
    "ROUTE_RULES",
    "RUN_TOKEN_CALLS",
    "USER",
    "allows",
    "required_role",
]
