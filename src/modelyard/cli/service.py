"""``modelyard service list|show|logs|delete|start``: the workspace's scoring services."""

from __future__ import annotations

import click

from modelyard.cli.output import print_fields, print_json, print_message, print_table
from modelyard.cli.params import json_option
from modelyard.cli.state import CliState
from modelyard.webservice import Webservice


@click.group("service")
def group() -> None:
    """List, inspect, restart and delete deployed scoring services.

    \b
    Example:
      modelyard service list
    """


@group.command("list")
@json_option
@click.pass_obj
def list_services(state: CliState, as_json: bool) -> None:
    """List the services: state, models, scoring URI.

    \b
    Example:
      modelyard service list --json
    """
    services = Webservice.list(state.workspace)
    if as_json:
        print_json([service.serialize() for service in services])
        return
    print_table(
        ["name", "state", "models", "scoring uri"],
        (
            [service.name, service.state, ", ".join(service.models), service.scoring_uri]
            for service in services
        ),
        empty="No services deployed yet.",
    )


@group.command("show")
@click.argument("name")
@json_option
@click.pass_obj
def show(state: CliState, name: str, as_json: bool) -> None:
    """Show a service.

    \b
    Example:
      modelyard service show tf-mnist-svc
    """
    service = Webservice(state.workspace, name)
    summary = service.serialize()
    if as_json:
        print_json(summary)
        return
    print_fields(
        [
            ("name", service.name),
            ("state", summary["state"]),
            ("kind", service.compute_type),
            ("runs on", service.compute_target_name or "this machine"),
            ("models", ", ".join(service.models)),
            ("scoring uri", service.scoring_uri),
            ("swagger uri", service.swagger_uri),
            ("auth", "keys" if service.auth_enabled else "none"),
            ("created", summary["createdTime"]),
        ]
    )


@group.command("logs")
@click.argument("name")
@click.option("--lines", type=int, default=5000, show_default=True, help="The last N lines.")
@click.pass_obj
def logs(state: CliState, name: str, lines: int) -> None:
    """Print a service's output.

    The server's lines and the entry script's (its prints, its tracebacks).

    \b
    Example:
      modelyard service logs tf-mnist-svc --lines 50
    """
    for line in Webservice(state.workspace, name).get_logs(lines).splitlines():
        print_message(line)


@group.command("start")
@click.argument("name")
@click.pass_obj
def start(state: CliState, name: str) -> None:
    """Start a service again (after a reboot).

    For a service whose process has ended; waits until it answers.

    \b
    Example:
      modelyard service start tf-mnist-svc
    """
    service = Webservice(state.workspace, name)
    service.start()
    print_message(f"Service {name} is {service.state} at {service.scoring_uri}")


@group.command("delete")
@click.argument("name")
@click.pass_obj
def delete(state: CliState, name: str) -> None:
    """Stop and delete a service and its files.

    \b
    Example:
      modelyard service delete tf-mnist-svc
    """
    Webservice(state.workspace, name).delete()
    print_message(f"Deleted service {name}.")
