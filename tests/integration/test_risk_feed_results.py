"""rules §8.2 on PostgreSQL (tests/unit/test_risk_feed_results_sqlite.py runs the same on SQLite): a
department reads back, by line, what risk made of each accepted record of its feed: a case
opened or joined, nothing found, a monitoring object reassessed; paged to the last record,
counted by outcome, as JSON or CSV, with the key intake takes the feed with."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import insert, select

from services.risk import handlers
from services.risk.models import household_signals, households
from shared.events import FeedRecord, FeedRecordsReceived, new_event
from tests.integration.test_risk_workflow_api import (
    ELDER,
    START,
    VILLAGE,
    Platform,
    risk_platform,
)
from tests.support import refused_field

pytestmark = [pytest.mark.postgres]
BATCH = "6f1c2a52-2f6b-4a8e-9a57-1a2b3c4d5e6f"
DEPARTMENT = "medical_insurance"
KEY = {"X-API-Key": "dev-medical_insurance-key"}  # development keys: dev-<department>-key
RESULTS = f"/v1/feeds/{DEPARTMENT}/batches/{BATCH}/results"
SUMMARY = f"/v1/feeds/{DEPARTMENT}/batches/{BATCH}/summary"
SPENT = {"out_of_pocket_spending": 23_800.5, "serious_illness_claim": False}  # illness
NOTHING = {"out_of_pocket_spending": 0}


@pytest.fixture
async def platform(pg_url: str) -> AsyncIterator[Platform]:
    async with risk_platform(pg_url) as built:
        yield built


def record(line: int, household: str, facts: dict[str, Any]) -> FeedRecord:
    return FeedRecord(
        line=line, household_id=household, person_id_hash=f"p-{household}",
        person_id_masked=f"530102********{line:04d}", village_code=VILLAGE,
        recorded_on=date(2026, 3, 1), facts=facts,
    )  # fmt: skip


async def feed_slice(
    platform: Platform,
    records: list[FeedRecord],
    *,
    batch: str = BATCH,
    department: str = DEPARTMENT,
) -> None:
    """One FeedRecordsReceived slice as intake publishes it, through risk's batch handler."""
    event = new_event(
        FeedRecordsReceived(batch_id=batch, department=department, shard=0, records=records),
        household_id="feed-0", source=f"intake.feed.{department}", correlation_id=batch,
        clock=platform.clock,
    )  # fmt: skip
    async with platform.runtime.uow() as uow:
        await handlers.on_signal_batch(uow=uow, events=[event], settings=platform.settings)


async def monitoring_object(platform: Platform, household: str) -> None:
    """A household identified for illness earlier: a monitoring object (rules §4 channel 4)."""
    async with platform.runtime.uow() as uow:
        await uow.execute(
            insert(households).values(
                id=household, village_code=VILLAGE, head_name="王秀英", status="monitoring",
                kind="marginal", risk_types=["illness"], risk_codes=",illness,",
                new_risk_types=[], members=[], guarantees={}, per_capita_income=5000,
                annual_income=20_000, medical_spending=3000, updated_at=START,
            )
        )  # fmt: skip


async def get(platform: Platform, url: str, **params: Any) -> Any:
    answer = await platform.http.get(url, params=params, headers=KEY)
    assert answer.status_code == 200, answer.text
    return answer


async def every_page(platform: Platform, url: str, **params: Any) -> list[list[Any]]:
    """Every page, following Link rel=next to the end."""
    pages: list[list[Any]] = []
    answer = await get(platform, url, **params)
    while True:
        body = answer.json()
        pages.append(body["records"])
        if "next" not in answer.links:
            assert body["next_after_line"] is None
            return pages
        assert body["next_after_line"] == body["records"][-1]["line"]
        answer = await platform.http.get(answer.links["next"]["url"], headers=KEY)
        assert answer.status_code == 200, answer.text


