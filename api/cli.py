"""Operator CLI: `flask --app api token create --org NAME`, `flask --app api scenario demo`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from api import scenarios
from api.services import tokens

token_cli = AppGroup("token", help="API tokens.")
scenario_cli = AppGroup("scenario", help="Seed sandboxes from an empty database.")


@token_cli.command("create")
@click.option("--org", "org_name", required=True, help="Organization name (created if needed).")
def create_token_command(org_name: str) -> None:
    """Create a token; the token is the last line of stdout (shown once, stored hashed)."""
    org, plain = tokens.create_token(org_name)
    click.echo(f"organization: {org.name} ({org.id})")
    click.echo(plain)


@scenario_cli.command("demo")
@click.option(
    "--receiver-url",
    default="http://127.0.0.1:9999/webhook",
    show_default=True,
    help="Where the demo endpoint points.",
)
def demo_scenario_command(receiver_url: str) -> None:
    """Seed a demo org, token, application, event types, endpoint and a message."""
    for line in scenarios.seed_demo(receiver_url):
        click.echo(line)


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app's CLI."""
    app.cli.add_command(token_cli)
    app.cli.add_command(scenario_cli)
