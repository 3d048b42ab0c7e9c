"""Acknowledgement links of urgent messages: `GET|POST /v1/acks/{token}` (signed, no login)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, cast
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlalchemy import select

from services.notify import acks, names, templates
from services.notify.config import NotifySettings
from services.notify.escalation import acknowledge, text_of
from services.notify.models import notifications
from shared.db import UnitOfWork, utc
from shared.inputs import PROBLEM_RESPONSES
from shared.logs import redact
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


@router.get(
    "/acks/{token}",
    response_class=HTMLResponse,
    dependencies=[Depends(within_ack_rate)],
    responses={
        401: {"description": "token: malformed, forged or expired"},
        404: {"description": "token: the notification is gone"},
        429: {"description": "too many attempts from this client; see Retry-After"},
    },
)
async def acknowledge_page(
    token: str, runtime: Annotated[Runtime, Depends(runtime_of)]
) -> HTMLResponse:
    """What a phone shows for the link: which household and alert, and a button (link
    previewers also fetch with GET, so GET never acknowledges). The form posts back to the link
    itself, a relative action, so it works behind a proxy that serves notify under a prefix."""
    settings: NotifySettings = runtime.settings  # type: ignore[assignment]
    notification_id = _verified(token, runtime, html_error=True)
    async with runtime.uow() as uow:
        alert = await _alert(uow, notification_id, settings)
    if alert.acknowledged_at is not None:
        return _page(alert, f"已确认 / Acknowledged {_local(alert.acknowledged_at, settings)}")
    safe = html.escape(token, quote=True)
    return _page(
        alert,
        f'<form method="post" action="{safe}"><button>确认收到 / Acknowledge</button></form>',
        escaped=True,
    )


@router.post(
    "/acks/{token}",
    response_model=AckRead,
    dependencies=[Depends(within_ack_rate)],
    responses={
        200: {"content": {"text/html": {}}, "description": "HTML for a browser's form post"},
        401: {"description": "token: malformed, forged or expired"},
        404: {"description": "token: the notification is gone"},
        429: {"description": "too many attempts from this client; see Retry-After"},
    },
)
async def acknowledge_link(
    token: str, request: Request, runtime: Annotated[Runtime, Depends(runtime_of)]
) -> AckRead | HTMLResponse:
    """The signed link of an urgent message: the recipient says "received, acting". A browser
    (the page's form: `Accept: text/html` or a form body) reads a short confirmation page; an
    API client gets JSON."""
    settings: NotifySettings = runtime.settings  # type: ignore[assignment]
    browser = _from_browser(request)
    notification_id = _verified(token, runtime, html_error=browser)
    async with runtime.uow() as uow:
        at = await acknowledge(uow=uow, notification_id=notification_id, settings=settings)
        if at is None:
            raise _refusal(404, f"token: notification {notification_id} not found", browser)
        alert = await _alert(uow, notification_id, settings) if browser else None
    if alert is not None:
        return _page(alert, f"已确认收到 / Acknowledged {_local(at, settings)}")
    return AckRead(notification_id=notification_id, acknowledged_at=at)


@dataclass(frozen=True)
class Alert:
    """What the acknowledgement pages show of an alert: its household as the messages name
    it (masked) and its text without the link."""

    household: str
    text: str
    acknowledged_at: datetime | None


async def _alert(uow: UnitOfWork, notification_id: str, settings: NotifySettings) -> Alert:
    row = (
        await uow.execute(select(notifications).where(notifications.c.id == notification_id))
    ).first()
    if row is None:
        raise _refusal(404, f"token: notification {notification_id} not found", True)
    # the latest name known, else the alert's (rules §4.13: a name may be shown, masked as the
    # messages mask it)
    name = (await names.names_of(uow, [row.household_id])).get(row.household_id)
    label = templates.household_label(
        row.household_id, name or row.body.get("household_name"), settings.language
    )
    return Alert(
        household=redact(label),
        text=redact(text_of(row)),
        acknowledged_at=utc(row.acknowledged_at) if row.acknowledged_at else None,
    )


def _verified(token: str, runtime: Runtime, *, html_error: bool) -> str:
    settings: NotifySettings = runtime.settings  # type: ignore[assignment]
    try:
        return acks.verify(
            token, now=runtime.clock.now(), secret=settings.secret_key.get_secret_value()
        )
    except acks.AckTokenError as exc:
        raise _refusal(401, f"token: {exc}", html_error) from None


class HtmlRefusal(HTTPException):
    """A refusal a browser reads as a page (the API's problem JSON otherwise)."""


def _refusal(code: int, detail: str, browser: bool) -> HTTPException:
    return (HtmlRefusal if browser else HTTPException)(code, detail)


async def html_refusal(request: Request, exc: Exception) -> HTMLResponse:
    """Exception handler: the refusal's status and reason as a short page."""
    assert isinstance(exc, HtmlRefusal)
    return HTMLResponse(_document(html.escape(str(exc.detail))), status_code=exc.status_code)


def _from_browser(request: Request) -> bool:
    """The page's form posting (its content type), or a browser asking for HTML."""
    accept = request.headers.get("accept", "")
    form = request.headers.get("content-type", "").startswith(FORM_TYPES)
    return form or "text/html" in accept


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _page(alert: Alert, action: str, *, escaped: bool = False) -> HTMLResponse:
    said = action if escaped else f"<p>{html.escape(action)}</p>"
    return HTMLResponse(
        _document(
            f"<p><strong>{html.escape(alert.household)}</strong></p>"
            f"<p>{html.escape(alert.text)}</p>{said}"
        )
    )


def _document(content: str) -> str:
    return (
        '<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>Holdline</title>{content}"
    )


def _local(at: datetime, settings: NotifySettings) -> str:
    return at.astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m-%d %H:%M")
