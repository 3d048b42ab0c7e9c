"""The household head's name, as risk last told it (events schema 1.4 `head_name`): every alert
about the household names the family with it, also those of events that carry no name
(assistance's plans, assignments, missed visits; escalations; digests). rules §4.13: a name may
be shown; a resident ID or phone typed into it is masked where it is shown (templates)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from services.notify.models import household_names
from shared.db import UnitOfWork, one_of

NAME_CHARS = 100  # the column's width, as risk's households.head_name
_NAMES = select(household_names.c.household_id, household_names.c.head_name).where(
    one_of(household_names.c.household_id, "households")
)


def name_in(payload: Any) -> str | None:
    """The head's name an event tells, or None (an event without one, an older risk, a
    household nobody has named)."""
    name = payload.get("head_name")
    if not isinstance(name, str):
        return None
    return " ".join(name.split())[:NAME_CHARS] or None


async def remember(uow: UnitOfWork, names: Mapping[str, str]) -> None:
    """Upsert the households' names in the caller's transaction: a redelivered event writes
    the same name again, and a later event's name replaces an earlier one."""
    if names:
        now = uow.clock.now()
        rows = [{"household_id": h, "head_name": n, "updated_at": now} for h, n in names.items()]
        await uow.execute(_upsert(uow.conn.dialect.name), rows)


async def names_of(uow: UnitOfWork, household_ids: Sequence[str]) -> dict[str, str]:
    """The known names of these households, by id (those with none are left out)."""
    wanted = list(dict.fromkeys(household_ids))
    if not wanted:
        return {}
    rows = (await uow.execute(_NAMES, {"households": wanted})).all()
    return {row.household_id: row.head_name for row in rows}


@cache
def _upsert(dialect: str) -> Any:
    """The upsert for one dialect, built once."""
    stmt = (sqlite if dialect == "sqlite" else postgresql).insert(household_names)
    # most events repeat the name already stored: those rows are left as they are (no new row
    # version, no WAL), only a new or changed name is written
    return stmt.on_conflict_do_update(
        index_elements=["household_id"],
        set_={"head_name": stmt.excluded.head_name, "updated_at": stmt.excluded.updated_at},
        where=household_names.c.head_name != stmt.excluded.head_name,
    )
