"""households.last_visit_on and new_risks_since: the days rules §7.1's visit evidence needs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 22:30:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema. Rows from before have neither day: their next visit counts, as before."""
    op.add_column("households", sa.Column("last_visit_on", sa.Date(), nullable=True))
    op.add_column("households", sa.Column("new_risks_since", sa.Date(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("households", "new_risks_since")
    op.drop_column("households", "last_visit_on")
