"""submissions: the outcome of the case (identified, rejected with its reason, already
monitored), the green channel and when it was decided

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("outcome_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("monitoring_kind", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("new_risk_types", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("green_channel", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_column("decided_at")
        batch_op.drop_column("green_channel")
        batch_op.drop_column("new_risk_types")
        batch_op.drop_column("monitoring_kind")
        batch_op.drop_column("outcome_reason")
        batch_op.drop_column("outcome")
