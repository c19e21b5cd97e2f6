"""``modelyard compute create|list|show|delete|export``: the workspace's compute clusters.

Example::

    $ modelyard compute create cpucluster --vm-size STANDARD_D2_V2 --max-nodes 4 --wait
    $ modelyard compute export cpucluster --provider aws > cluster.yaml && ray up cluster.yaml
"""

from __future__ import annotations

from pathlib import Path

import click

from modelyard.cli.output import print_fields, print_json, print_message, print_table
from modelyard.cli.params import json_option, option_names
from modelyard.cli.state import CliState
from modelyard.compute import AmlCompute, ComputeTarget
from modelyard.compute.ray.launcher_config import export_yaml
from modelyard.compute.ray.provisioning import ProvisioningConfiguration
from modelyard.errors import ValidationError
from modelyard.hints import spoken_as
from modelyard.store.private import write_private_file


@click.group("compute")
def group() -> None:
    """Compute clusters on Ray: create, list, show, delete, export.

    \b
    Example:
      modelyard compute create cpucluster --vm-size STANDARD_D2_V2 --max-nodes 4 --wait
    """


# The SDK's advice about a missing compute target, as the commands that do it.
_COMPUTE_COMMANDS = {
    "ComputeTarget.create(ws, {name!r}, AmlCompute.provisioning_configuration(...))": (
        "`modelyard compute create {name}`"
    ),
    "ComputeTarget.list(ws)": "`modelyard compute list`",
}


def _cluster(state: CliState, name: str) -> AmlCompute:
    with spoken_as(_COMPUTE_COMMANDS):
        target = ComputeTarget(state.workspace, name)
    if not isinstance(target, AmlCompute):
        raise ValidationError("name", f"{name!r} is this machine, not a cluster")
    return target


@group.command("create")
@click.argument("name")
@click.option(
    "--vm-size",
    default="STANDARD_D2_V2",
    show_default=True,
    help="A v1 VM size, or a custom 'cpu=2,memory=7GB,gpu=0'.",
)
@click.option("--min-nodes", type=int, default=0, show_default=True)
@click.option("--max-nodes", type=int, default=4, show_default=True)
@click.option("--idle-seconds-before-scaledown", type=int, default=1800, show_default=True)
@click.option(
    "--vm-priority",
    type=click.Choice(["dedicated", "lowpriority"]),
    default="dedicated",
    show_default=True,
)
@click.option(
    "--address",
    default=None,
    help="Attach an existing Ray cluster (ray://host:port or host:port) instead of "
    "starting one on this machine.",
)
@click.option("--wait", is_flag=True, help="Wait until the cluster is up.")
@json_option
@click.pass_obj
def create(
    state: CliState,
    name: str,
    vm_size: str,
    min_nodes: int,
    max_nodes: int,
    idle_seconds_before_scaledown: int,
    vm_priority: str,
    address: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Create a cluster on this machine, or attach one.

    A Ray cluster on this machine, whose autoscaler keeps between --min-nodes and --max-nodes
    worker nodes, or an existing Ray cluster with --address.

    \b
    Example:
      modelyard compute create gpucluster --vm-size STANDARD_NC6 --max-nodes 2 --wait
    """
    with option_names(
        vm_size="--vm-size",
        min_nodes="--min-nodes",
        max_nodes="--max-nodes",
        idle_seconds_before_scaledown="--idle-seconds-before-scaledown",
        address="--address",
        name="NAME",
    ):
        config = AmlCompute.provisioning_configuration(
            vm_size=vm_size,
            vm_priority=vm_priority,
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            idle_seconds_before_scaledown=idle_seconds_before_scaledown,
            address=address,
        )
        target = ComputeTarget.create(state.workspace, name, config)
    if wait:
        target.wait_for_completion(show_output=not as_json)
    _show(target, as_json)


@group.command("list")
@json_option
@click.pass_obj
def list_computes(state: CliState, as_json: bool) -> None:
    """List the workspace's compute targets (local first).

    \b
    Example:
      modelyard compute list
    """
    targets = ComputeTarget.list(state.workspace)
    if as_json:
        print_json([target.serialize() for target in targets])
        return
    rows = []
    for target in targets:
        if isinstance(target, AmlCompute):
            rows.append(
                [
                    target.name,
                    target.type,
                    target.provisioning_state,
                    target.vm_size,
                    f"{target.scale_settings['minNodeCount']}-"
                    f"{target.scale_settings['maxNodeCount']}",
                ]
            )
        else:
            rows.append([target.name, target.type, "Succeeded", "this machine", "-"])
    print_table(["name", "type", "state", "vm size", "nodes"], rows, empty="no compute targets")


@group.command("show")
@click.argument("name")
@json_option
@click.pass_obj
def show(state: CliState, name: str, as_json: bool) -> None:
    """Show a cluster: its state, its size and its nodes now.

    \b
    Example:
      modelyard compute show cpucluster --json
    """
    _show(_cluster(state, name), as_json)


def _show(target: AmlCompute, as_json: bool) -> None:
    status = target.get_status()
    if as_json:
        print_json({**target.serialize(), "status": status.serialize()})
        return
    counts = status.node_state_counts
    print_fields(
        [
            ("name", target.name),
            ("type", target.type),
            ("state", status.provisioning_state),
            ("errors", "; ".join(e.get("message", "") for e in status.errors) or None),
            ("vm size", status.vm_size),
            ("priority", status.vm_priority),
            ("address", target.address),
            (
                "nodes",
                f"{status.current_node_count} (target {status.target_node_count}; "
                f"{counts.running_node_count} running, {counts.idle_node_count} idle, "
                f"{counts.preparing_node_count} starting)",
            ),
            (
                "min-max nodes",
                f"{target.scale_settings['minNodeCount']}-{target.scale_settings['maxNodeCount']}",
            ),
            ("idle before scale-down", target.scale_settings["nodeIdleTimeBeforeScaleDown"]),
        ]
    )


@group.command("delete")
@click.argument("name")
@click.pass_obj
def delete(state: CliState, name: str) -> None:
    """Delete a cluster, stopping its runs.

    A cluster on this machine is stopped whole (every Ray process of it); of an attached one,
    only modelyard's part stops.

    \b
    Example:
      modelyard compute delete cpucluster
    """
    _cluster(state, name).delete()
    print_message(f"deleted compute target {name!r}")


@group.command("export")
@click.argument("name")
@click.option("--provider", type=click.Choice(["aws", "gcp", "azure"]), required=True)
@click.option("--region", default=None, help="The cloud region (default: the provider's).")
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the file here (default: print it).",
)
@click.pass_obj
def export(
    state: CliState, name: str, provider: str, region: str | None, output: Path | None
) -> None:
    """Write a Ray cluster-launcher file for a cloud.

    The file (`ray up FILE` starts it) has the cluster's provisioning configuration on AWS,
    GCP or Azure; attach the cluster it starts with `compute create --address`.

    \b
    Example:
      modelyard compute export cpucluster --provider aws --output cluster.yaml
    """
    target = _cluster(state, name)
    config = ProvisioningConfiguration.from_dict(target._record.provisioning)
    text = export_yaml(name, config, provider, region=region)
    if output is None:
        click.echo(text, nl=False)
        return
    write_private_file(output, text.encode())
    print_message(f"wrote {output}: start it with `ray up {output}`")
