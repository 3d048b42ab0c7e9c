"""Signed acknowledgement tokens: notification id, expiry, HMAC-SHA256 with the service secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime


class AckTokenError(Exception):
    """A token that is malformed, forged or expired, with the reason."""


def _signature(notification_id: str, expires: int, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"ack:{notification_id}:{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode().rstrip("=")


def sign(notification_id: str, *, expires_at: datetime, secret: str) -> str:
    """A compact token for a link short enough for SMS."""
    expires = int(expires_at.timestamp())
    return f"{notification_id}.{expires}.{_signature(notification_id, expires, secret)}"


def verify(token: str, *, now: datetime, secret: str) -> str:
    """The notification id a token acknowledges, or AckTokenError."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise AckTokenError("malformed")
    notification_id, expires, signature = parts[0], int(parts[1]), parts[2]
    if not hmac.compare_digest(signature, _signature(notification_id, expires, secret)):
        raise AckTokenError("signature does not match")
    if now.timestamp() > expires:
        raise AckTokenError("expired")
    return notification_id
