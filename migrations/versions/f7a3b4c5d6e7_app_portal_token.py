"""app_portal_token: application-scoped tokens of the consumer app portal

Revision ID: f7a3b4c5d6e7
Revises: a7c1d2e3f4b5
Create Date: 2026-12-08 10:00:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import api.extensions

revision = "f7a3b4c5d6e7"
down_revision = "a7c1d2e3f4b5"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine:
    return sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade():
    op.create_table(
        "app_portal_token",
        sa.Column("id", _id(), nullable=False),
        sa.Column("org_id", _id(), nullable=False),
        sa.Column("app_id", _id(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("capabilities", _json(), nullable=False),
        sa.Column("feature_flags", _json(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("expires_at", api.extensions.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", api.extensions.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["application.id"],
            name=op.f("fk_app_portal_token_app_id_application"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organization.id"],
            name=op.f("fk_app_portal_token_org_id_organization"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_portal_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_app_portal_token_token_hash")),
    )
    with op.batch_alter_table("app_portal_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_portal_token_app_id"), ["app_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_app_portal_token_org_id"), ["org_id"], unique=False)


def downgrade():
    with op.batch_alter_table("app_portal_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_portal_token_org_id"))
        batch_op.drop_index(batch_op.f("ix_app_portal_token_app_id"))
    op.drop_table("app_portal_token")
