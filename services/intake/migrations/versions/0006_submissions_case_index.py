"""submissions by case: a case's outcome events update the submissions linked to it

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 18:30:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_submissions_case_id", "submissions", ["case_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_submissions_case_id", table_name="submissions")
