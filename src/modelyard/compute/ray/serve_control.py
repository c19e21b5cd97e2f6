"""Ray Serve on a cluster, for a scoring service: ``python -m
modelyard.compute.ray.serve_control COMMAND`` with the request as JSON on stdin; the answer
is JSON lines on stdout (the last one the result).

The SDK (``compute/ray/serving.py``) starts this with the cluster's address in the request
and its token in the environment: Ray reads its authentication settings once, when it is
imported, so the SDK's own process never imports it. Commands:

- ``deploy``: first Serve on the cluster, unless it runs already: its proxy on the head only
  (every node of a cluster on this machine has the same address, so one proxy per node could
  not each have the port), on ``host``:``port``. Then the service as the Serve application
  ``app`` at ``/<app>``: its folder as the replicas' ``working_dir`` (Ray packs it, stores
  it in the cluster and unpacks it on each node that runs a replica), the replicas'
  resources and count or autoscaling, the keys' digests as ``user_config``. Answers the proxy's host
  and port (the running Serve's, when it was there already), and the replicas the
  application had before (``earlier``), once Serve has the application, which may still be
  deploying.
- ``status``: the application's status, message and deployment details (None: not there),
  and whether Serve runs on the cluster at all.
- ``wait``: a line per status change until the application runs, fails or ``timeout`` passes.
- ``logs``: the output of each of the application's replicas but the ``earlier`` ones (of a
  service of the same name before, or of this one before it was deployed again), alive or
  ended, read from its node.
- ``delete``: the application; Serve itself too when no other application is left.

Example::

    echo '{"address": "127.0.0.1:6379", "app": "svc"}' | \
        python -m modelyard.compute.ray.serve_control status
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import ray
from ray import serve
from ray.util import state as ray_state

from modelyard.serving.ray_replica import DEPLOYMENT, ScoringReplica

SERVE_NAMESPACE = "serve"
REPLICA_ACTOR_PREFIX = "SERVE_REPLICA::"
POLL_S = 1.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _connect(address: str, runtime_env: dict[str, Any] | None = None) -> None:
    ray.init(
        address=address,
        logging_level="error",
        log_to_driver=False,
        runtime_env=runtime_env,
    )


def _serve_client() -> Any:
    """Serve's client (None: Serve does not run), for what its public API does not give: the
    running proxy's HTTP options and the applications' details (their deployments' config
    and replicas). The dashboard's REST API (GET /api/serve/applications/) answers the same,
    from the controller's same method, but needs the dashboard's address, which an attached
    cluster's address does not tell."""
    from ray.serve.context import _get_global_client

    return _get_global_client(raise_if_no_controller_running=False)


def _applications() -> dict[str, Any]:
    client = _serve_client()
    if client is None:
        return {}
    return dict(client.get_serve_details().get("applications") or {})


def deploy(request: dict[str, Any]) -> dict[str, Any]:
    _connect(request["address"])
    serve.start(
        proxy_location="HeadOnly",
        http_options={"host": request["host"], "port": request["port"]},
    )
    http = _serve_client().http_config
    # Ended replicas of this name are of an earlier service (or version): not shown as its.
    earlier = [
        actor.name
        for actor in _replica_actors(request["address"], request["app"])
        if actor.state == "DEAD"
    ]
    ray.shutdown()
    # The working_dir is the job's: Serve gives each deployment the runtime_env of the
    # process that deploys it. Serve's own actors were started above, from a connection
    # without it, so they do not carry (nor keep alive) the service's files.
    _connect(
        request["address"],
        {
            "working_dir": request["folder"],
            "excludes": request["excludes"],
            "env_vars": request["env_vars"],
        },
    )
    options: dict[str, Any] = {
        "ray_actor_options": request["ray_actor_options"],
        "user_config": {"keys": request["keys"]},
        "max_ongoing_requests": request["max_ongoing_requests"],
    }
    if request["autoscaling"] is not None:
        options["autoscaling_config"] = request["autoscaling"]
    else:
        options["num_replicas"] = request["num_replicas"]
    # A Serve Deployment (Ray's types are not followed here: Any).
    deployment: Any = ScoringReplica
    app = deployment.options(**options).bind(request["settings"], request["auth_enabled"])
    serve.run_many(
        [serve.RunTarget(target=app, name=request["app"], route_prefix=f"/{request['app']}")],
        wait_for_ingress_deployment_creation=False,
        wait_for_applications_running=False,
    )
    return {"host": http.host, "port": http.port, "earlier": earlier}


