"""Assistance composition root."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.assistance import handlers
from services.assistance.api import router
from services.assistance.config import AssistanceSettings
from services.assistance.models import metadata
from shared.clock import Clock, SystemClock
from shared.service import ConsumerSpec, Runtime, create_service_app


def create_app(settings: AssistanceSettings | None = None, clock: Clock | None = None) -> FastAPI:
    """The assistance service: cases in, plans out."""
    settings = settings or AssistanceSettings()
    consumer = ConsumerSpec(
        name="assistance",
        topics=["cases"],
        handlers={"CaseOpened": partial(handlers.on_case_opened, settings=settings)},
    )
    runtime = Runtime(
        settings=settings,
        metadata=metadata,
        service_dir=Path(__file__).parent,
        consumers=[consumer],
        clock=clock or SystemClock(),
    )
    return create_service_app(runtime, title="Holdline assistance", routers=[router])
