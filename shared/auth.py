"""Who is calling: JWT for cadres and officials, API keys for departments, an app key for the app.

401 means "we do not know who you are"; 403 means "we know, and you may not".
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Header, HTTPException, Path, Request, status

from shared.clock import Clock
from shared.identity import is_region_prefix, is_unplaced, region_problem

Role = Literal["village", "township", "county", "admin"]
ROLES: tuple[Role, ...] = ("village", "township", "county", "admin")
DEPARTMENTS = (
    "medical_insurance", "health", "education", "housing", "water", "human_resources",
    "civil_affairs", "agriculture", "public_security", "disabled_persons_federation",
    "emergency_management",
)  # fmt: skip
ALGORITHM = "HS256"
# a token's subject is recorded as the actor of what the official does (case history, measure
# history, the roster's updated_by: String(100) columns); a longer one is no official's id
MAX_SUBJECT = 100


class AuthError(Exception):
    """A credential that cannot be accepted, with the reason."""


@dataclass(frozen=True)
class Official:
    """A cadre or official: role and jurisdiction (a region-code prefix) come from the token."""

    subject: str
    role: Role
    jurisdiction: str

    def covers(self, region_code: str) -> bool:
        """Whether `region_code` lies inside this official's jurisdiction."""
        return self.role == "admin" or region_code.startswith(self.jurisdiction)

    def at_least(self, role: Role) -> bool:
        """Whether this official's level is `role` or higher."""
        return ROLES.index(self.role) >= ROLES.index(role)


def mint_token(
    *,
    subject: str,
    role: Role,
    jurisdiction: str,
    secret: str,
    clock: Clock,
    ttl: timedelta = timedelta(hours=8),
) -> str:
    """A signed bearer token for an official."""
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    problem = subject_problem(subject)
    if problem:
        raise AuthError(f"subject {problem}")
    if role != "admin" and not is_region_prefix(jurisdiction):
        raise AuthError(
            "jurisdiction must be a region-code prefix (1 to 12 digits 0-9) that a real region"
            " code starts with (a province-level code, no placeholder region, rules §9.4)"
        )
    now = clock.now()
    claims = {
        "sub": subject, "role": role, "jurisdiction": jurisdiction,
        "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp()),
    }  # fmt: skip
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(token: str, *, secret: str, clock: Clock) -> Official:
    """Verify a bearer token and return the official it names."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"verify_exp": False,
            "require": ["sub", "role", "exp"]},
        )  # fmt: skip
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from exc
    if claims["exp"] < clock.now().timestamp():
        raise AuthError("token expired")
    if claims.get("role") not in ROLES:
        raise AuthError("token has no valid role")
    problem = subject_problem(claims["sub"])
    if problem:
        raise AuthError(f"token subject {problem}")
    return Official(claims["sub"], claims["role"], str(claims.get("jurisdiction", "")))


def subject_problem(subject: object) -> str | None:
    """What is wrong with a token subject (the official's id), or None."""
    if not isinstance(subject, str) or not subject.strip():
        return "must be a non-empty string"
    if len(subject) > MAX_SUBJECT:
        return f"is longer than {MAX_SUBJECT} characters"
    if "\x00" in subject:
        return "must not contain a NUL character"
    return None


def _settings_and_clock(request: Request) -> tuple[object, Clock]:
    runtime = request.app.state.runtime
    return runtime.settings, runtime.clock


def current_official(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Official:
    """FastAPI dependency: the official behind the bearer token, or 401."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Authorization: a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    settings, clock = _settings_and_clock(request)
    try:
        return read_token(
            authorization[7:].strip(),
            secret=settings.jwt_secret.get_secret_value(),  # type: ignore[attr-defined]
            clock=clock,
        )
    except AuthError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"Authorization: {exc}",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None  # fmt: skip


def require_role(minimum: Role) -> Callable[[Official], Official]:
    """FastAPI dependency factory: an official of at least `minimum` level, else 403."""

    def dependency(official: Annotated[Official, Depends(current_official)]) -> Official:
        if not official.at_least(minimum):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role: {official.role} may not do this; needs {minimum}"
            )
        return official

    return dependency


def ensure_within(official: Official, region_code: str, field: str = "village_code") -> None:
    """403 unless `region_code` lies inside the official's jurisdiction."""
    if not official.covers(region_code):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, outside_message(official, region_code, field)
        )


def outside_message(official: Official, region_code: str, field: str = "village_code") -> str:
    """Why `region_code` is refused to `official`; a household not placed in a village yet
    (rules §9.4) says so, and where it is held, rather than show an empty or 000 code."""
    where = official.jurisdiction
    if not region_code:
        return (
            f"{field}: no village yet, and no county holds it (outside your jurisdiction "
            f"{where}); an admin can place it"
        )
    if region_problem(region_code) is None and is_unplaced(region_code):
        return (
            f"{field}: no village yet ({region_code}); county {region_code[:6]} holds it until "
            f"it places it, outside your jurisdiction {where}"
        )
    return f"{field}: {region_code} is outside your jurisdiction {where}"


def current_department(
    request: Request,
    department: Annotated[str, Path()],
    x_api_key: Annotated[str | None, Header()] = None,
) -> str:
    """FastAPI dependency: the department owning the API key; it may post, and read the results
    of, only its own feed."""
    if not x_api_key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "X-API-Key: a department key is required")
    settings, _ = _settings_and_clock(request)
    keys: dict[str, str] = settings.department_key_map()  # type: ignore[attr-defined]
    owner = next((d for d, k in keys.items() if hmac.compare_digest(k, x_api_key)), None)
    if owner is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "X-API-Key: unknown key")
    if owner != department:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"department: the key belongs to {owner} and may not use the {department} feed",
        )
    return owner


def check_app_key(request: Request, x_app_key: str | None) -> None:
    """401 unless `x_app_key` is the mobile app's key."""
    settings, _ = _settings_and_clock(request)
    expected = settings.app_key.get_secret_value()  # type: ignore[attr-defined]
    if not x_app_key or not hmac.compare_digest(x_app_key, expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "X-App-Key: a valid app key is required")
