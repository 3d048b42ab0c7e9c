"""notifications.from_feed: a department feed's alerts are claimed after the others of
their priority (both due indexes ordered by it)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 03:40:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("from_feed", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.drop_index("ix_notifications_due_priority")
        batch_op.create_index(
            "ix_notifications_due_priority",
            ["status", "priority", "from_feed", "next_attempt_at"],
            unique=False,
        )
        batch_op.drop_index("ix_notifications_due")
        batch_op.create_index(
            "ix_notifications_due", ["status", "from_feed", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_due")
        batch_op.create_index("ix_notifications_due", ["status", "next_attempt_at"], unique=False)
        batch_op.drop_index("ix_notifications_due_priority")
        batch_op.create_index(
            "ix_notifications_due_priority",
            ["status", "priority", "next_attempt_at"],
            unique=False,
        )
        batch_op.drop_column("from_feed")
