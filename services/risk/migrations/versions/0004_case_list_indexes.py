"""cases: indexes for GET /v1/cases, its orders and its filters

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-12 10:00:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

HOME_VISIT_PENDING = "status = 'open' AND home_visited_at IS NULL AND home_visit_due IS NOT NULL"
PAPERWORK_PENDING = "status = 'open' AND paperwork_due IS NOT NULL"
INDEXES = [
    # a region's cases newest or oldest first (the jurisdiction is a village_code range)
    ("ix_cases_region_opened", ["village_code", "opened_at"], None),
    # every case newest or oldest first, a page after (opened_at, id)
    ("ix_cases_opened", ["opened_at", "id"], None),
    # a household's cases, whatever their status
    ("ix_cases_household", ["household_id", "opened_at"], None),
    # the open (or any status's) cases by deadline, and overdue (rules §4.9, §4.12)
    ("ix_cases_status_deadline", ["status", "deadline", "id"], None),
    # home visits still due (rules §4.10) and green-channel paperwork (rules §5.3)
    ("ix_cases_home_visit_pending", ["home_visit_due"], HOME_VISIT_PENDING),
    ("ix_cases_paperwork_pending", ["paperwork_due"], PAPERWORK_PENDING),
]


def upgrade() -> None:
    """Upgrade schema."""
    for name, columns, where in INDEXES:
        condition = sa.text(where) if where else None
        op.create_index(
            name,
            "cases",
            columns,
            unique=False,
            postgresql_where=condition,
            sqlite_where=condition,
        )


def downgrade() -> None:
    """Downgrade schema."""
    for name, _, _ in reversed(INDEXES):
        op.drop_index(name, table_name="cases")
