"""feed batches: Idempotency-Key, upload attempt, last commit, digest of the lines received

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 08:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("feed_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempt_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("lines_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ux_feed_batches_department_key", ["department", "idempotency_key"], unique=True
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("feed_batches", schema=None) as batch_op:
        batch_op.drop_index("ux_feed_batches_department_key")
        batch_op.drop_column("lines_sha256")
        batch_op.drop_column("attempt_id")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("idempotency_key")
