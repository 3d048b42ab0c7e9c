"""Risk composition root."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.risk import handlers
from services.risk.api import router
from services.risk.config import RiskSettings
from services.risk.models import metadata
from shared.clock import Clock, SystemClock
from shared.service import ConsumerSpec, Runtime, create_service_app


def create_app(settings: RiskSettings | None = None, clock: Clock | None = None) -> FastAPI:
    """The risk engine: signals in, cases out."""
    settings = settings or RiskSettings()
    consumer = ConsumerSpec(
        name="risk",
        topics=["signals"],
        handlers={
            "DeclarationSubmitted": partial(handlers.on_declaration, settings=settings),
        },
    )
    runtime = Runtime(
        settings=settings,
        metadata=metadata,
        service_dir=Path(__file__).parent,
        consumers=[consumer],
        clock=clock or SystemClock(),
    )
    return create_service_app(runtime, title="Holdline risk", routers=[router])
