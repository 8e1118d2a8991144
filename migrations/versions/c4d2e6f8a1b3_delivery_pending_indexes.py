"""delivery: partial indexes over pending rows (the batch claim) and running leases; vacuumed
often on PostgreSQL (a queue table: delivered rows leave dead index entries at its head)

Revision ID: c4d2e6f8a1b3
Revises: b5c0a1d2e3f4
Create Date: 2026-12-01 22:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c4d2e6f8a1b3"
down_revision = "b5c0a1d2e3f4"
branch_labels = None
depends_on = None

PENDING = sa.text("next_attempt_at IS NOT NULL")
LEASED = sa.text("lease_token IS NOT NULL")


def upgrade():
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_due")
        batch_op.drop_index("ix_delivery_endpoint_due")
        batch_op.create_index(
            "ix_delivery_due", ["next_attempt_at"], postgresql_where=PENDING, sqlite_where=PENDING
        )
        batch_op.create_index(
            "ix_delivery_pending",
            ["endpoint_id", "next_attempt_at"],
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )
        batch_op.create_index(
            "ix_delivery_leased", ["endpoint_id"], postgresql_where=LEASED, sqlite_where=LEASED
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE delivery SET (autovacuum_vacuum_scale_factor = 0.01,"
            " autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0)"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE delivery RESET (autovacuum_vacuum_scale_factor,"
            " autovacuum_vacuum_threshold, autovacuum_vacuum_cost_delay)"
        )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_leased")
        batch_op.drop_index("ix_delivery_pending")
        batch_op.drop_index("ix_delivery_due")
        batch_op.create_index("ix_delivery_endpoint_due", ["endpoint_id", "next_attempt_at"])
        batch_op.create_index("ix_delivery_due", ["next_attempt_at"])