async def test_each_record_says_what_risk_made_of_it(platform: Platform) -> None:
    """Opened, joined (a declared case, and the case a record of the same slice opened),
    nothing found, a monitoring object reassessed; a consistency flag kept with its record."""
    await platform.declare("hh-declared", ["illness"], medical_spending=3000)
    declared_case = await platform.open_case_id("hh-declared")
    await monitoring_object(platform, "hh-monitored")
    await platform.register("hh-elder", [ELDER], income=5200)  # nobody able to work
    await feed_slice(
        platform,
        [
            record(2, "hh-new", SPENT),
            record(3, "hh-declared", SPENT),
            record(5, "hh-quiet", NOTHING),
            record(7, "hh-monitored", SPENT),
            record(8, "hh-new", SPENT),  # the same household again: joins the case line 2 opened
        ],
    )
    await feed_slice(
        platform,
        [record(9, "hh-elder", {"out_of_pocket_spending": 0, "serious_illness_claim": True})],
    )
    body = (await get(platform, RESULTS)).json()
    assert body["batch_id"] == BATCH and body["department"] == DEPARTMENT
    assert body["next_after_line"] is None
    by_line = {r["line"]: r for r in body["records"]}
    assert list(by_line) == [2, 3, 5, 7, 8, 9]
    opened = by_line[2]
    assert opened["outcome"] == "case_opened" and opened["risk_types"] == ["illness"]
    assert opened["household_id"] == "hh-new"
    assert opened["person_id_masked"] == "530102********0002"
    assert opened["case_id"] == await platform.open_case_id("hh-new")
    assert by_line[3]["outcome"] == "case_joined" and by_line[3]["case_id"] == declared_case
    assert by_line[8]["outcome"] == "case_joined" and by_line[8]["case_id"] == opened["case_id"]
    assert by_line[5] | {"person_id_masked": ""} == {
        "line": 5, "person_id_masked": "", "household_id": "hh-quiet", "outcome": "no_risk",
        "risk_types": [], "flags": [], "case_id": None,
    }  # fmt: skip
    monitored = by_line[7]
    assert monitored["outcome"] == "monitored" and monitored["case_id"] is None
    assert monitored["risk_types"] == ["illness"]
    # rules §3.3: a serious-illness claim without out-of-pocket spending is flagged, still opens
    flagged = by_line[9]
    assert flagged["outcome"] == "case_opened"
    assert [f["rule"] for f in flagged["flags"]] == ["rules §3.3"]

    summary = (await get(platform, SUMMARY)).json()
    assert summary == {
        "batch_id": BATCH, "department": DEPARTMENT, "evaluated": 6,
        "outcomes": {"no_risk": 1, "case_opened": 2, "case_joined": 2, "monitored": 1},
    }  # fmt: skip
    only = (await get(platform, RESULTS, outcome="case_joined")).json()["records"]
    assert [r["line"] for r in only] == [3, 8]


async def test_the_next_links_reach_every_record_once_in_line_order(platform: Platform) -> None:
    """Lines out of order across slices (intake shards by household) come back in order."""
    lines = list(range(1, 48))
    for part in (lines[1::2], lines[::2]):
        await feed_slice(platform, [record(n, f"hh-{n}", NOTHING) for n in part])
    pages = await every_page(platform, RESULTS, limit=10)
    assert [len(p) for p in pages] == [10, 10, 10, 10, 7]
    assert [r["line"] for p in pages for r in p] == lines
    # a page ending exactly at the last record has no next link
    full = await get(platform, RESULTS, limit=47)
    assert "next" not in full.links and len(full.json()["records"]) == 47
    rest = await get(platform, RESULTS, after_line=40, limit=100)
    assert [r["line"] for r in rest.json()["records"]] == lines[40:]
    beyond = await get(platform, RESULTS, after_line=47)
    assert beyond.json() == {
        "batch_id": BATCH, "department": DEPARTMENT, "records": [], "next_after_line": None,
    }  # fmt: skip
    assert (await get(platform, SUMMARY)).json()["evaluated"] == 47


