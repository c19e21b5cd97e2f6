"""mpirun's remote shell on a Ray cluster: ``python -m modelyard.compute.ray.rsh <file> <host>
<command...>``.

An MPI run across nodes starts one ``mpirun`` on its first node, with a hostfile naming every
node by an alias (``modelyard-node-<rank>``, ``launchers.node_alias``) and this module as its
``plm_rsh_agent``: where OpenMPI would ssh to a host to start its daemon (``orted``), it runs
this instead, which asks the host on that node (``NodeHost.execute``, through Ray) to run
the daemon's command line there, and lives as long as the daemon, as ssh would. No ssh, no
keys: the placement group's bundle on that node is where the daemon runs.

``<file>`` (JSON, private to the account) says how to reach the cluster: its address, its
token file, the run and its hosts' names by node rank. The agent's words may hold no space or
colon (OpenMPI splits the agent there), so the address is in the file, not on the command
line.

Example (what mpirun runs)::

    python -m modelyard.compute.ray.rsh /tmp/modelyard-0/rsh-<run>.json modelyard-node-1 orted ...
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from modelyard.compute.ray.actor_names import NAMESPACE
from modelyard.compute.ray.cluster import client_environment
from modelyard.runner.launchers import node_alias


def main(argv: list[str]) -> int:
    info = json.loads(Path(argv[0]).read_text())
    alias, command = argv[1], " ".join(argv[2:])
    hosts = {node_alias(rank): name for rank, name in enumerate(info["hosts"])}
    if alias not in hosts:
        print(f"modelyard rsh: {alias!r} is not a node of this run", file=sys.stderr)
        return 255  # what ssh returns when it cannot reach the host
    # The agent runs with the run's environment, which holds no Ray settings; Ray reads its
    # token settings when it is imported, so they are set first and Ray imported after.
    os.environ.update(client_environment(info.get("token_file")))
    import ray

    ray.init(
        address=info["address"], namespace=NAMESPACE, logging_level="error", log_to_driver=False
    )
    host = ray.get_actor(hosts[alias], namespace=NAMESPACE)
    code, tail = ray.get(host.execute.remote(info["run_id"], command))
    if tail:
        sys.stderr.write(tail)
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
