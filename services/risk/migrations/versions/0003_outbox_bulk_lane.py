"""outbox.bulk: a department feed's case events, published after the others where no
household's order changes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 04:00:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

UNPUBLISHED = "published_at IS NULL AND {} bulk"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("bulk", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    for name, columns, where in (
        ("ix_outbox_unpublished_direct", ["id"], UNPUBLISHED.format("NOT")),
        ("ix_outbox_unpublished_bulk", ["key", "id"], UNPUBLISHED.format("")),
    ):
        op.create_index(
            name,
            "outbox",
            columns,
            unique=False,
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_outbox_unpublished_bulk", table_name="outbox")
    op.drop_index("ix_outbox_unpublished_direct", table_name="outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("bulk")
