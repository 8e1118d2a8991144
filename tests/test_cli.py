"""Operator CLI commands."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from api.extensions import db
from api.models import ApiToken, Application, Delivery, Message, Organization
from api.services.tokens import authenticate


def test_token_create_prints_working_token_last(app: Flask, db_session: object) -> None:
    result = app.test_cli_runner().invoke(args=["token", "create", "--org", "cli-org"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    principal = authenticate(token)
    org = db.session.scalar(select(Organization).where(Organization.name == "cli-org"))
    assert principal is not None and org is not None and principal.org_id == org.id


def test_token_create_reuses_existing_org(app: Flask, db_session: object) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["token", "create", "--org", "twice"])
    runner.invoke(args=["token", "create", "--org", "twice"])
    orgs = db.session.scalar(select(func.count()).where(Organization.name == "twice"))
    tokens = db.session.scalar(
        select(func.count(ApiToken.id)).join(Organization).where(Organization.name == "twice")
    )
    assert (orgs, tokens) == (1, 2)


def test_token_create_requires_org(app: Flask, db_session: object) -> None:
    result = app.test_cli_runner().invoke(args=["token", "create"])
    assert result.exit_code != 0 and "--org" in result.output


def test_scenario_demo_seeds_sandbox(app: Flask, db_session: object) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["scenario", "demo"])
    assert result.exit_code == 0, result.output
    assert "token:" in result.output and "message: user.signup" in result.output
    org = db.session.scalar(select(Organization).where(Organization.name == "demo"))
    assert org is not None
    app = db.session.scalar(select(Application).where(Application.org_id == org.id))
    assert app is not None and app.uid == "demo-shop"
    message = db.session.scalar(select(Message).where(Message.app_id == app.id))
    assert message is not None
    deliveries = db.session.scalars(select(Delivery).where(Delivery.msg_id == message.id)).all()
    assert len(deliveries) == 1  # the demo endpoint subscribes to user.signup
    again = runner.invoke(args=["scenario", "demo"])
    assert again.exit_code == 0, again.output
