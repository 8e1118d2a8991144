"""event_type.retry_schedule; message_attempt.sent_headers and response_headers

Revision ID: e6f2a3b4c5d6
Revises: d5e1f2a3b4c5
Create Date: 2026-12-01 23:00:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "e6f2a3b4c5d6"
down_revision = "d5e1f2a3b4c5"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade():
    with op.batch_alter_table("event_type", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_schedule", _json(), nullable=True))
    with op.batch_alter_table("message_attempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_headers", _json(), nullable=True))
        batch_op.add_column(sa.Column("response_headers", _json(), nullable=True))


def downgrade():
    with op.batch_alter_table("message_attempt", schema=None) as batch_op:
        batch_op.drop_column("response_headers")
        batch_op.drop_column("sent_headers")
    with op.batch_alter_table("event_type", schema=None) as batch_op:
        batch_op.drop_column("retry_schedule")
