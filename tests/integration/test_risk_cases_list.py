"""GET /v1/cases as officials use it (PostgreSQL; tests/unit/test_risk_list_cases.py runs the
same on SQLite): paging that reaches every case, newest, oldest or most urgent first, stable
while cases are added; the filters of rules §4.9-§4.12 and §5.3; the jurisdiction holding for
every filter and page; and the case fields an official decides on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from services.risk import handlers
from services.risk.models import cases
from services.risk.scheduler import scan_deadlines
from shared.events import DeclarationSubmitted
from tests.integration.test_risk_workflow_api import START, TOWN, VILLAGE, Platform, risk_platform
from tests.support import refused_field

pytestmark = [pytest.mark.postgres]
COUNTY = "530102"
OTHER_VILLAGE = TOWN + "002"  # same township, another village
OTHER_COUNTY = "530103001001"


@pytest.fixture
async def platform(pg_url: str) -> AsyncIterator[Platform]:
    async with risk_platform(pg_url) as built:
        yield built


async def declare(
    platform: Platform, household: str, village: str = VILLAGE, medical: float = 3000
) -> None:
    """A self-declaration from `village` at the clock's now; opens the household's case."""
    await platform.signal(
        handlers.on_declaration,
        DeclarationSubmitted(
            submission_id=f"s-{household}", declarant_name="王秀英",
            declarant_id_masked="530102***********1", village_code=village,
            risk_types=["illness"], medical_spending=medical,
        ),
        household,
    )  # fmt: skip


async def open_cases(platform: Platform, count: int, village: str = VILLAGE) -> list[str]:
    """`count` households declaring an hour apart; their ids, oldest first."""
    households = [f"hh-{village}-{i}" for i in range(count)]
    for household in households:
        await declare(platform, household, village)
        platform.clock.advance(timedelta(hours=1))
    return households


async def get(platform: Platform, who: dict[str, str], **params: Any) -> Any:
    answer = await platform.http.get("/v1/cases", params=params, headers=who)
    assert answer.status_code == 200, answer.text
    return answer


async def pages_of(platform: Platform, who: dict[str, str], **params: Any) -> list[list[Any]]:
    """Every page, following Link rel=next to the end."""
    pages: list[list[Any]] = []
    answer = await get(platform, who, **params)
    while True:
        pages.append(answer.json())
        if "next" not in answer.links:
            return pages
        answer = await platform.http.get(answer.links["next"]["url"], headers=who)
        assert answer.status_code == 200, answer.text


async def walk(platform: Platform, who: dict[str, str], **params: Any) -> list[list[str]]:
    """Every page: the household ids of each."""
    pages = await pages_of(platform, who, **params)
    return [[c["household_id"] for c in page] for page in pages]


def county(platform: Platform) -> dict[str, str]:
    return platform.auth("county", COUNTY)


async def test_offset_skips_cases_instead_of_being_ignored(platform: Platform) -> None:
    """It was ignored: ?limit=1&offset=1 gave the newest case again."""
    households = await open_cases(platform, 3)
    first = await get(platform, county(platform), limit=1)
    second = await get(platform, county(platform), limit=1, offset=1)
    assert [c["household_id"] for c in first.json()] == [households[2]]
    assert [c["household_id"] for c in second.json()] == [households[1]]
    beyond = await get(platform, county(platform), limit=1, offset=3)
    assert beyond.json() == [] and "next" not in beyond.links


@pytest.mark.parametrize(
    ("order", "oldest_first"), [("newest", False), ("oldest", True), ("deadline", True)]
)
async def test_the_next_links_reach_every_case_in_order(
    platform: Platform, order: str, oldest_first: bool
) -> None:
    """Newest first with limit at most 1000 left a busy county's oldest cases out of reach."""
    households = await open_cases(platform, 7)
    pages = await walk(platform, county(platform), order=order, limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    expected = households if oldest_first else households[::-1]
    assert [h for page in pages for h in page] == expected


async def test_a_full_last_page_has_no_next_link(platform: Platform) -> None:
    await open_cases(platform, 4)
    assert [len(p) for p in await walk(platform, county(platform), limit=2)] == [2, 2]


async def test_deadline_order_puts_the_most_urgent_first(platform: Platform) -> None:
    """The order is the deadline's, not the opening's: an elimination case (rules §7.2) or a
    province counting working days (rules §4.9) can fall due before a case opened earlier."""
    households = await open_cases(platform, 3)
    async with platform.runtime.uow() as uow:
        await uow.execute(
            update(cases)
            .where(cases.c.household_id == households[2])
            .values(deadline=START + timedelta(days=10))
        )
    listed = (await get(platform, county(platform), order="deadline")).json()
    assert [c["household_id"] for c in listed] == [households[2], *households[:2]]
    pages = await walk(platform, county(platform), order="deadline", limit=1)
    assert [h for page in pages for h in page] == [households[2], *households[:2]]


@pytest.mark.parametrize("order", ["newest", "oldest"])
async def test_paging_with_the_cursor_is_stable_while_cases_are_added(
    platform: Platform, order: str
) -> None:
    """A case opened between two pages neither repeats one already shown nor pushes one out."""
    households = await open_cases(platform, 5)
    who = county(platform)
    first = await get(platform, who, order=order, limit=2)
    added = await open_cases(platform, 3, OTHER_VILLAGE)
    seen = [c["household_id"] for c in first.json()]
    answer = first
    while "next" in answer.links:
        answer = await platform.http.get(answer.links["next"]["url"], headers=who)
        seen += [c["household_id"] for c in answer.json()]
    assert len(seen) == len(set(seen)), seen
    # newest first: what was added is before the first page; oldest first: after the last
    assert seen == (households[::-1] if order == "newest" else households + added)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "W10"}, "cursor"),  # base64 of [], no cursor either
        ({"offset": -1}, "offset"),
        ({"limit": 1001}, "limit"),
        ({"order": "urgency"}, "order"),
        ({"overdue": "maybe"}, "overdue"),
        ({"page": 2}, "page"),  # the ledger's paging, not this list's: refused, not ignored
        ({"sort": "deadline"}, "sort"),
    ],
)
async def test_a_bad_or_unknown_query_parameter_is_refused_naming_it(
    platform: Platform, params: dict[str, Any], field: str
) -> None:
    answer = await platform.http.get("/v1/cases", params=params, headers=county(platform))
    assert refused_field(answer) == field


