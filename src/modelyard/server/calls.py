"""One route per call of the Backend contract, made from ``backend/contract_calls.py``.

==================  =========================================================================
call shape          route
==================  =========================================================================
JSON call           ``POST /api/v1/workspaces/{workspace}/calls/{call}``, the arguments as a
                    JSON object; the reply ``{"result": ...}``
upload              ``POST`` to the same path, the other arguments in the query string, the
                    file as the body (``application/octet-stream``); ``Content-Length`` and,
                    when the client sends it, ``X-Modelyard-SHA256`` are checked before the
                    file is stored, so a broken or altered upload stores nothing
upload in parts     the same ``POST``, once per part of the file, with
                    ``X-Modelyard-Upload-Id`` and ``Content-Range``: each part is checked
                    and kept, and the last one makes the call (``server/uploads.py``)
download            ``GET`` of the same path, the arguments in the query string; the file as
                    the body, from a byte on with ``Range: bytes=N-`` (206)
==================  =========================================================================

Each call is authorized (``context.authorize_call``) before its arguments reach the
backend, and an upload before its body is read. Bodies of JSON calls are read up to the
server's ``max_body_bytes`` (413 beyond); uploads stream to a private temporary file of the
server's data folder, up to ``max_upload_bytes``.

Example::

    curl -H "Authorization: Bearer $TOKEN" -d '{"run_id": "mnist_1_ab12"}' \\
        http://127.0.0.1:8765/api/v1/workspaces/team/calls/get_run
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from modelyard.backend.contract_calls import ContractCall, contract_calls, wire_error
from modelyard.backend.local import LocalBackend
from modelyard.backend.records import ComputeRecord, RunRecord
from modelyard.backend.remote import API, SHA256_HEADER
from modelyard.backend.remote.transport import CHUNK_BYTES
from modelyard.errors import TooLargeError, ValidationError
from modelyard.runner.run_scope import RunScope
from modelyard.server import authz
from modelyard.server.account_records import Principal
from modelyard.server.context import (
    Caller,
    ServerContext,
    authorize_arguments,
    authorize_call,
    context,
)
from modelyard.server.uploads import UPLOADS_DIR, part_of
from modelyard.store.private import make_private_folder

_RANGE = re.compile(r"bytes=(\d+)-$")


def _arguments(model: type[BaseModel], values: BaseModel) -> dict[str, Any]:
    # Fields as validated (records stay records), not dumped back to plain data.
    return {name: getattr(values, name) for name in model.model_fields}


def _validated(call: ContractCall, raw: bytes | dict[str, Any]) -> dict[str, Any]:
    try:
        if isinstance(raw, bytes):
            values = call.body.model_validate_json(raw or b"{}")
        else:
            values = call.body.model_validate(raw)
    except PydanticValidationError as error:
        raise wire_error(error) from None
    return _arguments(call.body, values)


async def _authorized(
    server: ServerContext,
    principal: Principal,
    workspace: str,
    call: ContractCall,
    raw: dict[str, Any] | Callable[[], Awaitable[bytes]],
) -> tuple[LocalBackend, dict[str, Any], RunScope | None]:
    """The backend and the validated arguments of ``call``, once the caller may make it
    there: the call is authorized before its arguments are read (``raw``, an upload's or a
    download's query, or what reads a JSON call's body), and a run's token is then held to
    what its run may reach by them (the scope returned, None for a member's)."""
    backend = await run_in_threadpool(authorize_call, server, principal, workspace, call.name)
    arguments = _validated(call, raw if isinstance(raw, dict) else await raw())
    scope = await run_in_threadpool(
        authorize_arguments, server, principal, backend, call.name, arguments
    )
    return backend, arguments, scope


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLargeError("body", f"{int(declared):,} bytes is over this server's {limit:,}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError("body", f"over this server's limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _after(server: ServerContext, workspace: str, call: str, result: Any) -> None:
    """What the server does once a call succeeded: start the runs queued on its machine,
    provision or stop the clusters it runs."""
    if call in ("update_run_status", "create_run") and isinstance(result, RunRecord):
        server.hub.run_status_changed(workspace, result.id, result.status)
    elif call in ("create_compute", "update_compute") and isinstance(result, ComputeRecord):
        server.hub.compute_changed(workspace, result)


def _json_route(app: FastAPI, call: ContractCall, schemas: dict[str, Any]) -> None:
    assert call.result is not None
    result_model = call.result

    async def endpoint(request: Request, workspace: str, principal: Caller) -> Response:
        server = context(request)
        backend, arguments, scope = await _authorized(
            server,
            principal,
            workspace,
            call,
            lambda: _read_body(request, server.settings.max_body_bytes),
        )

        def work() -> bytes:
            result = getattr(backend, call.name)(**arguments)
            _after(server, workspace, call.name, result)
            if scope is not None:
                # What the run may not see is refused or left out (a run of another's that
                # create_run returned as it is; datastores it was not given).
                result = scope.answer(call.name, arguments, result)
            return result_model(result=result).model_dump_json().encode()

        return Response(await run_in_threadpool(work), media_type="application/json")

    _add_route(
        app,
        call,
        endpoint,
        "POST",
        response_model=result_model,
        tags=["calls"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _schema_ref(call.body, schemas)}},
            }
        },
    )


