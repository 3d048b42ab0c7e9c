"""cases.objections: the objections to the public notice recorded with a case

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 23:00:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema. Cases from before have none recorded."""
    op.add_column(
        "cases", sa.Column("objections", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("cases", "objections")
