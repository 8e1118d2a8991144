"""app_routing: a routing version per application, bumped by triggers on endpoint

Every writer of an endpoint's routing columns (the API, auto-disable, a cascade from an
application's delete, a hand-written UPDATE) bumps its application's version, because the
database does it: the ingest routing cache (api/services/routing.py) can trust it.

SQLite: Alembic's batch mode re-creates a table to alter it, which drops its triggers; a later
migration that alters `endpoint` in batch mode must create them again (`create_triggers`).

Revision ID: a7c1d2e3f4b5
Revises: e6f2a3b4c5d6
Create Date: 2026-12-02 00:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "a7c1d2e3f4b5"
down_revision = "e6f2a3b4c5d6"
branch_labels = None
depends_on = None

ROUTING_COLUMNS = "disabled, event_types, channels, app_id"
CHANGED = (
    "OLD.disabled IS DISTINCT FROM NEW.disabled"
    " OR OLD.event_types IS DISTINCT FROM NEW.event_types"
    " OR OLD.channels IS DISTINCT FROM NEW.channels"
    " OR OLD.app_id IS DISTINCT FROM NEW.app_id"
)


def _bump(row: str, *, postgresql: bool) -> str:
    """Statements that bump the version of `row`'s (NEW or OLD) application."""
    ignore = "ON CONFLICT (app_id) DO NOTHING" if postgresql else ""
    insert = "INSERT INTO" if postgresql else "INSERT OR IGNORE INTO"
    return (
        f"{insert} app_routing (app_id, version) VALUES ({row}.app_id, 0) {ignore};"
        f" UPDATE app_routing SET version = version + 1 WHERE app_id = {row}.app_id;"
    )


def create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION herald_bump_routing() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            f"  IF TG_OP <> 'INSERT' THEN {_bump('OLD', postgresql=True)} END IF;\n"
            "  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.app_id IS DISTINCT FROM"
            f" OLD.app_id) THEN {_bump('NEW', postgresql=True)} END IF;\n"
            "  RETURN NULL;\n"
            "END $$"
        )
        op.execute(
            "CREATE TRIGGER endpoint_routing_write AFTER INSERT OR DELETE ON endpoint"
            " FOR EACH ROW EXECUTE FUNCTION herald_bump_routing()"
        )
        op.execute(
            f"CREATE TRIGGER endpoint_routing_update AFTER UPDATE OF {ROUTING_COLUMNS}"
            f" ON endpoint FOR EACH ROW WHEN ({CHANGED}) EXECUTE FUNCTION herald_bump_routing()"
        )
        return
    op.execute(
        "CREATE TRIGGER endpoint_routing_insert AFTER INSERT ON endpoint"
        f" BEGIN {_bump('NEW', postgresql=False)} END"
    )
    op.execute(
        "CREATE TRIGGER endpoint_routing_delete AFTER DELETE ON endpoint"
        f" BEGIN {_bump('OLD', postgresql=False)} END"
    )
    op.execute(
        f"CREATE TRIGGER endpoint_routing_update AFTER UPDATE OF {ROUTING_COLUMNS} ON endpoint"
        f" WHEN {CHANGED.replace('IS DISTINCT FROM', 'IS NOT')}"
        f" BEGIN {_bump('OLD', postgresql=False)} {_bump('NEW', postgresql=False)} END"
    )


def drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS endpoint_routing_update ON endpoint")
        op.execute("DROP TRIGGER IF EXISTS endpoint_routing_write ON endpoint")
        op.execute("DROP FUNCTION IF EXISTS herald_bump_routing()")
        return
    for name in ("endpoint_routing_insert", "endpoint_routing_delete", "endpoint_routing_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade():
    id_type = sa.String(length=40).with_variant(sa.String(length=40, collation="C"), "postgresql")
    op.create_table(
        "app_routing",
        sa.Column("app_id", id_type, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_app_routing")),
    )
    create_triggers()


def downgrade():
    drop_triggers()
    op.drop_table("app_routing")
