"""household_signals: a feed record's batch, line and outcome, for the department's results

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-14 10:00:00.000000

"""

from typing import Any, Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    # rules §8.2: the department's batch and the record's line in it (null for other signals)
    ("batch_id", sa.String(length=64)),
    ("line", sa.Integer()),
    # no_risk | case_opened | case_joined | monitored, and the case opened or joined
    ("outcome", sa.String(length=20)),
    ("case_id", sa.String(length=36)),
]


def upgrade() -> None:
    """Upgrade schema. Nullable columns without a default: PostgreSQL adds them without
    rewriting the table. Rows written before stay null (their batches have no results)."""
    with op.batch_alter_table("household_signals", schema=None) as batch_op:
        for name, kind in COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))
    # a batch's records in line order, the outcome in the index so the summary's count by
    # outcome reads the index alone
    op.create_index(
        "ix_household_signals_batch_line",
        "household_signals",
        ["batch_id", "line"],
        unique=False,
        postgresql_include=["outcome"],
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_household_signals_batch_line", table_name="household_signals")
    with op.batch_alter_table("household_signals", schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