def _upload_route(app: FastAPI, call: ContractCall) -> None:
    assert call.upload is not None and call.result is not None
    result_model = call.result

    async def endpoint(request: Request, workspace: str, principal: Caller) -> Response:
        server = context(request)
        query = dict(request.query_params)
        backend, arguments, _scope = await _authorized(server, principal, workspace, call, query)

        def finish(path: Path) -> bytes:
            result = getattr(backend, call.name)(**{**arguments, str(call.upload): path})
            return result_model(result=result).model_dump_json().encode()

        part = part_of(request.headers, server.settings.max_upload_bytes)
        if part is not None:
            status, reply = await server.uploads.receive(
                principal.user or f"run:{principal.workspace}:{principal.run_id}",
                workspace,
                {"call": call.name, "arguments": query},
                part,
                request.stream(),
                finish,
            )
            return Response(reply, status_code=status, media_type="application/json")
        path = await _receive_file(request, server)
        try:
            reply = await run_in_threadpool(finish, path)
        finally:
            path.unlink(missing_ok=True)
        return Response(reply, media_type="application/json")

    _add_route(
        app,
        call,
        endpoint,
        "POST",
        response_model=result_model,
        tags=["files"],
        openapi_extra={
            "parameters": _query_parameters(call),
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            },
        },
    )


async def _receive_file(request: Request, server: ServerContext) -> Path:
    """The request's body in a private temporary file, checked against its declared length
    and digest (ValidationError, and no file left, when it does not match)."""
    folder = server.settings.data_dir / UPLOADS_DIR
    make_private_folder(folder)
    limit = server.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLargeError("body", f"{int(declared):,} bytes is over this server's {limit:,}")
    fd, name = tempfile.mkstemp(dir=folder, prefix=".upload-")
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as file:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLargeError("body", f"over this server's limit of {limit:,} bytes")
                digest.update(chunk)
                await run_in_threadpool(file.write, chunk)
        if declared is not None and declared.isdigit() and int(declared) != size:
            raise ValidationError(
                "body", f"{size:,} of {int(declared):,} bytes arrived; send the file again"
            )
        expected = request.headers.get(SHA256_HEADER)
        if expected is not None and expected.lower() != digest.hexdigest():
            raise ValidationError(
                "body",
                f"the file that arrived has SHA-256 {digest.hexdigest()}, not {expected}: it "
                "was altered on the way; send it again",
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _download_route(app: FastAPI, call: ContractCall) -> None:
    async def endpoint(request: Request, workspace: str, principal: Caller) -> Response:
        server = context(request)
        backend, arguments, _scope = await _authorized(
            server, principal, workspace, call, dict(request.query_params)
        )
        start = 0
        if (asked := request.headers.get("range")) is not None:
            match = _RANGE.match(asked.strip())
            if match is None:
                raise ValidationError("Range", f"{asked!r}: only 'bytes=N-' is served")
            start = int(match.group(1))

        def open_stream() -> tuple[IO[bytes], int | None]:
            stream: IO[bytes] = getattr(backend, call.name)(**arguments)
            try:
                size = _size_of(stream)
                if start:
                    _skip(stream, start)
            except BaseException:
                stream.close()
                raise
            return stream, size

        stream, size = await run_in_threadpool(open_stream)
        headers = {"Accept-Ranges": "bytes"}
        status = 200
        if start:
            status = 206
            total = "*" if size is None else str(size)
            end = "*" if size is None else str(max(size - 1, start))
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        if size is not None:
            headers["Content-Length"] = str(max(size - start, 0))
        return StreamingResponse(
            _chunks(stream),
            status_code=status,
            media_type="application/octet-stream",
            headers=headers,
        )

    _add_route(
        app,
        call,
        endpoint,
        "GET",
        tags=["files"],
        response_class=StreamingResponse,
        openapi_extra={
            "parameters": _query_parameters(call),
            "responses": {
                "200": {
                    "description": "the file",
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                }
            },
        },
    )


def _size_of(stream: IO[bytes]) -> int | None:
    try:
        return os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        pass
    size = getattr(stream, "size", None)
    return size if isinstance(size, int) else None


def _skip(stream: IO[bytes], count: int) -> None:
    if stream.seekable():
        stream.seek(count)
        return
    while count > 0:
        chunk = stream.read(min(count, CHUNK_BYTES))
        if not chunk:
            return
        count -= len(chunk)


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk
    finally:
        stream.close()


def _add_route(
    app: FastAPI, call: ContractCall, endpoint: Any, method: str, **options: Any
) -> None:
    """The route of ``call``, named and described in the OpenAPI document by the call."""
    app.add_api_route(
        f"{API}/workspaces/{{workspace}}/calls/{call.name}",
        endpoint,
        methods=[method],
        name=call.name,
        summary=call.name,
        description=call.doc,
        **options,
    )


def _query_parameters(call: ContractCall) -> list[dict[str, Any]]:
    """The OpenAPI parameters of an upload's or a download's arguments (names and numbers,
    in the query string)."""
    kinds: dict[Any, dict[str, str]] = {int: {"type": "integer"}, bool: {"type": "boolean"}}
    return [
        {
            "name": name,
            "in": "query",
            "required": field.is_required(),
            "schema": kinds.get(field.annotation, {"type": "string"}),
        }
        for name, field in call.body.model_fields.items()
    ]


def _schema_ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def add_call_routes(app: FastAPI) -> dict[str, Any]:
    """A route for every contract call; a call without an authorization rule is refused
    here, so the server never serves one nobody decided about. Returns the JSON schemas of
    the calls' arguments, for the OpenAPI document's components: FastAPI makes them only for
    bodies it parses itself, and these are parsed by pydantic from the raw bytes, so that
    bytes are read as base64."""
    schemas: dict[str, Any] = {}
    for call in contract_calls().values():
        authz.required_role(call.name)  # KeyError: a new call with no rule
        if call.upload is not None:
            _upload_route(app, call)
        elif call.download:
            _download_route(app, call)
        else:
            _json_route(app, call, schemas)
    return schemas


__all__ = ["add_call_routes"]
