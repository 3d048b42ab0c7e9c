"""The chaos run's casework traffic (bench/chaos_load.py): which households' records name no
village, which cases the village rejects, and an action retried through a fault is confirmed
once, from the case, when its first attempt committed and only the answer was lost."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from bench.chaos_load import Casework, Pacer, Strikes, act, action_done, build_traffic
from shared.identity import county_placeholder, mask_resident_id


def test_a_few_households_name_no_village_and_none_of_them_declared() -> None:
    traffic = build_traffic(1_500, 7)
    declared = {d["household_id"] for d in traffic.declarations}
    assert len(traffic.unplaced) >= 3 and not set(traffic.unplaced) & declared
    assert len(traffic.rejections) >= 3 and set(traffic.rejections) <= declared
    rows = [json.loads(line) for u in traffic.uploads for line in u.body.splitlines()]
    nowhere = [r for r in rows if "village_code" not in r]
    assert nowhere and {r["household_id"] for r in nowhere} == set(traffic.unplaced)
    assert all(r["household_id"] not in traffic.unplaced for r in rows if "village_code" in r)
    # rules §9.4: held by the county the resident ID is registered in, 530102
    valid = [r for r in nowhere if r["resident_id"] != "11010519491231002"]
    assert {county_placeholder(mask_resident_id(r["resident_id"])) for r in valid} == {
        "530102000000"
    }
    assert traffic.casework_actions == len(traffic.unplaced) + 4 * len(traffic.rejections)


def test_at_full_size_about_half_a_percent_of_records_name_no_village() -> None:
    traffic = build_traffic(100_000, 7)
    nowhere = sum(
        1 for u in traffic.uploads for line in u.body.splitlines() if b"village_code" not in line
    )
    assert 0.003 < nowhere / traffic.feed_rows < 0.008
    assert len(traffic.rejections) == len(traffic.households) // 100


CASE = {"village_code": "530102001001", "notice_posted_at": None, "status": "open",
        "stage": "risk_discovered"}  # fmt: skip


def test_an_action_is_done_once_the_case_moved_past_it() -> None:
    start = {"action": "start_home_verification"}
    assert not action_done(CASE, start)
    assert action_done(CASE | {"stage": "home_verification"}, start)
    assert action_done(CASE | {"stage": "village_appraisal"}, start)
    complete = {"action": "complete_home_verification", "signed_form": True}
    assert not action_done(CASE | {"stage": "home_verification"}, complete)
    assert action_done(CASE | {"stage": "village_appraisal"}, complete)
    notice = {"action": "post_public_notice"}
    assert not action_done(CASE | {"stage": "village_appraisal"}, notice)
    assert action_done(CASE | {"notice_posted_at": "2026-12-01T00:00:00Z"}, notice)
    assert action_done(CASE | {"status": "rejected"}, {"action": "reject", "reason": "r"})
    place = {"action": "assign_village", "village_code": "530102001001"}
    assert action_done(CASE, place)
    assert not action_done(CASE | {"village_code": "530102000000"}, place)


def _risk(answers: list[Any], case: dict[str, Any]) -> tuple[httpx.AsyncClient, list[str]]:
    """A risk whose POSTs answer (or fail) in turn, and whose GET shows `case`."""
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "GET":
            return httpx.Response(200, json=case)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={"detail": "x"})

    return httpx.AsyncClient(transport=httpx.MockTransport(handle)), calls


async def test_a_lost_answer_then_a_409_is_confirmed_from_the_case() -> None:
    http, calls = _risk(
        [httpx.ReadTimeout("lost"), 503, 409], CASE | {"stage": "village_appraisal"}
    )
    work = Casework()
    async with http:
        body = {"action": "complete_home_verification", "signed_form": True}
        assert await act(http, "http://risk", "c1", body, {}, work)
    assert calls == ["POST", "POST", "POST", "GET"]
    assert (work.sent, work.retried, work.confirmed_by_read) == (3, 2, 1)
    assert work.confirmed == {("c1", "complete_home_verification"): "read"}


async def test_a_dropped_answer_is_retried_and_confirmed_from_the_case() -> None:
    """Every second action's 200 is thrown away: its retry's 409 is confirmed by reading the
    case; the other action's 200 stands."""
    http, calls = _risk([200, 200, 409], CASE | {"stage": "home_verification"})
    work = Casework(drop_every=2)
    async with http:
        first = {"action": "assign_village", "village_code": "530102001001"}
        assert await act(http, "http://risk", "c1", first, {}, work)
        assert await act(http, "http://risk", "c1", {"action": "start_home_verification"},
                         {}, work)  # fmt: skip
    assert calls == ["POST", "POST", "POST", "GET"]
    assert work.dropped == [("c1", "start_home_verification")]
    assert work.confirmed == {
        ("c1", "assign_village"): "answer", ("c1", "start_home_verification"): "read",
    }  # fmt: skip


async def test_a_409_after_a_retry_with_the_case_not_moved_is_refused() -> None:
    http, _ = _risk([httpx.ConnectError("down"), 409], CASE)
    work = Casework()
    async with http:
        assert not await act(http, "http://risk", "c1", {"action": "reject"}, {}, work)
    assert work.confirmed == {} and [r[:3] for r in work.refused] == [("c1", "reject", 409)]


async def test_a_409_at_the_first_attempt_is_refused_without_reading_the_case() -> None:
    moved = CASE | {"stage": "home_verification"}
    http, calls = _risk([409], moved)
    work = Casework()
    async with http:
        assert not await act(http, "http://risk", "c1", {"action": "start_home_verification"},
                             {}, work)  # fmt: skip
    assert calls == ["POST"] and len(work.refused) == 1 and not work.confirmed


async def test_every_other_turn_waits_for_risk_or_postgresql_to_go_down() -> None:
    strikes = Strikes()
    pacer = Pacer(4, 0, strikes, aim_timeout=5)
    first = asyncio.create_task(pacer.turn())
    await asyncio.sleep(0.05)
    strikes.announce("SIGKILL notify + restart")  # not what it aims at
    await asyncio.sleep(0.05)
    assert not first.done()
    strikes.announce("SIGKILL risk + restart")
    await asyncio.wait_for(first, 1)
    await asyncio.wait_for(pacer.turn(), 1)  # the second turn is not aimed
    assert (pacer.taken, pacer.aimed) == (2, 1)


async def test_only_the_first_turns_aim() -> None:
    """A run of many actions does not wait for a strike at every other one."""
    pacer = Pacer(6, 0, Strikes(), aim_timeout=0.3, max_aims=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(6):
        await pacer.turn()
    assert pacer.aiming == 1 and loop.time() - started < 0.6  # three aims: 0.9 s


async def test_an_aimed_turn_gives_up_when_no_fault_comes() -> None:
    pacer = Pacer(1, 0, Strikes(), aim_timeout=0.1)
    await asyncio.wait_for(pacer.turn(), 1)
    assert pacer.aimed == 0
