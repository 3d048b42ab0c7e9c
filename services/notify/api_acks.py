"""Acknowledgement links of urgent messages: `POST /v1/acks/{token}` (signed, no login)."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, cast

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from services.notify import acks
from services.notify.config import NotifySettings
from services.notify.escalation import acknowledge
from shared.inputs import PROBLEM_RESPONSES
from shared.ratelimit import RateLimiter
from shared.service import Runtime, runtime_of

router = APIRouter(
    prefix="/v1",
    tags=["notify"],
    responses=PROBLEM_RESPONSES,
)


class AckRead(BaseModel):
    """The acknowledged notification."""

    notification_id: str
    acknowledged_at: datetime


def within_ack_rate(request: Request) -> None:
    """FastAPI dependency: 429 with Retry-After once a client address has used its attempts."""
    limiter: RateLimiter | None = getattr(request.app.state, "ack_limiter", None)
    if limiter is None:
        runtime = request.app.state.runtime
        settings = cast(NotifySettings, runtime.settings)
        limiter = RateLimiter(
            limit=settings.ack_rate_per_client,
            window_seconds=settings.ack_rate_window_seconds,
            clock=runtime.clock,
        )
        request.app.state.ack_limiter = limiter
    wait = limiter.hit(request.client.host if request.client else "?")
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"client: too many acknowledgement attempts; retry after {int(wait)} s",
            headers={"Retry-After": str(int(wait))},
        )


@router.get("/acks/{token}", response_class=HTMLResponse)
async def acknowledge_page(token: str) -> HTMLResponse:
    """What a phone shows for the link: a button, since link previewers also fetch with GET."""
    safe = html.escape(token, quote=True)
    return HTMLResponse(
        '<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f'<form method="post" action="/v1/acks/{safe}"><button>确认收到 / Acknowledge</button>'
        "</form>"
    )


@router.post(
    "/acks/{token}",
    response_model=AckRead,
    dependencies=[Depends(within_ack_rate)],
    responses={
        401: {"description": "token: malformed, forged or expired"},
        404: {"description": "token: the notification is gone"},
        429: {"description": "too many attempts from this client; see Retry-After"},
    },
)
async def acknowledge_link(token: str, runtime: Annotated[Runtime, Depends(runtime_of)]) -> AckRead:
    """The signed link of an urgent message: the recipient says "received, acting"."""
    settings: NotifySettings = runtime.settings  # type: ignore[assignment]
    try:
        notification_id = acks.verify(
            token, now=runtime.clock.now(), secret=settings.secret_key.get_secret_value()
        )
    except acks.AckTokenError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"token: {exc}") from None
    async with runtime.uow() as uow:
        at = await acknowledge(uow=uow, notification_id=notification_id, settings=settings)
    if at is None:
        raise HTTPException(404, f"token: notification {notification_id} not found")
    return AckRead(notification_id=notification_id, acknowledged_at=at)
