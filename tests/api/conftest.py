"""Fixtures shared by the API tests: the test org's id and a committed application."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.extensions import db
from api.models import Application, Organization


@pytest.fixture
def org_id(auth_token: str) -> str:
    """The id of the org behind `auth_headers`."""
    found: str = db.session.scalar(select(Organization.id).where(Organization.name == "test-org"))
    return found


@pytest.fixture
def application(org_id: str) -> Application:
    """A committed application with uid `shop` in the test org."""
    app = Application(org_id=org_id, name="Shop", uid="shop")
    db.session.add(app)
    db.session.commit()
    return app
