"""The scoring app: ``POST /score`` calls the entry script's ``run()``; ``init()`` runs once
per worker before the first request.

Routes (as v1's scoring containers had them):

- ``GET /`` the health route: ``Healthy`` once ``init()`` has returned;
- ``POST /score`` the body (JSON or text) is passed to ``run(raw_data)`` as a string; the
  result is answered as JSON. ``run()`` raising answers 500 with its message, and the service
  stays up. A body over ``max_request_bytes`` answers 413; a body sent as
  ``application/json`` that is not JSON answers 400. With keys, a request without
  ``Authorization: Bearer <key>`` answers 401;
- ``GET /swagger.json`` an OpenAPI document of the routes.

A ``run`` decorated with the ``inference-schema`` package's ``@input_schema`` (as v1's
scripts that generate their swagger are) is called as v1's server calls it: with the JSON
body's fields as its keyword arguments, which the decorators convert (to NumPy arrays, pandas
frames); its schemas appear in ``swagger.json``. The package is not needed otherwise.

A ``run`` decorated with ``@rawhttp`` (``modelyard.contrib.services.aml_request``, v1's
raw-HTTP style) is called with the request itself, an ``AMLRequest``, for GET as well as POST
(:mod:`modelyard.serving.raw_http`); an ``AMLResponse`` it returns is answered as it is.

Example::

    uvicorn.run("modelyard.serving.app:create_app", factory=True, port=6789)
"""

from __future__ import annotations

import contextlib
import hmac
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from modelyard.serving.entry_script import load_entry_script
from modelyard.serving.raw_http import AMLRequest, is_rawhttp
from modelyard.serving.settings import SETTINGS_ENV, ServiceSettings, key_digest


def schemas_of(run: Callable[..., Any]) -> dict[str, Any] | None:
    """The input and output schemas of an ``inference-schema`` decorated ``run``; None when it
    is not decorated (or the script does not use the package)."""
    if "inference_schema" not in sys.modules:
        return None  # not imported by the script: its run() takes the raw body
    schema_util = importlib.import_module("inference_schema.schema_util")
    if not schema_util.is_schema_decorated(run):
        return None
    return {
        "input": schema_util.get_input_schema(run),
        "output": schema_util.get_output_schema(run),
    }


def _read_keys(keys_file: str | None) -> list[bytes] | None:
    if keys_file is None:
        return None
    keys = json.loads(Path(keys_file).read_text())
    return [key_digest(key) for key in (keys["primary"], keys["secondary"])]


def _authorized(request: Request, digests: list[bytes]) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    offered = key_digest(given.strip())
    # Both keys are compared, whatever the first gives: the time does not tell which matched.
    matches = [hmac.compare_digest(offered, digest) for digest in digests]
    return any(matches)


def _swagger(auth: bool, schemas: dict[str, Any] | None) -> dict[str, Any]:
    security: list[dict[str, list[str]]] = [{"Bearer": []}] if auth else []
    document: dict[str, Any] = {
        "swagger": "2.0",
        "info": {"title": "modelyard scoring service", "version": "1.0"},
        "schemes": ["http"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "Bearer": {"type": "apiKey", "name": "Authorization", "in": "header"}
        },
        "paths": {
            "/": {"get": {"operationId": "ServiceHealthCheck", "responses": {"200": {}}}},
            "/score": {
                "post": {
                    "operationId": "RunMLService",
                    "security": security,
                    "responses": {"200": {}, "400": {}, "401": {}, "413": {}, "500": {}},
                }
            },
        },
    }
    if schemas is not None:
        document["definitions"] = {
            "ServiceInput": schemas["input"],
            "ServiceOutput": schemas["output"],
        }
    return document


@dataclass(frozen=True)
class Scoring:
    """An entry script imported and its ``init()`` returned: what answers requests."""

    run: Callable[..., Any]
    schemas: dict[str, Any] | None
    raw: bool  # a @rawhttp run, handed the request


def load_scoring(settings: ServiceSettings) -> Scoring:
    """Import the entry script and call its ``init()`` (exceptions pass through)."""
    module = load_entry_script(settings.entry_script, settings.source_directory)
    module.init()
    return Scoring(module.run, schemas_of(module.run), is_rawhttp(module.run))


