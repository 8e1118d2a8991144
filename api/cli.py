"""Operator CLI: the `herald` command (the app's Flask CLI plus `devserver` and `listen`).

`herald db upgrade` (also `flask --app api db upgrade`) creates a missing database first;
`herald token create --org NAME`, `herald scenario demo`, `herald devserver`, `herald listen`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, routes_command, shell_command, with_appcontext
from sqlalchemy import func, select

from api import scenarios
from api.app import create_app
from api.config import ROOT
from api.provision import DatabaseUnreachable, ensure_database
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
    help="Where the demo endpoint points (`herald listen` serves it).",
)
@click.option("--force", is_flag=True, help="Seed even though the database holds applications.")
def demo_scenario_command(receiver_url: str, force: bool) -> None:
    """Seed a demo org, token, application, event types, endpoint and a message."""
    from api.devserver import DEMO_APP, DEV_ORG
    from api.extensions import db
    from api.models import Application, Organization

    devserver_demo = (Organization.name == DEV_ORG) & (Application.uid == DEMO_APP["uid"])
    applications = db.session.scalar(  # the app `make run` makes for its portal link aside
        select(func.count(Application.id))
        .join(Organization, Organization.id == Application.org_id)
        .where(~devserver_demo)
    )
    if applications and not force:
        raise click.ClickException(
            f"the database already holds {applications} application(s); scenario demo seeds "
            "an empty one (--force adds the demo anyway)"
        )
    for line in scenarios.seed_demo(receiver_url):
        click.echo(line)


def _db_group_creating_database(migrate_db: click.Group) -> click.Group:
    """Flask-Migrate's `db` group whose `upgrade` first creates a missing database."""
    original = migrate_db.commands["upgrade"]

    @with_appcontext
    @click.pass_context
    def upgrade(ctx: click.Context, **options: Any) -> None:
        if not options.get("sql"):
            try:
                created = ensure_database(current_app.config["SQLALCHEMY_DATABASE_URI"])
            except DatabaseUnreachable as exc:
                raise click.ClickException(f"cannot reach the database: {exc}") from None
            if created:
                click.echo(f"created {created}")
        assert original.callback is not None
        ctx.invoke(original.callback, **options)

    command = click.Command(
        "upgrade",
        callback=upgrade,
        params=original.params,
        help="Create the database if it is missing (PostgreSQL), then upgrade to a later "
        "version (default: head).",
    )
    return click.Group(
        migrate_db.name,
        commands={**migrate_db.commands, "upgrade": command},
        callback=migrate_db.callback,
        params=migrate_db.params,
        help=migrate_db.help,
    )


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app's CLI (after Flask-Migrate added `db`)."""
    app.cli.add_command(token_cli)
    app.cli.add_command(scenario_cli)
    migrate_db = app.cli.commands.get("db")
    if isinstance(migrate_db, click.Group):
        app.cli.add_command(_db_group_creating_database(migrate_db))


@click.command("devserver")
@click.option("--port", envvar="PORT", default=8000, show_default=True, help="Web port.")
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=ROOT,
    help="Where the Procfile is and var/ goes (default: this checkout).",
)
def devserver_command(port: int, project_dir: Path) -> None:
    """Run the whole stack locally (what `make run` runs).

    Migrates (creating the database if missing), keeps a dev token in var/dev-token, runs
    web, worker, scheduler (and an embedded Redis unless REDIS_URL is set), prints `ready`
    when all are up; Ctrl-C stops them all."""
    from api.devserver import DevserverError, run_devserver

    try:
        code = run_devserver(project_dir.resolve(), port)
    except DevserverError as exc:
        raise click.ClickException(str(exc)) from None
    raise SystemExit(code)


@click.command("listen")
@click.option("--port", default=9999, show_default=True, help="Port (0 picks a free one).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--secret", default=None, help="The endpoint's whsec_... secret, to verify.")
def listen_command(port: int, host: str, secret: str | None) -> None:
    """Receive webhooks locally and check their signatures.

    Prints each request (id, event type, body) and whether its signature verifies with
    --secret; answers 204."""
    from api.listen import run_listener

    run_listener(host, port, secret)


cli = FlaskGroup(
    name="herald",
    create_app=create_app,
    add_default_commands=False,  # no `herald run`: `herald devserver` runs the whole stack
    add_version_option=False,
    help="Herald, a Svix-compatible webhook service. The app's commands (db, token, "
    "scenario) are those of `flask --app api`.",
)
# one app: no --app / --env-file / --debug (`flask --app api` keeps them)
cli.params = [p for p in cli.params if p.name not in ("app", "env_file", "debug")]
for command in (devserver_command, listen_command, shell_command, routes_command):
    cli.add_command(command)


def main() -> None:
    """Console script entry point (`herald`, from pyproject.toml)."""
    cli.main(prog_name="herald")
