"""A scoring service's replica on a Ray cluster: the scoring app (:mod:`.app`) as a Ray Serve
deployment, one replica per Ray actor.

The replica runs in the service's folder as Ray unpacked it on its node (the deployment's
``runtime_env`` ``working_dir``: its ``source/`` and ``models/``), so nothing of the
workspace's machine needs to be reachable from the node. It sets ``AZUREML_MODEL_DIR`` there,
imports the entry script and calls ``init()`` once, before Serve sends it a request; an
exception there fails the replica with the traceback in its message, which Serve reports in
the application's status. The keys' digests (:func:`modelyard.serving.settings.key_digest`, hex)
come as the deployment's ``user_config``: a new key (``regen_key``) reaches the replicas as the
service is deployed again.

Example (what ``modelyard.compute.ray.serve_control`` deploys)::

    app = ScoringReplica.options(num_replicas=2).bind(settings, auth_enabled=False)
    serve.run(app, name="svc", route_prefix="/svc")
"""

from __future__ import annotations

import asyncio
import os
import traceback
from typing import Any

from ray import serve
from starlette.applications import Starlette

from modelyard.serving.app import build_app, load_scoring
from modelyard.serving.settings import ServiceSettings

DEPLOYMENT = "scoring"
MODEL_DIR_ENV = "AZUREML_MODEL_DIR"


@serve.deployment(name=DEPLOYMENT)
@serve.ingress()
class ScoringReplica:
    """One replica: ``settings`` as :class:`ServiceSettings` fields, paths relative to the
    service's folder; ``auth_enabled`` asks for a key (the ``user_config``'s ``keys``)."""

    def __init__(self, settings: dict[str, Any], auth_enabled: bool) -> None:
        here = os.getcwd()  # the working_dir, unpacked on this node
        fields = dict(settings)
        for name in ("entry_script", "source_directory", "model_dir"):
            if fields.get(name) is not None:
                fields[name] = os.path.join(here, fields[name])
        self._settings = ServiceSettings(**fields)
        self._auth_enabled = auth_enabled
        self._keys: list[bytes] = []
        os.environ[MODEL_DIR_ENV] = self._settings.model_dir

    def reconfigure(self, config: dict[str, Any]) -> None:
        self._keys = [bytes.fromhex(digest) for digest in config.get("keys") or []]

    def _current_keys(self) -> list[bytes]:
        return self._keys

    async def __serve_build_asgi_app__(self) -> Starlette:
        try:
            # init() may take long (loading a model): off the replica's event loop.
            scoring = await asyncio.to_thread(load_scoring, self._settings)
        except BaseException:
            text = traceback.format_exc()
            print(text, flush=True)
            raise RuntimeError(f"init() raised:\n{text}") from None
        return build_app(
            self._settings, scoring, self._current_keys if self._auth_enabled else None
        )
