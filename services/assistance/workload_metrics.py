"""Cadre workload as county-level gauges (rules §6.9): bounded labels, never one per cadre."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import and_, func, select

from services.assistance.models import cadres, households, responsibilities
from shared.db import UnitOfWork
from shared.service import Runtime

log = logging.getLogger(__name__)

CADRE_HOUSEHOLDS = Gauge(
    "holdline_cadre_households",
    "Households held by active responsible cadres, by county and cadre rank",
    ["county", "rank"],
)
CADRE_LOAD_RATIO = Gauge(
    "holdline_cadre_load_ratio",
    'Households held by capped-rank cadres over their "321" capacity (1 = every one full)',
    ["county"],
)
CADRES_AT_CAPACITY = Gauge(
    "holdline_cadres_at_capacity",
    "Active capped-rank cadres who cannot take another household",
    ["county"],
)
HOUSEHOLDS_WITHOUT_CADRE = Gauge(
    "holdline_households_without_cadre",
    "Monitored households with no responsible cadre",
    ["county"],
)


async def refresh_workload(
    uow_factory: Callable[[], UnitOfWork], capacities: Mapping[str, int | None]
) -> None:
    """Recompute the gauges from the roster and the open responsibilities."""
    held = (
        select(responsibilities.c.cadre_id, func.count().label("load"))
        .where(responsibilities.c.ended_at.is_(None))
        .group_by(responsibilities.c.cadre_id)
        .subquery()
    )
    roster = (
        select(cadres.c.rank, cadres.c.township_code, func.coalesce(held.c.load, 0).label("load"))
        .outerjoin(held, held.c.cadre_id == cadres.c.id)
        .where(cadres.c.active.is_(True))
    )
    county = func.substr(households.c.village_code, 1, 6)
    waiting = (
        select(county.label("county"), func.count().label("n"))
        .outerjoin(
            responsibilities,
            and_(
                responsibilities.c.household_id == households.c.household_id,
                responsibilities.c.ended_at.is_(None),
            ),
        )
        .where(households.c.status == "monitored", responsibilities.c.id.is_(None))
        .group_by(county)
    )
    async with uow_factory() as uow:
        rows = (await uow.execute(roster)).all()
        unassigned = (await uow.execute(waiting)).all()
    by_rank: dict[tuple[str, str], int] = defaultdict(int)
    load: dict[str, int] = defaultdict(int)
    capacity: dict[str, int] = defaultdict(int)
    full: dict[str, int] = defaultdict(int)
    for row in rows:
        where = row.township_code[:6]
        by_rank[(where, row.rank)] += int(row.load)
        cap = capacities.get(row.rank)
        if cap is None:  # township and village cadres have no cap: no ratio to speak of
            continue
        load[where] += int(row.load)
        capacity[where] += cap
        full[where] += int(row.load) >= cap
    # replace, not update: a county whose cadres all left must not keep its old figures
    for gauge in (CADRE_HOUSEHOLDS, CADRE_LOAD_RATIO, CADRES_AT_CAPACITY, HOUSEHOLDS_WITHOUT_CADRE):
        gauge.clear()
    for (where, rank), n in by_rank.items():
        CADRE_HOUSEHOLDS.labels(where, rank).set(n)
    for where, cap in capacity.items():
        CADRE_LOAD_RATIO.labels(where).set(load[where] / cap if cap else 0.0)
        CADRES_AT_CAPACITY.labels(where).set(full[where])
    for row in unassigned:
        HOUSEHOLDS_WITHOUT_CADRE.labels(row.county).set(int(row.n))


def workload_job(
    capacities: Mapping[str, int | None], every_seconds: float
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A background job refreshing the gauges every `every_seconds` (its task is named after
    it in logs, /healthz and `holdline_background_loop_stopped`)."""

    async def workload_gauges(runtime: Runtime) -> None:
        while True:
            try:
                await refresh_workload(runtime.uow, capacities)
            except Exception:
                log.exception("workload gauges not refreshed; retrying next time")
            await asyncio.sleep(every_seconds)

    return workload_gauges