def build_app(
    settings: ServiceSettings,
    scoring: Scoring | None = None,
    keys: Callable[[], list[bytes]] | None = None,
) -> Starlette:
    """The app for ``settings``. Without ``scoring``, the entry script is imported and
    ``init()`` run at start-up (a traceback there is written to ``settings.failed_file`` and
    ends the worker). ``keys`` gives the accepted keys' digests (``key_digest``) at each
    request (default: those of ``settings.keys_file``, or no key asked for without one)."""
    state: dict[str, Any] = {}
    if scoring is not None:
        state["run"], state["schemas"], state["raw"] = scoring.run, scoring.schemas, scoring.raw
    accepted = keys or (lambda: _read_keys(settings.keys_file) or [])
    auth = keys is not None or settings.keys_file is not None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if scoring is not None:
            yield
            return
        try:
            loaded = load_scoring(settings)
        except BaseException:
            text = traceback.format_exc()
            print(text, file=sys.stderr, flush=True)
            if settings.failed_file:
                with contextlib.suppress(OSError):
                    Path(settings.failed_file).write_text(f"init() raised:\n{text}")
            raise
        state["run"], state["schemas"], state["raw"] = loaded.run, loaded.schemas, loaded.raw
        yield

    async def health(request: Request) -> Response:
        return PlainTextResponse("Healthy")

    async def swagger(request: Request) -> Response:
        return JSONResponse(_swagger(auth, state["schemas"]))

    async def score(request: Request) -> Response:
        if request.method != "POST" and not state["raw"]:
            return _get_not_allowed(request.method)
        # Asked per request (a small file, or what a Serve replica was last given): a
        # regenerated key counts from the next request on.
        if auth and not _authorized(request, accepted() or []):
            return JSONResponse(
                {"error": "missing or wrong key: send Authorization: Bearer <key>"},
                status_code=401,
            )
        limit = settings.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(settings)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _too_large(settings)
        if state["raw"]:
            return await _score_raw(state["run"], request, bytes(body))
        text = body.decode("utf-8", errors="replace")
        decorated = state["schemas"] is not None
        arguments: dict[str, Any] = {}
        if decorated or request.headers.get("content-type", "").startswith("application/json"):
            try:
                parsed = json.loads(text)
            except ValueError as error:
                return JSONResponse(
                    {"error": f"the request body is not JSON ({error}); send JSON"},
                    status_code=400,
                )
            if decorated and not isinstance(parsed, dict):
                return JSONResponse(
                    {"error": "send a JSON object of run()'s arguments, as swagger.json shows"},
                    status_code=400,
                )
            arguments = parsed if decorated else {}
        run: Callable[..., Any] = state["run"]
        try:
            if decorated:
                result = await run_in_threadpool(lambda: run(**arguments))
            else:
                result = await run_in_threadpool(run, text)
        except Exception as error:
            return run_raised(error)
        try:
            return JSONResponse(result)
        except (TypeError, ValueError) as error:
            return JSONResponse(
                {"error": f"run() returned what JSON cannot hold: {error}"}, status_code=500
            )

    return Starlette(
        routes=[
            Route("/", health, methods=["GET"]),
            Route("/swagger.json", swagger, methods=["GET"]),
            # GET reaches run() only when it is @rawhttp (as in v1).
            Route("/score", score, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
    )


def run_raised(error: Exception) -> Response:
    """The answer when the entry script's run() raised: its traceback goes to the service's
    log (get_logs), its message to the caller, and the service stays up."""
    traceback.print_exc()
    return JSONResponse({"error": f"run() raised {type(error).__name__}: {error}"}, status_code=500)


def _too_large(settings: ServiceSettings) -> Response:
    return JSONResponse(
        {"error": f"the request body is over {settings.max_request_bytes} bytes; send less"},
        status_code=413,
    )


def _get_not_allowed(method: str) -> Response:
    return JSONResponse(
        {"error": f"{method} /score needs a @rawhttp run(request); POST the input to score it"},
        status_code=405,
        headers={"Allow": "POST"},
    )


async def _score_raw(run: Callable[..., Any], request: Request, body: bytes) -> Response:
    """Call a ``@rawhttp`` run with the request; an AMLResponse (any Starlette response) is
    answered as it is, anything else as JSON."""
    client = request.client
    raw = AMLRequest(
        request.method, str(request.url), request.headers, body, client.host if client else None
    )
    try:
        result = await run_in_threadpool(run, raw)
    except Exception as error:
        return run_raised(error)
    finally:
        raw.close()
    if isinstance(result, Response):
        return result
    try:
        return JSONResponse(result)
    except (TypeError, ValueError) as error:
        return JSONResponse(
            {"error": f"run() returned what JSON cannot hold: {error}"}, status_code=500
        )


def create_app() -> Starlette:
    """The app of the settings file named by ``$MODELYARD_SERVING_SETTINGS`` (uvicorn's
    factory, called once per worker)."""
    return build_app(ServiceSettings.read(Path(os.environ[SETTINGS_ENV])))
