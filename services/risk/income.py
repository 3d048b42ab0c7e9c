"""The dated income history the rules §7.1 income clock reads (`income_records`): reading it
for a set of households, and the household values a run of figures gives."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from services.risk.config import RiskSettings
from services.risk.elimination import IncomeRecord, income_run
from services.risk.models import income_records
from services.risk.thresholds import threshold_for
from shared.db import UnitOfWork, one_of

Figure = tuple[date, float | None, bool]  # recorded on, per-capita income, restart
_INCOME_HISTORY = (
    select(
        income_records.c.household_id, income_records.c.recorded_on,
        income_records.c.per_capita_income, income_records.c.restart,
    )
    .where(one_of(income_records.c.household_id, "ids"))
    .order_by(income_records.c.id)
)  # fmt: skip


async def income_histories(uow: UnitOfWork, household_ids: set[str]) -> dict[str, list[Figure]]:
    """The households' income histories (`income_records`), each in the order recorded."""
    history: dict[str, list[Figure]] = {}
    rows = await uow.execute(_INCOME_HISTORY, {"ids": sorted(household_ids)})
    for r in rows:
        history.setdefault(r.household_id, []).append(
            (r.recorded_on, r.per_capita_income, r.restart)
        )
    return history


def income_values(
    row: Any, settings: RiskSettings, history: list[Figure], new: list[Figure]
) -> dict[str, Any]:
    """rules §7.1: the household's values once the `new` figures join its `history`: the
    income known now (the latest by date) and since when it has stayed above the threshold
    in force on each day (elimination.income_run). A household without a history yet
    (monitored before one was kept) starts from what its row says."""
    village = row.village_code if row is not None else ""

    def dated(day: date, value: float | None, restart: bool = False) -> IncomeRecord:
        threshold = threshold_for(settings.thresholds, village, day)
        above = threshold is not None and value is not None and value > threshold.annual_yuan
        return IncomeRecord(on=day, income=value, above=above, restart=restart)

    records = [dated(*figure) for figure in history]
    if not records and row is not None and row.per_capita_income is not None:
        since = row.income_above_since
        records.append(
            IncomeRecord(on=since, income=row.per_capita_income, above=True)
            if since is not None
            else IncomeRecord(on=date.min, income=row.per_capita_income, above=False)
        )
    records += [dated(*figure) for figure in new]
    latest, since = income_run(records)
    values: dict[str, Any] = {"income_above_since": since}
    if latest.income is not None:
        values["per_capita_income"] = latest.income
    return values