def _status(app: str) -> dict[str, Any] | None:
    found = _applications().get(app)
    if found is None:
        return None
    deployment = (found.get("deployments") or {}).get(DEPLOYMENT) or {}
    said = [found.get("message"), deployment.get("message")]
    return {
        "status": getattr(found["status"], "value", found["status"]),
        # Ray colours the names in its tracebacks for a terminal.
        "message": ANSI.sub("", "\n".join(text for text in said if text)),
        "deployment": {
            "status": getattr(deployment.get("status"), "value", deployment.get("status")),
            "message": ANSI.sub("", deployment.get("message") or ""),
            "config": deployment.get("deployment_config") or {},
            "replicas": [
                {
                    key: getattr(replica.get(key), "value", replica.get(key))
                    for key in ("replica_id", "state", "pid", "node_id")
                }
                for replica in deployment.get("replicas") or []
            ],
        },
    }


def status(request: dict[str, Any]) -> dict[str, Any]:
    _connect(request["address"])
    return {"application": _status(request["app"]), "serve_running": _serve_client() is not None}


def wait(request: dict[str, Any]) -> dict[str, Any]:
    _connect(request["address"])
    deadline = time.monotonic() + float(request["timeout"])
    shown = None
    while True:
        current = _status(request["app"])
        name = None if current is None else current["status"]
        if name != shown:
            print(json.dumps({"application": current}, default=str), flush=True)
            shown = name
        if name in (None, "RUNNING", "DEPLOY_FAILED", "UNHEALTHY"):
            return {"application": current, "timed_out": False}
        if time.monotonic() > deadline:
            return {"application": current, "timed_out": True}
        time.sleep(POLL_S)


def _tail(address: str, lines: int, **where: Any) -> str:
    try:
        return "".join(ray_state.get_log(address=address, tail=lines, errors="replace", **where))
    except Exception as error:  # a node gone, a file not written (yet): say so, go on
        return f"(not readable: {type(error).__name__}: {error})\n"


def _replica_actors(address: str, app: str) -> list[Any]:
    """The Ray actors of the application's replicas, alive or ended, by name."""
    # The state API finds the dashboard from the GCS address: given, as this machine may have
    # several Ray clusters.
    actors = ray_state.list_actors(
        address=address,
        filters=[("ray_namespace", "=", SERVE_NAMESPACE)],
        limit=10_000,
        raise_on_missing_output=False,
    )
    prefix = f"{REPLICA_ACTOR_PREFIX}{app}#{DEPLOYMENT}#"
    return sorted(
        (actor for actor in actors if str(actor.name or "").startswith(prefix)),
        key=lambda actor: str(actor.name),
    )


def logs(request: dict[str, Any]) -> dict[str, Any]:
    _connect(request["address"])
    app, lines = request["app"], int(request["lines"])
    parts = []
    current = _status(app)
    if current is not None and current["message"]:
        parts.append(
            f"== Serve: application {app!r} is {current['status']}\n{current['message']}\n"
        )
    earlier = set(request["earlier"])
    for actor in _replica_actors(request["address"], app):
        if actor.name in earlier:
            continue
        where = f"replica {actor.name.rsplit('#', 1)[-1]} (pid {actor.pid}, {actor.state})"
        # Serve's log lines (a line per request) go to stderr as well as to its own file.
        for suffix in ("out", "err"):
            text = _tail(request["address"], lines, actor_id=actor.actor_id, suffix=suffix)
            parts.append(f"== {where}: its std{suffix}\n{text}")
    return {"text": "".join(parts)}


def delete(request: dict[str, Any]) -> dict[str, Any]:
    _connect(request["address"])
    present = request["app"] in _applications()
    if present:
        serve.delete(request["app"])
    others = _applications()
    if not others and _serve_client() is not None:
        serve.shutdown()
    return {"deleted": present, "serve_shut_down": not others}


COMMANDS = {
    "deploy": deploy,
    "status": status,
    "wait": wait,
    "logs": logs,
    "delete": delete,
}


def main() -> None:
    command = COMMANDS[sys.argv[1]]
    result = command(json.loads(sys.stdin.read()))
    print(json.dumps({"result": result}, default=str), flush=True)


if __name__ == "__main__":
    main()
