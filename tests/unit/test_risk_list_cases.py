"""GET /v1/cases on SQLite: the same paging, orders, filters and jurisdiction checks as
tests/integration/test_risk_cases_list.py runs on PostgreSQL (row comparisons, partial indexes
and datetimes stored as text behave differently there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.test_risk_cases_list import (
    test_a_bad_or_unknown_query_parameter_is_refused_naming_it,
    test_a_cursor_is_for_one_order_and_not_with_an_offset,
    test_a_full_last_page_has_no_next_link,
    test_deadline_order_puts_the_most_urgent_first,
    test_every_filter_and_page_stays_inside_the_jurisdiction,
    test_green_channel_and_paperwork_filters,
    test_offset_skips_cases_instead_of_being_ignored,
    test_overdue_and_the_home_visit_filters_follow_the_deadlines,
    test_paging_with_the_cursor_is_stable_while_cases_are_added,
    test_stage_and_purpose_filters,
    test_the_next_link_keeps_the_filters,
    test_the_next_links_reach_every_case_in_order,
    test_the_notice_dates_are_listed,
)
from tests.integration.test_risk_workflow_api import Platform, risk_platform

__all__ = [
    "test_a_bad_or_unknown_query_parameter_is_refused_naming_it",
    "test_a_cursor_is_for_one_order_and_not_with_an_offset",
    "test_a_full_last_page_has_no_next_link",
    "test_deadline_order_puts_the_most_urgent_first",
    "test_every_filter_and_page_stays_inside_the_jurisdiction",
    "test_green_channel_and_paperwork_filters",
    "test_offset_skips_cases_instead_of_being_ignored",
    "test_overdue_and_the_home_visit_filters_follow_the_deadlines",
    "test_paging_with_the_cursor_is_stable_while_cases_are_added",
    "test_stage_and_purpose_filters",
    "test_the_next_link_keeps_the_filters",
    "test_the_next_links_reach_every_case_in_order",
    "test_the_notice_dates_are_listed",
]


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    """The risk app on a fresh SQLite database, migrated as at start-up."""
    async with risk_platform(f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}") as built:
        yield built
