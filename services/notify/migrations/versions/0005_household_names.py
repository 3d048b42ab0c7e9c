"""household_names: the household head's name risk last told (events schema 1.4), so alerts
name the family instead of its id

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 22:10:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "household_names",
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("head_name", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("household_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("household_names")
