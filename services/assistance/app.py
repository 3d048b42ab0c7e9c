"""Assistance composition root."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.assistance import closing, handlers, tracking
from services.assistance.api import router
from services.assistance.api_roster import router as roster_router
from services.assistance.config import AssistanceSettings
from services.assistance.models import metadata
from services.assistance.opening import OPENINGS, on_openings
from services.assistance.visiting import raise_overdue_visits
from services.assistance.workload_metrics import workload_job
from shared.clock import Clock, SystemClock
from shared.kafka import Handler, in_one_transaction
from shared.service import ConsumerSpec, Runtime, create_service_app

log = logging.getLogger(__name__)


def consumer_spec(settings: AssistanceSettings) -> ConsumerSpec:
    """The `cases` consumer: every case event assistance acts on, runs of them in one
    transaction (the one-event path stays for retries and the DLQ)."""
    table: dict[str, Handler] = {
        "CaseOpened": partial(handlers.on_case_opened, settings=settings),
        "GreenChannelOpened": partial(handlers.on_green_channel_opened, settings=settings),
        "HouseholdIdentified": partial(handlers.on_household_identified, settings=settings),
        # rules §4 channel 4: a new signal about a monitoring object
        "MonitoredHouseholdReassessed": partial(
            tracking.on_household_reassessed, settings=settings
        ),
        # a county placed an unplaced case in a village: the plan follows (step village_assigned)
        "CaseStepCompleted": partial(handlers.on_case_step, settings=settings),
        "CaseRejected": partial(closing.on_case_rejected, settings=settings),
        "RiskEliminated": partial(closing.on_risk_eliminated, settings=settings),
        "EliminationRolledBack": partial(closing.on_elimination_rolled_back, settings=settings),
    }
    return ConsumerSpec(
        name="assistance",
        topics=["cases"],
        handlers=table,
        # a feed's openings, nearly all through the green channel, are planned together
        batch_handler=in_one_transaction(
            table, bulk_types=OPENINGS, bulk=partial(on_openings, settings=settings)
        ),
    )


def create_app(settings: AssistanceSettings | None = None, clock: Clock | None = None) -> FastAPI:
    """The assistance service: cases in; plans, measures, cadres and visits out."""
    settings = settings or AssistanceSettings()

    async def overdue_visits(runtime: Runtime) -> None:
        """rules §6.10: look for missed monthly visits every `visit_check_seconds`."""
        while True:
            try:
                await raise_overdue_visits(uow_factory=runtime.uow, settings=settings)
            except Exception:
                log.exception("overdue-visit pass failed; retrying next time")
            await asyncio.sleep(settings.visit_check_seconds)

    runtime = Runtime(
        settings=settings,
        metadata=metadata,
        service_dir=Path(__file__).parent,
        consumers=[consumer_spec(settings)],
        clock=clock or SystemClock(),
        background=[overdue_visits, workload_job(settings.capacities(), settings.workload_seconds)],
    )
    return create_service_app(runtime, title="Holdline assistance", routers=[router, roster_router])
