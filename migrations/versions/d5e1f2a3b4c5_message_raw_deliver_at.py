"""message: raw payloads (raw, content_type) and deliverAt

Revision ID: d5e1f2a3b4c5
Revises: c4d2e6f8a1b3
Create Date: 2026-12-01 22:12:00

"""

import sqlalchemy as sa
from alembic import op

from api.extensions import UTCDateTime

revision = "d5e1f2a3b4c5"
down_revision = "c4d2e6f8a1b3"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("raw", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("content_type", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("deliver_at", UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("deliver_at")
        batch_op.drop_column("content_type")
        batch_op.drop_column("raw")
