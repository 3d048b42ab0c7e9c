"""rules §8.2 on SQLite: the same feed results as tests/integration/test_risk_feed_results.py
reads on PostgreSQL (the JSON payload is read with ->> there, JSON_EXTRACT here; the rows are
written by executemany instead of COPY)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.test_risk_feed_results import (
    test_a_bad_cursor_or_parameter_is_refused_naming_it,
    test_a_department_sees_only_its_own_batches,
    test_csv_for_a_spreadsheet,
    test_each_record_says_what_risk_made_of_it,
    test_other_signals_leave_no_batch_or_line,
    test_the_next_links_reach_every_record_once_in_line_order,
)
from tests.integration.test_risk_workflow_api import Platform, risk_platform

__all__ = [
    "test_a_bad_cursor_or_parameter_is_refused_naming_it",
    "test_a_department_sees_only_its_own_batches",
    "test_csv_for_a_spreadsheet",
    "test_each_record_says_what_risk_made_of_it",
    "test_other_signals_leave_no_batch_or_line",
    "test_the_next_links_reach_every_record_once_in_line_order",
]


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    """The risk app on a fresh SQLite database, migrated as at start-up."""
    async with risk_platform(f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}") as built:
        yield built