async def test_csv_for_a_spreadsheet(platform: Platform) -> None:
    await platform.register("hh-elder", [ELDER], income=5200)
    await feed_slice(
        platform,
        [
            record(1, "hh-a", SPENT),
            record(2, "hh-elder", {"out_of_pocket_spending": 0, "serious_illness_claim": True}),
            record(3, "hh-b", NOTHING),
        ],
    )
    by_param = await get(platform, RESULTS, format="csv", limit=2)
    by_accept = await platform.http.get(
        RESULTS, params={"limit": 2}, headers=KEY | {"Accept": "text/csv"}
    )
    for answer in (by_param, by_accept):
        assert answer.headers["content-type"].startswith("text/csv")
        assert "after_line=2" in answer.links["next"]["url"]
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [r["line"] for r in rows] == ["1", "2"]
        assert rows[0]["outcome"] == "case_opened" and rows[0]["risk_types"] == "illness"
        assert rows[0]["case_id"] and rows[0]["flags"] == ""
        assert rows[1]["flags"].startswith("rules §3.3 ")
    following = await platform.http.get(by_param.links["next"]["url"], headers=KEY)
    assert following.headers["content-type"].startswith("text/csv")  # the format is kept
    [last] = list(csv.DictReader(io.StringIO(following.text)))
    assert last["line"] == "3" and last["outcome"] == "no_risk" and last["case_id"] == ""


async def test_a_department_sees_only_its_own_batches(platform: Platform) -> None:
    await feed_slice(platform, [record(1, "hh-a", SPENT)])
    await feed_slice(platform, [record(1, "hh-b", NOTHING)], batch="h-1", department="health")
    assert (await platform.http.get(RESULTS)).status_code == 401
    unknown_key = await platform.http.get(RESULTS, headers={"X-API-Key": "nope"})
    assert unknown_key.status_code == 401 and unknown_key.json()["detail"].startswith("X-API-Key")
    health = {"X-API-Key": "dev-health-key"}
    for url in (RESULTS, SUMMARY):
        refused = await platform.http.get(url, headers=health)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"].startswith("department:")
        # its own path, another department's batch: as unknown as a batch never sent
        other = await platform.http.get(url.replace(DEPARTMENT, "health"), headers=health)
        assert other.status_code == 404 and other.json()["detail"].startswith("batch_id:")
    own = await platform.http.get("/v1/feeds/health/batches/h-1/results", headers=health)
    assert [r["household_id"] for r in own.json()["records"]] == ["hh-b"]
    for url in (RESULTS, SUMMARY):
        unknown = await platform.http.get(url.replace(BATCH, "no-such-batch"), headers=KEY)
        assert unknown.status_code == 404 and unknown.json()["detail"].startswith("batch_id:")


async def test_a_bad_cursor_or_parameter_is_refused_naming_it(platform: Platform) -> None:
    await feed_slice(platform, [record(1, "hh-a", SPENT)])
    for params, field in (
        ({"after_line": "abc"}, "after_line"),
        ({"after_line": -1}, "after_line"),
        ({"after_line": 2**31}, "after_line"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"outcome": "opened"}, "outcome"),
        ({"format": "xlsx"}, "format"),
        ({"cursor": "x"}, "cursor"),  # GET /v1/cases' paging is not this one's
    ):
        answer = await platform.http.get(RESULTS, params=params, headers=KEY)
        assert refused_field(answer) == field, (params, answer.text)


async def test_other_signals_leave_no_batch_or_line(platform: Platform) -> None:
    """A declaration's row has no batch: it is never listed as a feed's record."""
    await platform.declare("hh-d", ["illness"], medical_spending=3000)
    async with platform.runtime.uow() as uow:
        row = (await uow.execute(select(household_signals))).one()
    assert (row.batch_id, row.line, row.outcome) == (None, None, "case_opened")
    assert row.case_id == await platform.open_case_id("hh-d")
