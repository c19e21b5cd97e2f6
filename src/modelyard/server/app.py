"""The modelyard server's FastAPI application: accounts, workspaces, and the contract calls.

``create_app(settings)`` opens the server's accounts database (migrating it, safely when
several server processes start at once), its workspaces, and serves:

- ``/api/v1/workspaces/{workspace}/calls/{call}``: the Backend contract (``calls.py``);
- ``/api/v1/whoami``, ``/api/v1/tokens``: the caller and their tokens;
- ``/api/v1/workspaces``, ``.../members``: workspaces (made, read, deleted) and who is in them;
- ``.../computes/{compute}/runs/{run_id}/access``: a run's token, for its cluster's admission;
- ``/api/v1/health`` (no token), ``/docs`` and ``/openapi.json``;
- ``/ui/``: the web UI of the caller's workspaces, after ``/ui/login`` (``ui_pages.py``).

Who may call what is ``authz.py``. Errors answer ``{"error": {"type", "code", "message",
"field"}}`` with the status of their type (``errors.py``): the client raises the same error.

Example::

    app = create_app(ServerSettings(data_dir=Path("/srv/modelyard")))
    uvicorn.run(app, host="127.0.0.1", port=8765)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

import modelyard
from modelyard.backend.channel_wire import error_to_wire
from modelyard.errors import (
    ModelyardError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from modelyard.server import authz
from modelyard.server.accounts import AccountStore
from modelyard.server.calls import add_call_routes
from modelyard.server.context import (
    AdminCaller,
    Caller,
    Context,
    OwnerCaller,
    ServerContext,
    UserCaller,
    not_a_member,
    require_cluster,
    require_role,
    require_user,
    role_in,
)
from modelyard.server.settings import ServerSettings
from modelyard.server.ui_pages import UiPages
from modelyard.server.workspaces import WorkspaceHub

logger = logging.getLogger("modelyard.server")

_STRICT = ConfigDict(extra="forbid")


class TokenRequest(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class WorkspaceRequest(BaseModel):
    model_config = _STRICT
    name: str


class MemberRequest(BaseModel):
    model_config = _STRICT
    role: str


def _error_response(error: BaseException, status: int | None = None) -> JSONResponse:
    body = error_to_wire(error)
    body["code"] = getattr(error, "code", "internal_error")
    code = status if status is not None else int(getattr(error, "http_status", 500))
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return JSONResponse({"error": body}, status_code=code, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelyardError)
    async def modelyard_error(_request: Request, error: ModelyardError) -> JSONResponse:
        if error.http_status >= 500:
            logger.error("%s: %s", type(error).__name__, error)
        return _error_response(error)

    @app.exception_handler(RequestValidationError)
    async def request_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": ("body",), "msg": "invalid"}
        field = ".".join(str(part) for part in first["loc"][1:] or first["loc"])
        return _error_response(ValidationError(field or "body", str(first["msg"])))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404:
            return _error_response(NotFoundError("no such route on this server"))
        wrapped = ModelyardError(str(error.detail))
        return _error_response(wrapped, status=error.status_code)

    @app.exception_handler(OverflowError)
    async def overflow(_request: Request, error: OverflowError) -> JSONResponse:
        # A number inside a record (a metric's step, say) beyond what the database holds.
        return _error_response(
            ValidationError("value", f"a number is out of range ({error}); integers are 64-bit")
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return _error_response(
            ModelyardError(
                f"the server failed unexpectedly ({type(error).__name__}); its log says more"
            )
        )


def _add_account_routes(app: FastAPI) -> None:
    @app.get("/api/v1/health", tags=["server"])
    def health() -> dict[str, str]:
        """Whether the server answers (no token needed)."""
        return {"status": "ok", "version": modelyard.__version__}

    @app.get("/api/v1/whoami", tags=["accounts"])
    def whoami(principal: Caller) -> dict[str, Any]:
        """The caller: a user (with whether they are an admin) or a run's token."""
        return asdict(principal)

    @app.post("/api/v1/tokens", tags=["accounts"], status_code=201)
    def create_token(
        request: TokenRequest, principal: UserCaller, server: Context
    ) -> dict[str, Any]:
        """A new token of the caller's; its secret is in this reply and nowhere else."""
        user = require_user(principal)
        expires = request.expires_in_days * 86400 if request.expires_in_days else None
        record, secret = server.accounts.create_token(user, request.name, expires_in_s=expires)
        return {**asdict(record), "token": secret}

    @app.get("/api/v1/tokens", tags=["accounts"])
    def list_tokens(principal: Caller, server: Context) -> list[dict[str, Any]]:
        """The caller's tokens (never their secrets)."""
        return [asdict(t) for t in server.accounts.list_tokens(require_user(principal))]

    @app.delete("/api/v1/tokens/{token_id}", tags=["accounts"], status_code=204)
    def revoke_token(token_id: str, principal: Caller, server: Context) -> None:
        """Revoke one of the caller's tokens (again: nothing happens)."""
        server.accounts.revoke_token(require_user(principal), token_id)

    @app.get("/api/v1/workspaces", tags=["workspaces"])
    def list_workspaces(principal: Caller, server: Context) -> list[dict[str, Any]]:
        """The workspaces the caller is a member of (every one, for an admin)."""
        user = require_user(principal)
        entries = server.accounts.list_workspaces(None if principal.admin else user)
        return [{**asdict(e), "role": role_in(server, principal, e.name)} for e in entries]

    @app.post("/api/v1/workspaces", tags=["workspaces"], status_code=201)
    def create_workspace(
        request: WorkspaceRequest, principal: AdminCaller, server: Context
    ) -> dict[str, Any]:
        """A new workspace, the caller its first owner (admins only)."""
        return asdict(server.hub.create(request.name, require_user(principal)))

    @app.get("/api/v1/workspaces/{workspace}", tags=["workspaces"])
    def get_workspace(workspace: str, principal: Caller, server: Context) -> dict[str, Any]:
        """One workspace, with the caller's role in it."""
        require_role(server, principal, workspace, authz.READER)
        entry = server.accounts.get_workspace(workspace)
        return {**asdict(entry), "role": role_in(server, principal, workspace)}

    @app.delete("/api/v1/workspaces/{workspace}", tags=["workspaces"], status_code=204)
    def delete_workspace(workspace: str, principal: OwnerCaller, server: Context) -> None:
        """Delete the workspace and everything the server keeps of it: its runs, metrics,
        files, models and members (owners only; 409 while runs have not ended)."""
        server.hub.delete(workspace)

    @app.get("/api/v1/workspaces/{workspace}/members", tags=["workspaces"])
    def list_members(workspace: str, principal: Caller, server: Context) -> list[dict[str, Any]]:
        """The workspace's members and their roles."""
        require_role(server, principal, workspace, authz.READER)
        return [asdict(m) for m in server.accounts.list_members(workspace)]

    @app.put("/api/v1/workspaces/{workspace}/members/{user}", tags=["workspaces"])
    def set_member(
        workspace: str, user: str, request: MemberRequest, principal: OwnerCaller, server: Context
    ) -> dict[str, str]:
        """Give ``user`` a role in the workspace (owners only)."""
        server.accounts.set_member(workspace, user, request.role)
        return {"workspace": workspace, "user": user, "role": request.role}

    @app.delete("/api/v1/workspaces/{workspace}/members/{user}", tags=["workspaces"])
    def remove_member(workspace: str, user: str, principal: OwnerCaller, server: Context) -> None:
        """Take ``user`` out of the workspace (owners only; not its last owner)."""
        server.accounts.remove_member(workspace, user)


