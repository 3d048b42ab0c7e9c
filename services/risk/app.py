"""Risk composition root."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from services.risk import handlers, monitoring
from services.risk import repository as repo
from services.risk.api import router
from services.risk.config import RiskSettings
from services.risk.feed_results import router as feed_results_router
from services.risk.ledger import router as ledger_router
from services.risk.models import metadata
from services.risk.scheduler import deadline_job
from services.risk.thresholds import behind
from shared.clock import Clock, SystemClock
from shared.db import UnitOfWork
from shared.events import Envelope
from shared.kafka import BatchHandler, Handler, in_one_transaction
from shared.service import ConsumerSpec, Runtime, create_service_app


def signal_handlers(settings: RiskSettings) -> dict[str, Handler]:
    """rules §4 channels: every signal type re-evaluates its household."""
    return {
        "DeclarationSubmitted": partial(handlers.on_declaration, settings=settings),
        "CadreReportSubmitted": partial(handlers.on_cadre_report, settings=settings),
        "FeedRecordReceived": partial(handlers.on_feed_record, settings=settings),
        "FeedRecordsReceived": partial(handlers.on_feed_slice, settings=settings),
        "RegistryRecordReceived": partial(handlers.on_registry_record, settings=settings),
    }


def signal_consumers(settings: RiskSettings) -> list[ConsumerSpec]:
    """Two groups read the signals topic. `risk` takes the farmers', cadres' and registry
    signals and passes over feed slices; `risk-feeds` takes only the slices. A declaration
    sent while a large feed is evaluated thus waits for no slice ahead of it in its partition
    (one household's slice record and declaration may be evaluated in either order; both lock
    the household, and one open case per household is a unique index)."""
    table = signal_handlers(settings)
    slices = {"FeedRecordsReceived": table.pop("FeedRecordsReceived")}
    # a polled batch of signals is evaluated in one transaction
    batch = partial(handlers.on_signal_batch, settings=settings)
    return [
        ConsumerSpec(name="risk", topics=["signals"], handlers=table, batch_handler=batch),
        ConsumerSpec(
            name="risk-feeds",
            topics=["signals"],
            handlers=slices,
            batch_handler=batch,
            dead_letter_unreadable=False,
        ),
    ]


def assistance_handlers(settings: RiskSettings) -> dict[str, Handler]:
    """rules §7: what the assistance side reports moves elimination forward."""
    return {
        "IncomeUpdated": partial(monitoring.on_income_updated, settings=settings),
        "VisitRecorded": partial(monitoring.on_visit_recorded, settings=settings),
        "MeasureCompleted": partial(monitoring.on_measure_completed, settings=settings),
        "MeasureAssigned": partial(monitoring.on_measure_assigned, settings=settings),
    }


def assistance_run(settings: RiskSettings) -> BatchHandler:
    """A run of assistance events in one transaction, its households locked first in id order
    (the handlers lock one at a time, in event order, which could deadlock with a signal batch)."""
    each = in_one_transaction(
        assistance_handlers(settings),
        bulk_types={"MeasureAssigned"},
        bulk=partial(monitoring.on_measures_assigned, settings=settings),
    )

    async def handle(*, uow: UnitOfWork, events: list[Envelope[Any]]) -> None:
        await repo.lock_households(uow, {e.household_id for e in events})
        await each(uow=uow, events=events)

    return handle


log = logging.getLogger("holdline.risk")


def warn_of_a_missing_year(settings: RiskSettings, clock: Clock) -> None:
    """The working-day calendar and the thresholds are published yearly: say so at start when
    this year's are missing."""
    calendar = settings.work_calendar
    year = calendar.local_date(clock.now()).year
    if year not in calendar.years():
        log.warning(
            "workdays_file %s lists no holidays for %d: working days count Monday to Friday "
            "until that year's arrangement is added",
            settings.workdays_file,
            year,
        )
    stale = behind(settings.thresholds, year)
    if stale:
        log.warning(
            "thresholds_file %s has no %d threshold for %s: the latest in force still applies "
            "until this year's is added",
            settings.thresholds_file,
            year,
            ", ".join(f"{e.region_prefix} ({e.label or e.year})" for e in stale),
        )


def create_app(settings: RiskSettings | None = None, clock: Clock | None = None) -> FastAPI:
    """The risk engine: signals in, cases out."""
    settings = settings or RiskSettings()
    clock = clock or SystemClock()
    warn_of_a_missing_year(settings, clock)
    runtime = Runtime(
        settings=settings,
        metadata=metadata,
        service_dir=Path(__file__).parent,
        consumers=[
            *signal_consumers(settings),
            ConsumerSpec(
                name="risk-assistance",
                topics=["assistance"],
                handlers=assistance_handlers(settings),
                # a feed's green-channel plans bring measures by the thousand: runs of them
                # share one transaction
                batch_handler=assistance_run(settings),
            ),
        ],
        clock=clock,
        background=[deadline_job(settings)],
    )
    return create_service_app(
        runtime, title="Holdline risk", routers=[router, ledger_router, feed_results_router]
    )