async def test_a_cursor_is_for_one_order_and_not_with_an_offset(platform: Platform) -> None:
    await open_cases(platform, 3)
    who = county(platform)
    cursor = (await get(platform, who, limit=1)).links["next"]["url"].split("cursor=")[1]
    other_order = await platform.http.get(
        "/v1/cases", params={"cursor": cursor, "order": "deadline"}, headers=who
    )
    assert refused_field(other_order) == "cursor" and "order=newest" in other_order.text
    both = await platform.http.get("/v1/cases", params={"cursor": cursor, "offset": 1}, headers=who)
    assert refused_field(both) == "offset"


async def test_the_next_link_keeps_the_filters(platform: Platform) -> None:
    await open_cases(platform, 3)
    others = await open_cases(platform, 3, OTHER_VILLAGE)
    platform.clock.advance(timedelta(days=3))  # the first village's home visits are late
    await declare(platform, "hh-fresh", OTHER_VILLAGE)
    who = county(platform)
    pages = await walk(platform, who, limit=2, home_visit_overdue="false", order="oldest")
    assert [h for page in pages for h in page] == ["hh-fresh"]
    pages = await walk(platform, who, limit=2, home_visit_overdue="true", order="oldest")
    assert len([h for page in pages for h in page]) == 6 and others[0] in pages[1]


async def test_overdue_and_the_home_visit_filters_follow_the_deadlines(
    platform: Platform,
) -> None:
    """rules §4.10, §4.12: the cases the scheduler alerts about are the ones the filters list,
    and each listed case says what of it is late."""
    [late, visited] = await open_cases(platform, 2)
    visited_id = await platform.open_case_id(visited)
    assert (await platform.act(visited_id, "village", "start_home_verification")).status_code == 200
    platform.clock.advance(timedelta(days=16))
    await declare(platform, "hh-new")
    await scan_deadlines(uow_factory=platform.runtime.uow, settings=platform.settings)
    who = county(platform)

    async def households(**params: Any) -> list[str]:
        return sorted(c["household_id"] for c in (await get(platform, who, **params)).json())

    assert await households(overdue="true") == sorted([late, visited])
    assert await households(overdue="false") == ["hh-new"]
    assert await households(home_visit_overdue="true") == [late]
    assert await households(home_visit_overdue="false") == sorted([visited, "hh-new"])
    assert await households(overdue="true", home_visit_overdue="false") == [visited]
    listed = {c["household_id"]: c for c in (await get(platform, who)).json()}
    assert listed[late]["overdue"] and listed[late]["home_visit_overdue"]
    assert listed[visited]["home_visited_at"] is not None
    assert listed[visited]["overdue"] and not listed[visited]["home_visit_overdue"]
    assert not listed["hh-new"]["overdue"] and listed["hh-new"]["alerts"] == {}
    assert set(listed[late]["alerts"]) == {"warning", "overdue", "home_visit"}
    assert set(listed[visited]["alerts"]) == {"warning", "overdue"}
    assert listed[late]["warning_at"] < listed[late]["deadline"]
    # a closed case is never late, whatever its dates
    assert await households(status="identified", overdue="true") == []


