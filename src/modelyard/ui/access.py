"""Who may read the UI: the holder of its token, through the host it was bound to.

Every account of the machine can connect to 127.0.0.1, and the workspace is its owner's, so
the UI asks for a secret, as Jupyter does: ``modelyard ui`` makes a random token and prints
its URL with ``?token=...``. The first request with the token gets it back as an HttpOnly,
SameSite=Strict cookie and is redirected to the same URL without it (so the token leaves the
address bar and the history); later requests carry the cookie. Without it: 401.

The ``Host`` header must name the bound host (or, bound to a loopback address, ``localhost``
or ``127.0.0.1``): a page of another site whose name an attacker re-points at 127.0.0.1 (DNS
rebinding) sends its own name there and is refused with 403.

Example::

    app.add_middleware(TokenGate, token=secrets.token_urlsafe(32), host="127.0.0.1", port=8766)
"""

from __future__ import annotations

import hmac
import urllib.parse

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from modelyard.hosts import is_loopback

TOKEN_PARAMETER = "token"


def cookie_name(port: int) -> str:
    """The cookie of the UI on ``port``: cookies ignore ports, so two UIs on one machine
    (two workspaces) keep one each."""
    return f"modelyard-ui-{port}"


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The ``Host`` headers accepted for a UI bound to ``host``:``port``; None (any) when
    bound to every address (0.0.0.0 or ::), where the token alone guards it."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {host}
    if is_loopback(host):
        names |= {"localhost", "127.0.0.1", "[::1]"}
    return {f"{name}:{port}" for name in names} | (names if port == 80 else set())


class TokenGate(BaseHTTPMiddleware):
    """Checks the Host header and the token of every request (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, token: str, host: str, port: int) -> None:
        super().__init__(app)
        self.token = token
        self.hosts = allowed_hosts(host, port)
        self.cookie = cookie_name(port)

    def _matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        host = request.headers.get("host", "")
        if self.hosts is not None and host.lower() not in self.hosts:
            return PlainTextResponse(
                "This modelyard UI answers only at the address it was started on "
                f"({', '.join(sorted(self.hosts))}).",
                status_code=403,
            )
        given = request.query_params.get(TOKEN_PARAMETER)
        if given is not None and self._matches(given) and request.method == "GET":
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAMETER]
            # One leading slash: "//other.example/" would send the browser to another site.
            path = "/" + request.url.path.lstrip("/")
            target = path + (f"?{urllib.parse.urlencode(rest)}" if rest else "")
            redirect = RedirectResponse(target, status_code=303)
            redirect.set_cookie(self.cookie, self.token, httponly=True, samesite="strict", path="/")
            return redirect
        if not self._matches(request.cookies.get(self.cookie)):
            return PlainTextResponse(
                "401: open the URL with ?token=... that `modelyard ui` printed when it started.",
                status_code=401,
            )
        response = await call_next(request)
        # The pages build their DOM from data with textContent; the policy forbids inline
        # scripts and foreign origins besides, so an injected tag could run nothing.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response
