"""Notify composition root."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.notify import handlers
from services.notify.api import router
from services.notify.config import NotifySettings
from services.notify.models import metadata
from shared.clock import Clock, SystemClock
from shared.service import ConsumerSpec, Runtime, create_service_app

log = logging.getLogger(__name__)


def create_app(settings: NotifySettings | None = None, clock: Clock | None = None) -> FastAPI:
    """The notify service: plans in, webhook calls out."""
    settings = settings or NotifySettings()

    async def dispatcher(runtime: Runtime) -> None:
        rng = random.Random()
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    attempted = await handlers.deliver_due(
                        uow_factory=runtime.uow, http=http, settings=settings, rng=rng
                    )
                except Exception:
                    log.exception("dispatch pass failed")
                    attempted = 0
                if not attempted:
                    await asyncio.sleep(settings.dispatch_poll_seconds)

    runtime = Runtime(
        settings=settings,
        metadata=metadata,
        service_dir=Path(__file__).parent,
        consumers=[
            ConsumerSpec(
                name="notify",
                topics=["assistance"],
                handlers={"PlanCreated": handlers.on_plan_created},
            )
        ],
        clock=clock or SystemClock(),
        background=[dispatcher],
    )
    return create_service_app(runtime, title="Holdline notify", routers=[router])