async def test_green_channel_and_paperwork_filters(platform: Platform) -> None:
    """rules §5.1-§5.3: a large medical bill opens the green channel, with its paperwork due."""
    await declare(platform, "hh-green", medical=30000)
    await declare(platform, "hh-plain")
    who = county(platform)
    green = (await get(platform, who, green_channel="true")).json()
    assert [c["household_id"] for c in green] == ["hh-green"]
    assert green[0]["paperwork_due"] is not None and not green[0]["paperwork_overdue"]
    plain = (await get(platform, who, green_channel="false")).json()
    assert [c["household_id"] for c in plain] == ["hh-plain"] and plain[0]["paperwork_due"] is None
    assert (await get(platform, who, paperwork_overdue="true")).json() == []
    due = datetime.fromisoformat(green[0]["paperwork_due"])
    platform.clock.advance(due - platform.clock.now() + timedelta(minutes=1))
    who = county(platform)
    late = (await get(platform, who, paperwork_overdue="true")).json()
    assert [c["household_id"] for c in late] == ["hh-green"] and late[0]["paperwork_overdue"]
    rest = await get(platform, who, paperwork_overdue="false")
    assert [c["household_id"] for c in rest.json()] == ["hh-plain"]


async def test_stage_and_purpose_filters(platform: Platform) -> None:
    [waiting, started] = await open_cases(platform, 2)
    case_id = await platform.open_case_id(started)
    assert (await platform.act(case_id, "village", "start_home_verification")).status_code == 200
    who = county(platform)
    for stage, expected in (("risk_discovered", [waiting]), ("home_verification", [started]),
                            ("identified", [])):  # fmt: skip
        found = await get(platform, who, stage=stage)
        assert [c["household_id"] for c in found.json()] == expected, stage
    assert len((await get(platform, who, purpose="identification")).json()) == 2
    assert (await get(platform, who, purpose="elimination")).json() == []


async def test_the_notice_dates_are_listed(platform: Platform) -> None:
    [household] = await open_cases(platform, 1)
    case_id = await platform.open_case_id(household)
    for role, action, body in (
        ("village", "start_home_verification", {}),
        ("village", "complete_home_verification", {"signed_form": True}),
        ("village", "post_public_notice", {}),
    ):
        assert (await platform.act(case_id, role, action, **body)).status_code == 200  # type: ignore[arg-type]
    [listed] = (await get(platform, county(platform))).json()
    detail = (await platform.http.get(f"/v1/cases/{case_id}", headers=county(platform))).json()
    assert listed["notice_posted_at"] and listed["notice_ends_at"] > listed["notice_posted_at"]
    assert {k: detail[k] for k in listed} == listed  # the detail shows the same, and more


@pytest.mark.parametrize(
    "params",
    [{}, {"order": "deadline"}, {"order": "oldest"}, {"overdue": "true"},
     {"home_visit_overdue": "true"}, {"green_channel": "true"}, {"stage": "risk_discovered"},
     {"status": "open"}, {"offset": 1}],
)  # fmt: skip
async def test_every_filter_and_page_stays_inside_the_jurisdiction(
    platform: Platform, params: dict[str, Any]
) -> None:
    for village in (VILLAGE, OTHER_VILLAGE, OTHER_COUNTY):
        await open_cases(platform, 3, village)
        await declare(platform, f"hh-green-{village}", village, medical=30000)
    platform.clock.advance(timedelta(days=16))
    for role, region, count in (("village", VILLAGE, 4), ("township", TOWN, 8),
                                ("county", COUNTY, 8), ("admin", "", 12)):  # fmt: skip
        who = platform.auth(role, region)  # type: ignore[arg-type]
        listed = [c for page in await pages_of(platform, who, limit=2, **params) for c in page]
        assert all(c["village_code"].startswith(region) for c in listed), (role, listed)
        assert len({c["case_id"] for c in listed}) == len(listed)
        expected = {"green_channel": count // 4, "offset": count - 1}
        assert len(listed) == next((expected[k] for k in params if k in expected), count), role
