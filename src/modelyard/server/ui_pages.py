"""The web UI of the server's workspaces, behind its accounts: ``/ui/...``.

A browser cannot send the bearer token the API wants, so ``/ui/login`` takes the token once
(a form posted to the server, as `modelyard login` asks for it) and keeps it in an HttpOnly,
SameSite=Strict cookie for ``/ui/``. Every other ``/ui/`` request is authenticated with it like
an API call: ``/ui/`` lists the caller's workspaces, and ``/ui/<workspace>/...`` serves the UI
of ``modelyard ui`` (``modelyard/ui/app.py``) for a workspace the caller is a member of (any
role may read); anyone else gets 404, the same answer as for a workspace that does not exist.

Example::

    app.add_middleware(UiPages)     # in create_app: /ui/ answers, everything else passes
"""

from __future__ import annotations

import html
import urllib.parse
from typing import Any

from fastapi import FastAPI
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard.backend.base import Backend
from modelyard.errors import AuthenticationError, ModelyardError, NotFoundError
from modelyard.names import check_name
from modelyard.server.context import ServerContext, role_in
from modelyard.ui.app import ui_app

PREFIX = "/ui/"
COOKIE = "modelyard-server-ui"
# A login form's body: a token is about 80 characters.
MAX_FORM_BYTES = 4096

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>modelyard</title><link rel="icon" href="data:,"></head>
<body style="font: 15px system-ui, sans-serif; margin: 40px; max-width: 720px">
<h1>modelyard</h1>{body}</body></html>"""
_LOGIN = """<p>{message}</p>
<form method="post" action="/ui/login">
<label>Token <input name="token" type="password" size="60" autofocus></label>
<button type="submit">Log in</button></form>
<p>Make one with <code>modelyard token create NAME</code>.</p>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(body=body), status_code=status)


def _login(message: str, status: int = 200) -> HTMLResponse:
    return _page(_LOGIN.format(message=html.escape(message)), status)


class UiPages:
    """ASGI middleware of the server's app: answers ``/ui/...``, passes anything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.workspace_apps: dict[str, tuple[Backend, FastAPI]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/ui" or path.startswith(PREFIX)):
            await self.app(scope, receive, send)
            return
        server: ServerContext = scope["app"].state.context
        rest = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
        if rest == "login":
            response = await self._login(scope, receive, server)
            await response(scope, receive, send)
            return
        try:
            principal = server.accounts.authenticate(self._cookie(scope) or "")
        except AuthenticationError:
            await _login("Log in with one of your tokens to see your workspaces.", 401)(
                scope, receive, send
            )
            return
        workspace, _, inner = rest.partition("/")
        if not workspace:
            user = principal.user
            entries = server.accounts.list_workspaces(None if principal.admin else user)
            items = "".join(
                f'<li><a href="{PREFIX}{urllib.parse.quote(e.name)}/">{html.escape(e.name)}</a>'
                "</li>"
                for e in entries
            )
            await _page(f"<h2>Workspaces</h2><ul id='workspaces'>{items}</ul>")(
                scope, receive, send
            )
            return
        try:
            check_name("workspace", workspace)
            if role_in(server, principal, workspace) is None:
                raise NotFoundError(workspace)
        except (NotFoundError, ValueError):
            await PlainTextResponse(
                f"404: no workspace {workspace!r} of yours on this server", status_code=404
            )(scope, receive, send)
            return
        # One UI app per open backend: a workspace deleted and made again has a new one.
        try:
            backend = server.hub.backend(workspace)
        except ModelyardError as error:  # being deleted (409), gone since (404)
            status = error.http_status if 400 <= error.http_status < 500 else 500
            await PlainTextResponse(str(error), status_code=status)(scope, receive, send)
            return
        found = self.workspace_apps.get(workspace)
        if found is None or found[0] is not backend:
            found = (backend, ui_app(backend, base=f"{PREFIX}{workspace}/"))
            self.workspace_apps[workspace] = found
        app = found[1]
        inner_scope = dict(scope)
        inner_scope["path"] = "/" + inner
        inner_scope["raw_path"] = ("/" + inner).encode()
        inner_scope["root_path"] = ""
        await app(inner_scope, receive, self._secured(send))

    @staticmethod
    def _cookie(scope: Scope) -> str | None:
        for key, value in scope.get("headers", []):
            if key == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    name, _, found = part.strip().partition("=")
                    if name == COOKIE:
                        return str(found)
        return None

    @staticmethod
    def _secured(send: Send) -> Send:
        """``send`` adding the headers the pages count on (as ``modelyard ui`` sends them)."""

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (
                        b"content-security-policy",
                        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' "
                        b"'unsafe-inline'; object-src 'none'; frame-ancestors 'none'; "
                        b"base-uri 'none'",
                    ),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        return wrapped

    async def _login(self, scope: Scope, receive: Receive, server: ServerContext) -> Response:
        if scope["method"] != "POST":
            return _login("Log in with one of your tokens.")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc != headers.get("host"):
            # Another site's page posting its own token would log this browser in as that
            # site's account.
            return _login("Log in from this server's own login page.", 403)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_FORM_BYTES:
                return _login("That is not a token.", 400)
            if not message.get("more_body"):
                break
        token = urllib.parse.parse_qs(body.decode("utf-8", errors="replace")).get("token", [""])
        try:
            server.accounts.authenticate(token[0])
        except AuthenticationError as error:
            return _login(str(error), 401)
        redirect = RedirectResponse(PREFIX, status_code=303)
        redirect.set_cookie(COOKIE, token[0], httponly=True, samesite="strict", path="/ui")
        return redirect
