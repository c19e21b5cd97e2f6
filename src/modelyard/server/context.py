"""What every route of a server reaches: its settings, accounts and workspaces, and the caller.

The caller is found from the request's ``Authorization: Bearer <token>`` header; every route
but the public ones (``authz.ROUTE_RULES``) depends on :func:`caller`, so a request without
an accepted token gets 401 before anything else is read.

Example::

    @app.get("/api/v1/whoami")
    def whoami(principal: Principal = Depends(caller)) -> dict: ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from modelyard.backend.local import LocalBackend
from modelyard.backend.records import TERMINAL_STATES
from modelyard.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from modelyard.runner.run_scope import RunScope
from modelyard.server import authz
from modelyard.server.accounts import AccountStore, Principal
from modelyard.server.cluster_tokens import ClusterTokenScope
from modelyard.server.run_tokens import RunTokenScopes
from modelyard.server.settings import ServerSettings
from modelyard.server.uploads import PartedUploads
from modelyard.server.workspaces import WorkspaceHub

# Declared once, so the OpenAPI document shows the scheme and /docs offers to fill it in.
bearer = HTTPBearer(auto_error=False, description="a token of `modelyard token create`")


@dataclass
class ServerContext:
    settings: ServerSettings
    accounts: AccountStore
    hub: WorkspaceHub
    run_scopes: RunTokenScopes = field(default_factory=RunTokenScopes)
    cluster_scope: ClusterTokenScope = field(default_factory=ClusterTokenScope)

    @property
    def uploads(self) -> PartedUploads:
        return PartedUploads(self.settings.data_dir)


def context(request: Request) -> ServerContext:
    server: ServerContext = request.app.state.context
    return server


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Who makes the request (AuthenticationError: no token, or one not accepted)."""
    if credentials is None:
        raise AuthenticationError(
            "this server wants a token: log in with `modelyard login SERVER`, or set "
            "MODELYARD_TOKEN"
        )
    return context(request).accounts.authenticate(credentials.credentials)


def not_a_member(workspace: str) -> NotFoundError:
    # The same words whether the workspace is missing or hidden from the caller.
    return NotFoundError(
        f"workspace {workspace!r} does not exist on this server, or you are not one of its "
        "members; ask its owner to add you"
    )


def role_in(server: ServerContext, principal: Principal, workspace: str) -> str | None:
    """The caller's role in ``workspace``: owner for admins, None for a run's or a
    cluster's token."""
    if principal.admin:
        server.accounts.get_workspace(workspace)  # NotFoundError: an admin may know
        return authz.OWNER
    if principal.user is None:
        return None
    return server.accounts.role_of(principal.user, workspace)


def authorize_call(
    server: ServerContext, principal: Principal, workspace: str, call: str
) -> LocalBackend:
    """The backend to make contract ``call`` on, once the caller may make it there. Decided
    before the call's arguments are read, so a caller who may not make it learns nothing
    from how they are checked; a run's token is then held to its run by
    :func:`authorize_arguments`."""
    required = authz.required_role(call)
    if principal.compute is not None:
        if principal.workspace != workspace:
            raise not_a_member(workspace)
        if call not in authz.CLUSTER_TOKEN_CALLS:
            raise PermissionDeniedError(
                f"a cluster's token may not call {call}: it admits the runs of compute "
                f"target {principal.compute!r} only"
            )
        return server.hub.backend(workspace)
    if principal.run_id is not None:
        if principal.workspace != workspace:
            raise not_a_member(workspace)
        if call not in authz.RUN_TOKEN_CALLS:
            raise PermissionDeniedError(
                f"a run's token may not call {call}: it acts for its run only"
            )
        backend = server.hub.backend(workspace)
        # A run's token ends with its run, whoever recorded the end (its supervisor, a
        # cluster's admission, a cancel): nothing is left for it to report.
        status = backend.get_run(principal.run_id).status
        if status in TERMINAL_STATES:
            server.hub.run_ended(workspace, principal.run_id)  # revoked: 401 from now on
            raise PermissionDeniedError(
                f"run {principal.run_id!r} has ended ({status}): its token acts no more"
            )
        return backend
    if principal.admin:
        return server.hub.backend(workspace)
    role = role_in(server, principal, workspace)
    if role is None:
        raise not_a_member(workspace)
    if not authz.allows(role, required):
        raise PermissionDeniedError(
            f"{call} needs the {required} role in workspace {workspace!r}, and you are a "
            f"{role}; ask an owner of the workspace"
        )
    return server.hub.backend(workspace)


