"""Belt and braces for rules §9: a resident ID or phone that reaches a log line is masked.

The masking itself is platform-wide (shared/logs.py); intake keeps its names for its callers.
"""

from __future__ import annotations

import logging

from shared.logs import RedactingFilter, redact

__all__ = ["RedactingFilter", "install", "redact"]


def install() -> None:
    """Attach the filter to every handler of the root logger."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
