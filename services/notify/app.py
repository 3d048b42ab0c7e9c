"""Notify composition root."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.notify import api, api_acks, delivery, digests, escalation, handlers
from services.notify.breaker import BreakerBoard
from services.notify.channels import Channel, HttpSlots, build_channels
from services.notify.config import NotifySettings
from services.notify.models import metadata
from shared.clock import Clock, SystemClock
from shared.kafka import Handler
from shared.service import ConsumerSpec, Runtime, create_service_app

log = logging.getLogger(__name__)
ROUTED = (
    "CaseOpened",
    "CaseMerged",  # only a merge that started the home-visit clock is routed (rules §4.10)
    "CaseDeadlineApproaching",
    "CaseOverdue",
    "GreenChannelOpened",
    "PlanCreated",
    "VisitOverdue",
    "CaseStepCompleted",  # only a step that leaves the case waiting for someone else is routed
    "HouseholdIdentified",
    "CaseRejected",
    "RiskEliminated",
    "MonitoredHouseholdReassessed",  # levels green_channel and new_risk; None tells nobody
)


def consumer_spec(settings: NotifySettings, wake: Callable[[], None] | None = None) -> ConsumerSpec:
    """The notify consumer group: the roster projection and every routed event. Runs of
    events are handled in one transaction; the one-event handlers are the fallback."""
    routed: Handler = partial(handlers.on_routed_event, settings=settings)
    table: dict[str, Handler] = {name: routed for name in ROUTED}
    table["CadreRegistered"] = partial(handlers.on_cadre_registered, settings=settings)
    table["CadreAssigned"] = partial(handlers.on_cadre_assigned, settings=settings)
    return ConsumerSpec(
        name="notify",
        topics=["cases", "assistance"],
        handlers=table,
        batch_handler=partial(handlers.on_events, settings=settings, wake=wake),
    )


async def _loop(
    name: str, every: float, job: Callable[[], Awaitable[int]], wake: asyncio.Event | None = None
) -> None:
    """Run `job` until cancelled; when it finds nothing, wait `every` seconds or until woken."""
    while True:
        if wake is not None:
            wake.clear()
        try:
            busy = await job()
        except Exception:
            log.exception("%s pass failed", name)
            busy = 0
        if busy:
            continue
        if wake is None:
            await asyncio.sleep(every)
            continue
        try:
            await asyncio.wait_for(wake.wait(), every)
        except TimeoutError:
            pass


def breaker_board(settings: NotifySettings) -> BreakerBoard:
    """The circuit breakers of one process, from settings."""
    return BreakerBoard(
        settings.breaker_failure_threshold,
        timedelta(seconds=settings.breaker_cooldown_seconds),
        settings.breaker_window,
        settings.breaker_failure_ratio,
    )


def create_app(
    settings: NotifySettings | None = None,
    clock: Clock | None = None,
    channels: dict[str, Channel] | None = None,
) -> FastAPI:
    """The notify service: cases and assistance events in, messages out."""
    settings = settings or NotifySettings()
    breakers = breaker_board(settings)
    new_notifications = asyncio.Event()

    async def dispatcher(runtime: Runtime) -> None:
        rng = random.Random()
        http = HttpSlots(settings.dispatch_concurrency)
        try:
            wired = channels or build_channels(http, settings)

            async def one_pass() -> int:
                claimed = await delivery.deliver_due(
                    uow_factory=runtime.uow,
                    channels=wired,
                    breakers=breakers,
                    settings=settings,
                    rng=rng,
                )
                # a pass that claimed less than a batch left nothing due behind it: the next
                # one waits to be woken (new notifications) or for the poll (retries coming
                # due) instead of following at once to find nothing (a transaction and two
                # queries after every pass under light load)
                return claimed if claimed >= settings.dispatch_batch_size else 0

            await _loop("dispatch", settings.dispatch_poll_seconds, one_pass, new_notifications)
        finally:
            await http.aclose()

    async def scheduler(runtime: Runtime) -> None:
        async def one_pass() -> int:
            await escalation.escalate_due(uow_factory=runtime.uow, settings=settings)
            await escalation.report_undelivered(uow_factory=runtime.uow, settings=settings)
            await digests.release_digests(uow_factory=runtime.uow, settings=settings)
            return 0

        await _loop("schedule", settings.schedule_poll_seconds, one_pass)

    async def backlog_gauges(runtime: Runtime) -> None:
        async def one_pass() -> int:
            await delivery.measure_backlog(runtime.uow)
            return 0

        await _loop("backlog gauges", settings.backlog_metrics_seconds, one_pass)

    runtime = Runtime(
        settings=settings,
        metadata=metadata,
        service_dir=Path(__file__).parent,
        consumers=[consumer_spec(settings, wake=new_notifications.set)],
        clock=clock or SystemClock(),
        background=[dispatcher, scheduler, backlog_gauges],
    )
    app = create_service_app(
        runtime, title="Holdline notify", routers=[api.router, api_acks.router]
    )
    app.state.breakers = breakers
    # a browser following an acknowledgement link reads a refusal as a page, not as JSON
    app.add_exception_handler(api_acks.HtmlRefusal, api_acks.html_refusal)
    return app