def authorize_arguments(
    server: ServerContext,
    principal: Principal,
    backend: LocalBackend,
    call: str,
    arguments: dict[str, Any],
) -> RunScope | None:
    """Hold a run's token to what its run may reach (``run_tokens.py``): its scope, whose
    ``answer`` the call's result then goes through; None for a member (nothing to check).
    A cluster's token is held to its compute target's runs (``cluster_tokens.py``)."""
    if principal.compute is not None:
        server.cluster_scope.authorize(backend, principal, call, arguments)
        return None
    if principal.run_id is None:
        return None
    return server.run_scopes.authorize(backend, principal, call, arguments)


def require_role(server: ServerContext, principal: Principal, workspace: str, role: str) -> None:
    """Refuse a workspace route to a caller below ``role`` there (404 to non-members)."""
    require_user(principal)
    have = role_in(server, principal, workspace)
    if have is None:
        raise not_a_member(workspace)
    if not authz.allows(have, role):
        raise PermissionDeniedError(
            f"this needs the {role} role in workspace {workspace!r}, and you are a {have}; "
            "ask an owner of the workspace"
        )


def require_cluster(
    server: ServerContext, principal: Principal, workspace: str, compute: str
) -> None:
    """Refuse a cluster route to any caller but the token of compute target ``compute`` of
    ``workspace`` (404 to non-members, as everywhere)."""
    if principal.compute is None:
        if principal.user is not None and role_in(server, principal, workspace) is None:
            raise not_a_member(workspace)
        raise PermissionDeniedError(
            f"only the admission of compute target {compute!r} asks for its runs' access, "
            "with the token the server gave it"
        )
    if principal.workspace != workspace:
        raise not_a_member(workspace)
    if principal.compute != compute:
        raise PermissionDeniedError(
            f"this token admits the runs of compute target {principal.compute!r}, not {compute!r}'s"
        )


def require_user(principal: Principal) -> str:
    """The caller's user name; a run's token is refused (it acts for its run only), and a
    cluster's (it admits its compute target's runs only)."""
    if principal.compute is not None:
        raise PermissionDeniedError(
            f"a cluster's token admits the runs of compute target {principal.compute!r} only"
        )
    if principal.user is None:
        raise PermissionDeniedError("a run's token acts for its run only")
    return principal.user


def require_admin(principal: Principal) -> None:
    if not principal.admin:
        raise PermissionDeniedError(
            "only the server's admins may do this (`modelyard admin create-user --admin`)"
        )


Caller = Annotated[Principal, Depends(caller)]
Context = Annotated[ServerContext, Depends(context)]


def admin_caller(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    """The caller, once known to be an admin (checked before a request's body is read)."""
    require_admin(principal)
    return principal


def owner_caller(
    request: Request, workspace: str, principal: Annotated[Principal, Depends(caller)]
) -> Principal:
    """The caller, once known to be an owner of ``workspace`` (before the body is read)."""
    require_role(context(request), principal, workspace, authz.OWNER)
    return principal


def user_caller(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    """The caller, once known to be a user rather than a run's token."""
    require_user(principal)
    return principal


UserCaller = Annotated[Principal, Depends(user_caller)]
AdminCaller = Annotated[Principal, Depends(admin_caller)]
OwnerCaller = Annotated[Principal, Depends(owner_caller)]