def _add_cluster_routes(app: FastAPI) -> None:
    @app.get(
        "/api/v1/workspaces/{workspace}/computes/{compute}/runs/{run_id}/access",
        tags=["compute"],
    )
    def run_access(
        workspace: str, compute: str, run_id: str, principal: Caller, server: Context
    ) -> dict[str, str]:
        """The server's URL and the token of run ``run_id``, queued on cluster ``compute``,
        for the run's nodes: only that cluster's admission may ask (with its own token),
        and only for the runs of its compute target."""
        require_cluster(server, principal, workspace, compute)
        backend = server.hub.backend(workspace)
        if server.cluster_scope.compute_of(backend, run_id) != compute:
            raise PermissionDeniedError(
                f"run {run_id!r} is not one of compute target {compute!r}'s runs"
            )
        return server.hub.run_access(workspace, compute, run_id).model_dump()


def create_app(settings: ServerSettings) -> FastAPI:
    """The server's application; see the module docstring."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        accounts = AccountStore(settings.accounts_database_url)
        hub = WorkspaceHub(settings, accounts)
        app.state.context = ServerContext(settings, accounts, hub)
        hub.resume()
        hub.start_sweeping()
        try:
            yield
        finally:
            hub.close()

    app = FastAPI(
        title="modelyard",
        version=modelyard.__version__,
        description="A team's modelyard workspaces: experiments, runs, metrics, files, "
        "datastores, models. Every route but /api/v1/health wants a bearer token.",
        lifespan=lifespan,
        redoc_url=None,
    )
    _add_error_handlers(app)
    _add_account_routes(app)
    _add_cluster_routes(app)
    schemas = add_call_routes(app)
    # The web UI of the caller's workspaces, behind a login (ui_pages.py; not in the API's
    # OpenAPI document).
    app.add_middleware(UiPages)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


__all__ = ["create_app", "not_a_member"]
