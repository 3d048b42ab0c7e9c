"""Intake composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.intake import contact_api, feeds_api, handlers, redact
from services.intake.access import IntakeParts
from services.intake.api import router
from services.intake.committer import GroupCommitter, store_for
from services.intake.config import IntakeSettings
from services.intake.models import metadata
from services.intake.pii import Vault
from services.intake.ratelimit import RateLimiter
from services.intake.schemas import DeclarationCreate
from shared.clock import Clock, SystemClock
from shared.kafka import Handler
from shared.service import ConsumerSpec, Runtime, create_service_app


def create_app(settings: IntakeSettings | None = None, clock: Clock | None = None) -> FastAPI:
    """The intake service: HTTP in, outbox relay out; follows cases to report submission status
    and outcome."""
    settings = settings or IntakeSettings()
    clock = clock or SystemClock()
    # a submission's case, then what became of it (or of the monitored household it concerns)
    case_status: dict[str, Handler] = {
        name: handlers.on_case_event
        for name in (
            "CaseOpened",
            "CaseMerged",
            "GreenChannelOpened",
            "HouseholdIdentified",
            "CaseRejected",
            "MonitoredHouseholdReassessed",
        )
    }
    runtime = Runtime(
        settings=settings,
        metadata=metadata,
        service_dir=Path(__file__).parent,
        clock=clock,
        consumers=[
            ConsumerSpec(
                name=f"{settings.service_name}-case-status",
                topics=["cases"],
                handlers=case_status,
                # a feed merges many cases at once: runs of them share one transaction
                batch_handler=handlers.on_case_events,
            )
        ],
    )
    app = create_service_app(
        runtime,
        title="Holdline intake",
        routers=[router, contact_api.router, feeds_api.router],
        body_models=[DeclarationCreate],
        # a feed streams its body under feed_max_bytes (feeds_api.py)
        body_limits={"/v1/registry": settings.registry_max_body_bytes, "/v1/feeds/": None},
    )
    redact.install()  # after create_service_app, which sets up the log handlers
    window = settings.rate_window_seconds
    app.state.intake = IntakeParts(
        vault=Vault(settings.secret_key.get_secret_value()),
        per_phone=RateLimiter(limit=settings.rate_per_phone, window_seconds=window, clock=clock),
        per_ip=RateLimiter(limit=settings.rate_per_ip, window_seconds=window, clock=clock),
        committer=GroupCommitter(
            store_for(runtime),
            batch_max=settings.commit_batch_max,
            concurrency=settings.commit_concurrency,
        ),
        per_official=RateLimiter(
            limit=settings.rate_contact_per_official, window_seconds=window, clock=clock
        ),
    )
    return app
