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
_RESIDENT_ID = re.compile(r"(?<![\dXx])\d{17}[\dXx]?(?![\dXx])")
# a mobile number, with or without the country code (+86, 86, "86-", "+86 "): after 86 the
# number itself is preceded by a digit, so the prefix must be part of the match
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1\d{10}(?!\d)")


def redact(text: str) -> str:
    """Mask every resident-ID-shaped and phone-shaped number in `text`, wherever it stands
    (between letters too: "tel13812345678"). The one masking of the platform: log lines, intake's
    outcome reasons, notify's messages and webhook bodies (rules §4.13, §9)."""
    text = _RESIDENT_ID.sub(lambda m: mask_resident_id(m.group()), text)
    return _PHONE.sub(lambda m: mask_phone(m.group()), text)


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
