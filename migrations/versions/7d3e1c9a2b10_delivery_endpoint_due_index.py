"""delivery: index (endpoint_id, next_attempt_at) for per-endpoint dispatch

Revision ID: 7d3e1c9a2b10
Revises: 42b42163bc68
Create Date: 2026-11-21 11:55:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '7d3e1c9a2b10'
down_revision = '42b42163bc68'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_endpoint_due', ['endpoint_id', 'next_attempt_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_endpoint_due')
