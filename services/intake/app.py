"""Intake composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.intake.api import router
from services.intake.config import IntakeSettings
from services.intake.models import metadata
from shared.clock import Clock, SystemClock
from shared.service import Runtime, create_service_app


def create_app(settings: IntakeSettings | None = None, clock: Clock | None = None) -> FastAPI:
    """The intake service: HTTP in, outbox relay out."""
    runtime = Runtime(
        settings=settings or IntakeSettings(),
        metadata=metadata,
        service_dir=Path(__file__).parent,
        clock=clock or SystemClock(),
    )
    return create_service_app(runtime, title="Holdline intake", routers=[router])
