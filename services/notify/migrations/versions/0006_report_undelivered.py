"""undelivered non-urgent alerts are told one level up (escalation.report_undelivered), marked
in escalated_at; those that failed before this version and are older than an identification
period are marked as told, so the upgrade does not send notices about months-old alerts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 23:00:00.000000

"""

from datetime import UTC, datetime, timedelta
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# rules §4.9: an alert older than the identification period is about a case decided (or
# overdue and escalated by risk) since; newer ones are still worth telling the level above
STALE = timedelta(days=15)


def upgrade() -> None:
    """Mark the old failed non-urgent alerts as told."""
    notifications = sa.table(
        "notifications",
        sa.column("status", sa.String),
        sa.column("priority", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("escalated_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.execute(
        notifications.update()
        .where(
            notifications.c.status == "failed",
            notifications.c.priority != "urgent",
            notifications.c.escalated_at.is_(None),
            notifications.c.created_at < now - STALE,
        )
        .values(escalated_at=now)
    )


def downgrade() -> None:
    """Nothing to undo: escalated_at of a non-urgent alert is ignored by older versions."""
