"""income_records: the dated income history the rules §7.1 income clock reads

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-15 10:00:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema. A household monitored before has no history yet: its first new figure
    starts from what its ledger row says (monitoring.record_income)."""
    op.create_table(
        "income_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_on", sa.Date(), nullable=False),
        sa.Column("per_capita_income", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("restart", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_income_records_household_id", "income_records", ["household_id"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_income_records_household_id", table_name="income_records")
    op.drop_table("income_records")
