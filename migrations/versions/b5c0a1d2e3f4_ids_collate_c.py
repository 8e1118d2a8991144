"""ids COLLATE "C" on PostgreSQL (byte order = creation order, whatever the database locale)

Revision ID: b5c0a1d2e3f4
Revises: 7d3e1c9a2b10
Create Date: 2026-11-21 12:50:00

"""

import sqlalchemy as sa
from alembic import op

revision = "b5c0a1d2e3f4"
down_revision = "7d3e1c9a2b10"
branch_labels = None
depends_on = None

# table -> id-valued columns (primary keys, foreign keys, denormalised ids)
ID_COLUMNS = {
    "organization": ["id"],
    "api_token": ["id", "org_id"],
    "application": ["id", "org_id"],
    "event_type": ["id", "org_id"],
    "endpoint": ["id", "app_id"],
    "message": ["id", "app_id", "org_id"],
    "delivery": ["id", "msg_id", "endpoint_id", "app_id"],
    "message_attempt": ["id", "msg_id", "endpoint_id", "delivery_id", "app_id"],
    "background_task": ["id", "org_id"],
}


def _retype(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite compares text byte-wise already
    for table, columns in ID_COLUMNS.items():
        for column in columns:
            op.alter_column(
                table,
                column,
                type_=sa.String(40, collation=collation),
                existing_type=sa.String(40),
                existing_nullable=False,
            )


def upgrade():
    _retype("C")


def downgrade():
    _retype(None)
