"""JSON logs, one object per line, carrying the correlation id of the work in hand.

rules §9: a resident ID or a phone number never reaches a log line in clear; every line is
masked on its way out, whichever service or library wrote it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from shared.identity import mask_phone, mask_resident_id

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
# 17 digits and an optional check character: an ID cut before its check character is one too
_RESIDENT_ID = r"(?<![\dXx])\d{17}[\dXx]?(?![\dXx])"
# a mobile number, with or without the country code (+86, 86, "86-", "+86 "): after 86 the
# number itself is preceded by a digit, so the prefix must be part of the match
_PHONE = r"(?<!\d)(?:\+?86[- ]?)?1\d{10}(?!\d)"
# the platform's own identifiers, hashes and random hex, never a person's number: a household
# key (hh- and 20 hex digits of a hash, intake's pii.household_key) and a UUID. A run of
# digits inside one is kept, or one id in a few hundred would be shown garbled
_OWN_ID = (
    r"(?<![0-9A-Za-z])(?:hh-[0-9a-f]{20}"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?![0-9A-Za-z])"
)
_NUMBERS = re.compile(f"(?P<own>{_OWN_ID})|(?P<id>{_RESIDENT_ID})|(?P<phone>{_PHONE})")


def _mask(match: re.Match[str]) -> str:
    if match.group("own") is not None:
        return match.group()
    if match.group("id") is not None:
        return mask_resident_id(match.group())
    return mask_phone(match.group())


def redact(text: str) -> str:
    """Mask every resident-ID-shaped and phone-shaped number in `text`, wherever it stands
    (between letters too: "tel13812345678"), but not the digits of the platform's own ids.
    The one masking of the platform: log lines, intake's outcome reasons, notify's messages
    and webhook bodies (rules §4.13, §9)."""
    return _NUMBERS.sub(_mask, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with IDs and phones masked (for handlers of any format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    """Formats records as JSON with service, level, message and correlation id, all masked."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "correlation_id": correlation_id.get(),
        }
        if record.exc_info:
            # tracebacks quote the values in hand, so they are masked like messages
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route the root logger to stderr as masked JSON lines."""
    # the lines carry no source file, thread or process: spare every record looking them up
    # (the access line of each request went through this)
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO with its full URL: a robot webhook's access token and
    # signature would land in the logs, once per message sent. Notify records every attempt
    # in its own tables and logs the failed ones itself.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
