"""Belt and braces for rules §9: a resident ID or phone that reaches a log line is masked."""

from __future__ import annotations

import logging
import re

from shared.identity import mask_phone, mask_resident_id

_RESIDENT_ID = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dXx])")
_PHONE = re.compile(r"(?<!\d)1\d{10}(?!\d)")


def redact(text: str) -> str:
    """Mask every resident-ID-shaped and phone-shaped number in `text`."""
    text = _RESIDENT_ID.sub(lambda m: mask_resident_id(m.group()), text)
    return _PHONE.sub(lambda m: mask_phone(m.group()), text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with IDs and phones masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install() -> None:
    """Attach the filter to every handler of the root logger."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
