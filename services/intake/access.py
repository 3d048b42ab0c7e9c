"""Who may read what in intake: the app or an official; a department or a county official."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header, HTTPException, Request, status

from services.intake.committer import GroupCommitter
from services.intake.pii import Vault
from services.intake.ratelimit import RateLimiter
from shared.auth import Official, check_app_key, current_official


@dataclass(frozen=True)
class IntakeParts:
    """Intake's own process-wide helpers, built once by the composition root."""

    vault: Vault
    per_phone: RateLimiter
    per_ip: RateLimiter
    committer: GroupCommitter
    per_official: RateLimiter  # reads of a household's contact, per token subject


async def parts_of(request: Request) -> IntakeParts:
    """FastAPI dependency: intake's helpers (async, so it costs no worker-thread hop)."""
    parts: IntakeParts = request.app.state.intake
    return parts


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the mobile app, a department, or an official."""

    official: Official | None = None
    department: str | None = None
    app: bool = False


def app_or_official(
    request: Request,
    x_app_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    """FastAPI dependency: the mobile app (X-App-Key) or an official (bearer token), else 401."""
    if authorization:
        return Caller(official=current_official(request, authorization))
    if x_app_key:
        check_app_key(request, x_app_key)
        return Caller(app=True)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "X-App-Key: an app key or a bearer token is required",
        headers={"WWW-Authenticate": "Bearer"},
    )


def department_or_county(
    request: Request,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    """FastAPI dependency: a department key, or an official of county level or above."""
    if authorization:
        official = current_official(request, authorization)
        if not official.at_least("county"):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role: {official.role} may not read feed batches"
            )
        return Caller(official=official)
    if x_api_key:
        owner = _department_of(request, x_api_key)
        if owner is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "X-API-Key: unknown key")
        return Caller(department=owner)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "X-API-Key: a department key or a bearer token is required",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _department_of(request: Request, x_api_key: str) -> str | None:
    """The department owning the key, or None."""
    keys = request.app.state.runtime.settings.department_key_map()
    return next((d for d, k in keys.items() if hmac.compare_digest(k, x_api_key)), None)


def contact_reader(
    request: Request,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Official:
    """FastAPI dependency: an official's bearer token (rules §9: a household's contact is for
    the officials who must act on it); a department's key is known but refused (403), the app
    key is no credential here (401)."""
    if authorization:
        return current_official(request, authorization)
    if x_api_key and _department_of(request, x_api_key) is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "role: a department may not read a household's contact"
        )
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "Authorization: an official's bearer token is required",
        headers={"WWW-Authenticate": "Bearer"},
    )
