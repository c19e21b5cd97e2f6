"""The backend of a server's workspace: each contract call is an HTTP request to the server.

``Workspace.from_config()`` with ``"server"`` in its config.json, and ``Workspace.get(name,
server=...)``, give a workspace on a :class:`RemoteBackend`. The routes are those of
``server/calls.py``, both ends made from ``backend/contract_calls.py``; how requests are
retried, and errors raised, is ``transport.py``.

Example::

    backend = RemoteBackend("http://127.0.0.1:8765", "team", token="myd_...")
    backend.ensure_experiment("mnist")
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from modelyard.backend.base import Backend
from modelyard.backend.contract_calls import ContractCall, contract_calls
from modelyard.backend.records import ModelRecord
from modelyard.backend.remote import calls_path
from modelyard.backend.remote.transport import Transport


class RemoteBackend(Backend):
    """A Backend whose every call goes to a modelyard server (see the module docstring)."""

    def __init__(
        self,
        server: str,
        workspace_name: str,
        token: str | None = None,
        *,
        transport: Transport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.workspace_name = workspace_name
        self.transport = transport or Transport(server, token)

    def _call(self, call: ContractCall, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        arguments = call.arguments(args, kwargs)
        path = calls_path(self.workspace_name, call.name)
        if call.upload is not None:
            source = arguments.pop(call.upload)
            reply = self.transport.upload(path, _query(call, arguments), source)
            return call.result.model_validate(reply).result  # type: ignore[union-attr]
        if call.result is None:
            return self.transport.download(path, _query(call, arguments))
        body = call.encoded(arguments)
        reply = self.transport.request("POST", path, content=body)
        return call.result.model_validate(reply).result  # type: ignore[attr-defined]

    def run_file_url(self, run_id: str, name: str) -> str:
        return self._download_url("open_run_file", {"run_id": run_id, "name": name})

    def model_url(self, record: ModelRecord) -> str:
        return self._download_url(
            "open_model_file",
            {"name": record.name, "version": record.version, "relpath": record.root_name},
        )

    def _download_url(self, call: str, arguments: dict[str, Any]) -> str:
        # Slashes left as they are, so the URL ends with the file's own name.
        query = urllib.parse.urlencode(arguments, safe="/")
        return f"{self.server}{calls_path(self.workspace_name, call)}?{query}"


def _query(call: ContractCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments of an upload or download as a query string (they are plain names and
    numbers); validated by the call's model first, so a bad one fails here as it would on
    the server."""
    checked = call.validated(arguments).model_dump(mode="json")
    return {key: value for key, value in checked.items() if value is not None}


def _forwarding(call: ContractCall) -> Any:
    def forward(self: RemoteBackend, *args: Any, **kwargs: Any) -> Any:
        return self._call(call, args, kwargs)

    forward.__name__ = call.name
    forward.__doc__ = call.doc
    return forward


# Every contract call is a request; generating the methods keeps the client in step with the
# contract when a method is added there.
for _call in contract_calls().values():
    if _call.name not in vars(RemoteBackend):
        setattr(RemoteBackend, _call.name, _forwarding(_call))
RemoteBackend.__abstractmethods__ = frozenset()

__all__ = ["RemoteBackend"]
