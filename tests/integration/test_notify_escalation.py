"""Acknowledgement links, escalation, digests and quiet hours, with an injected clock."""

from __future__ import annotations

import asyncio
import html
import json
import random
import re
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urljoin, urlsplit
from uuid import uuid4

import httpx
import pytest
from alembic import command
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from services.notify import delivery, digests, escalation, handlers
from services.notify.app import create_app
from services.notify.breaker import BreakerBoard
from services.notify.channels import build_channels
from services.notify.config import NotifySettings
from services.notify.models import notifications, outbox
from shared.clock import FrozenClock
from shared.events import (
    FEED_CHANNEL,
    CadreAssigned,
    CadreRegistered,
    CaseMerged,
    CaseOpened,
    Envelope,
    GreenChannelOpened,
    Payload,
    PlanCreated,
    decode,
    new_event,
)
from shared.migrations import alembic_config, upgrade
from shared.service import Runtime

pytestmark = [pytest.mark.postgres]
VILLAGE = "530102001001"
NOON_BEIJING = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


class Recorder:
    """A real HTTP server answering like a webhook, a group robot and an SMS gateway at once."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        calls = self.calls

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                calls.append({"path": urlsplit(self.path).path, "query": self.path, **body})
                answer = b'{"errcode": 0, "code": "OK"}'
                self.send_response(200)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> list[dict[str, Any]]:
        """The calls so far, forgetting them."""
        taken = list(self.calls)
        self.calls.clear()
        return taken


class Platform:
    """The notify service on a fresh database, driven pass by pass with a frozen clock."""

    def __init__(
        self,
        pg_url: str,
        recorder: Recorder,
        clock: FrozenClock,
        max_attempts: int = 8,
        public_base_url: str = "",
    ) -> None:
        self.clock = clock
        self.settings = NotifySettings(
            database_url=pg_url,
            webhook_url=f"{recorder.base}/office",
            sms_gateway_url=f"{recorder.base}/sms",
            ack_timeout_minutes=120,
            digest_window_minutes=60,
            max_attempts=max_attempts,
            public_base_url=public_base_url,
        )
        self.app = create_app(self.settings, clock=clock)
        self.runtime: Runtime = self.app.state.runtime
        self.breakers = BreakerBoard(5, timedelta(seconds=30))

    def event(self, payload: Payload, household_id: str) -> Envelope[Any]:
        return new_event(
            payload, household_id=household_id, source="test", correlation_id="c", clock=self.clock
        )

    async def feed(self, *events: Envelope[Any]) -> None:
        for env in events:
            handler: Any = {
                "CadreRegistered": handlers.on_cadre_registered,
                "CadreAssigned": handlers.on_cadre_assigned,
            }.get(env.event_type, handlers.on_routed_event)
            async with self.runtime.uow() as uow:
                await handler(uow=uow, event=env, settings=self.settings)

    async def deliver(self) -> None:
        async with httpx.AsyncClient() as http:
            await delivery.deliver_due(
                uow_factory=self.runtime.uow,
                channels=build_channels(http, self.settings),
                breakers=self.breakers,
                settings=self.settings,
                rng=random.Random(1),
            )

    async def rows(self) -> list[Any]:
        async with self.runtime.uow() as uow:
            return list(
                await uow.execute(select(notifications).order_by(notifications.c.created_at))
            )

    async def events(self, event_type: str) -> list[Envelope[Any]]:
        async with self.runtime.uow() as uow:
            found = [decode(r.value) for r in await uow.execute(select(outbox.c.value))]
        return [e for e in found if e.event_type == event_type]


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


@pytest.fixture
async def platform(pg_url: str, recorder: Recorder) -> AsyncIterator[Platform]:
    p = Platform(pg_url, recorder, FrozenClock(NOON_BEIJING))
    await upgrade(p.settings.database_url, p.runtime.service_dir)
    yield p
    await p.runtime.engine.dispose()


def roster(p: Platform, base: str) -> list[Envelope[Any]]:
    def cadre(cadre_id: str, rank: str, contacts: dict[str, str]) -> Envelope[Any]:
        return p.event(
            CadreRegistered(
                cadre_id=cadre_id,
                name=cadre_id,
                rank=rank,
                township_code=VILLAGE[:9],
                village_codes=[VILLAGE] if rank == "village" else [],
                contacts=contacts,
            ),
            f"cadre-{cadre_id}",
        )

    return [
        cadre("r1", "general", {"webhook": f"{base}/r1", "sms": "13800000001"}),
        cadre("v1", "village", {"webhook": f"{base}/v1"}),
        cadre("t1", "township", {"robot": f"{base}/t1"}),
        cadre("k1", "county_leader", {"webhook": f"{base}/k1"}),
    ]


def assigned(p: Platform, household: str) -> Envelope[Any]:
    return p.event(
        CadreAssigned(cadre_id="r1", case_id=str(uuid4()), village_code=VILLAGE), household
    )


async def test_unacknowledged_green_channel_goes_by_sms_then_up_a_level(
    platform: Platform, recorder: Recorder
) -> None:
    p = platform
    green = p.event(
        GreenChannelOpened(
            case_id="case-g",
            village_code=VILLAGE,
            risk_types=["illness"],
            provisional_measures=["medical_aid"],
            paperwork_due=NOON_BEIJING + timedelta(days=14),
            reasons=[],
            channel=FEED_CHANNEL,  # found by a department feed
        ),
        "hh-green",
    )
    await p.feed(*roster(p, recorder.base), assigned(p, "hh-green"), green)
    await p.deliver()
    first = recorder.take()
    # rules §5.2: responsible cadre, township and county at once, each with an ack link
    assert sorted(c["path"] for c in first) == ["/k1", "/r1", "/t1"]
    township = next(c for c in first if c["path"] == "/t1")
    assert "hh-green" in township["text"]["content"] and "/v1/acks/" in township["text"]["content"]
    links = {c["path"]: c["ack_url"] for c in first if c["path"] != "/t1"}

    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app), base_url="http://t")
    async with api:
        t1_link = township["text"]["content"].split("确认:")[1]
        page = await api.get(urlsplit(t1_link).path)
        assert page.status_code == 200 and 'method="post"' in page.text
        t1_ack = await api.post(urlsplit(t1_link).path)
        assert t1_ack.status_code == 200
        again = await api.post(urlsplit(t1_link).path)
        assert again.json()["acknowledged_at"] == t1_ack.json()["acknowledged_at"]
        forged = urlsplit(t1_link).path[:-4] + "AAAA"
        assert (await api.post(forged)).status_code == 401

        p.clock.advance(timedelta(minutes=119))
        assert await escalation.escalate_due(uow_factory=p.runtime.uow, settings=p.settings) == 0

        p.clock.advance(timedelta(minutes=2))
        # the cadre's webhook and the county's webhook were not acknowledged; the township's was
        assert await escalation.escalate_due(uow_factory=p.runtime.uow, settings=p.settings) == 2
        await p.deliver()
        second = {c["path"]: c for c in recorder.take()}
        assert sorted(second) == ["/office", "/sms"]
        assert second["/sms"]["phone"] == "13800000001"
        assert "/v1/acks/" in second["/sms"]["text"]
        assert "无人确认" in second["/office"]["text"]

        p.clock.advance(timedelta(minutes=121))
        await escalation.escalate_due(uow_factory=p.runtime.uow, settings=p.settings)
        await p.deliver()
        third = recorder.take()
        # the responsible cadre ignored webhook and SMS: the township hears of it
        assert [c["path"] for c in third] == ["/t1"]
        assert "hh-green" in third[0]["text"]["content"]

        r1_ack = await api.post(urlsplit(links["/r1"]).path)
        assert r1_ack.status_code == 200

    rows = await p.rows()
    r1_rows = [
        r for r in rows if r.recipient == "cadre:r1" and r.event_type == "GreenChannelOpened"
    ]
    assert {r.channel for r in r1_rows} == {"webhook", "sms"}
    assert all(r.acknowledged_at is not None for r in r1_rows)
    # the escalations of a feed's alert queue behind the declarations' alerts, like the alert
    escalated = [r for r in rows if r.event_type == "GreenChannelOpened"]
    assert len(escalated) > 3 and all(r.from_feed for r in escalated)
    acked = await p.events("NotificationAcknowledged")
    assert sorted(e.payload.recipient for e in acked) == ["cadre:r1", "cadre:t1"]

    p.clock.advance(timedelta(hours=5))
    await escalation.escalate_due(uow_factory=p.runtime.uow, settings=p.settings)
    await p.deliver()
    # everyone acknowledged or the office was told: nothing more goes out about r1
    assert all(c["path"] != "/sms" for c in recorder.take())


async def test_low_priority_alerts_to_one_cadre_become_one_digest(
    platform: Platform, recorder: Recorder
) -> None:
    p = platform
    households = [f"hh-d{n}" for n in range(3)]
    plans = [
        p.event(
            PlanCreated(
                plan_id=str(uuid4()),
                case_id=str(uuid4()),
                village_code=VILLAGE,
                measures=["medical_aid"],
                case_deadline=NOON_BEIJING + timedelta(days=10 + n),
            ),
            h,
        )
        for n, h in enumerate(households)
    ]
    await p.feed(*roster(p, recorder.base), *(assigned(p, h) for h in households), *plans)
    await p.deliver()
    assert recorder.take() == [], "low-priority alerts wait for the digest"
    assert await digests.release_digests(uow_factory=p.runtime.uow, settings=p.settings) == 0

    p.clock.advance(timedelta(minutes=61))
    assert await digests.release_digests(uow_factory=p.runtime.uow, settings=p.settings) == 6
    await p.deliver()
    [digest] = recorder.take()
    assert digest["path"] == "/r1" and digest["event_type"] == "Digest"
    # a new responsibility is not hidden in a count: the digest says what its alerts are
    assert digest["text"].startswith(
        "【防返贫汇总】6条提醒（新任帮扶责任人3户、帮扶计划3项）：农户"
    )
    assert digest["kinds"] == {"CadreAssigned": 3, "PlanCreated": 3}
    assert digest["deadline"] == (NOON_BEIJING + timedelta(days=10)).isoformat()
    statuses = sorted(r.status for r in await p.rows())
    assert statuses == ["delivered"] + ["digested"] * 6


async def test_quiet_hours_hold_a_normal_alert_until_morning(
    platform: Platform, recorder: Recorder
) -> None:
    p = platform
    p.clock.advance(timedelta(hours=10))  # 22:00 in Beijing
    opened = p.clock.now()
    case = p.event(
        CaseOpened(
            case_id="case-q",
            village_code=VILLAGE,
            risk_types=["illness"],
            channel="app",
            opened_at=opened,
            deadline=opened + timedelta(days=15),
            home_visit_due=opened + timedelta(days=2),
        ),
        "hh-night",
    )
    await p.feed(*roster(p, recorder.base), case)
    await p.deliver()
    assert recorder.take() == []
    p.clock.advance(timedelta(hours=9, minutes=59))  # 07:59
    await p.deliver()
    assert recorder.take() == []
    p.clock.advance(timedelta(minutes=1))  # 08:00
    await p.deliver()
    [call] = recorder.take()
    assert call["path"] == "/v1" and call["household_id"] == "hh-night"


async def test_rules_4_10_a_declaration_joining_an_open_case_reaches_the_village_cadre(
    platform: Platform, recorder: Recorder
) -> None:
    """The merge that started the home-visit clock reaches the village cadre once, even
    delivered twice, naming the visit's date; in a village without a cadre, the county office.
    Ordinary merges, of this producer or an older one, reach nobody."""
    p = platform
    due = NOON_BEIJING + timedelta(days=2)  # Wednesday 12:00 in Beijing

    def merged(household: str, village: str | None, visit_due: datetime | None) -> Envelope[Any]:
        return p.event(
            CaseMerged(
                case_id=f"case-{household}", risk_types=["housing_unsafe", "illness"],
                submission_id="s", village_code=village, home_visit_due=visit_due,
                level="village" if visit_due else None,
            ),
            household,
        )  # fmt: skip

    started = merged("hh-m", VILLAGE, due)
    elsewhere = merged("hh-far", "530102001009", due)  # nobody on the roster for it
    ordinary = merged("hh-m", VILLAGE, None)  # a cadre report or department record joining
    older = p.event(CaseMerged(case_id="case-hh-m", risk_types=["illness"]), "hh-m")
    await p.feed(*roster(p, recorder.base), started, ordinary, older, elsewhere, started)
    rows = await p.rows()
    assert sorted((r.source_event_id, r.recipient, r.channel) for r in rows) == sorted(
        [
            (str(started.event_id), "cadre:v1", "webhook"),
            (str(elsewhere.event_id), "office:county", "webhook"),
        ]
    )
    await p.deliver()
    calls = sorted(recorder.take(), key=lambda c: c["path"])
    assert [(c["path"], c["household_id"], c["event_type"]) for c in calls] == [
        ("/office", "hh-far", "CaseMerged"),
        ("/v1", "hh-m", "CaseMerged"),
    ]
    for call in calls:
        assert call["deadline"] == due.isoformat() and call["priority"] == "normal"
        assert "3月4日前入户核实" in call["text"] and "自主申报" in call["text"]
    await p.feed(started)  # redelivered after the delivery: still one message
    await p.deliver()
    assert recorder.take() == [] and len(await p.rows()) == 2


async def test_a_dead_urgent_alert_goes_up_at_once(pg_url: str, recorder: Recorder) -> None:
    p = Platform(pg_url, recorder, FrozenClock(NOON_BEIJING), max_attempts=1)
    await upgrade(p.settings.database_url, p.runtime.service_dir)
    try:
        cadres = roster(p, recorder.base)
        township = cadres[2].payload.model_copy(
            update={"contacts": {"robot": "http://127.0.0.1:9/"}}
        )
        cadres[2] = p.event(township, "cadre-t1")
        green = p.event(
            GreenChannelOpened(
                case_id="case-x",
                village_code=VILLAGE,
                risk_types=["accident"],
                provisional_measures=["temporary_assistance"],
                paperwork_due=NOON_BEIJING + timedelta(days=14),
                reasons=[],
            ),
            "hh-dead",
        )
        await p.feed(*cadres, green)
        await p.deliver()
        # nobody is responsible for the household yet: the county office stands in
        assert sorted(c["path"] for c in recorder.take()) == ["/k1", "/office"]
        [failed] = await p.events("NotificationFailed")
        assert failed.payload.recipient == "cadre:t1"
        # urgent alerts go up through escalate_due, not as undelivered notices
        assert (
            await escalation.report_undelivered(uow_factory=p.runtime.uow, settings=p.settings) == 0
        )
        # no waiting for the ack timeout: the township's robot is unreachable, so the county hears
        assert await escalation.escalate_due(uow_factory=p.runtime.uow, settings=p.settings) == 1
        await p.deliver()
        [call] = recorder.take()
        assert call["path"] == "/k1" and "无人确认" in call["text"]
    finally:
        await p.runtime.engine.dispose()


async def test_the_ack_page_behind_a_path_prefix_names_the_alert_and_answers_a_browser(
    pg_url: str, recorder: Recorder
) -> None:
    """Behind a proxy serving notify under /notify (config.py's example), the page's form posts
    back to the link itself; the page names the household (masked as messages mask it) and the
    alert; a browser's form post reads a confirmation page, an API client JSON."""
    p = Platform(pg_url, recorder, FrozenClock(NOON_BEIJING), public_base_url="http://host/notify")
    await upgrade(p.settings.database_url, p.runtime.service_dir)
    try:
        green = p.event(
            GreenChannelOpened(
                case_id="case-p", village_code=VILLAGE, risk_types=["illness"],
                provisional_measures=["medical_aid"], reasons=[],
                paperwork_due=NOON_BEIJING + timedelta(days=14), head_name="张三13812345678",
            ),
            "hh-prefix",
        )  # fmt: skip
        await p.feed(*roster(p, recorder.base), assigned(p, "hh-prefix"), green)
        await p.deliver()
        link = next(c["ack_url"] for c in recorder.take() if c["path"] == "/r1")
        assert link.startswith("http://host/notify/v1/acks/")

        def behind_proxy(url: str) -> str:  # the proxy strips its prefix
            path = urlsplit(url).path
            assert path.startswith("/notify/"), url
            return path[len("/notify") :]

        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app), base_url="http://t")
        async with api:
            page = await api.get(behind_proxy(link))
            assert page.status_code == 200, page.text
            action = re.search(r'<form method="post" action="([^"]+)"', page.text)
            assert action is not None and urljoin(link, html.unescape(action[1])) == link
            # the household as messages name it, masked (rules §4.13), and what the alert asks
            assert "张三138****" in page.text and "13812345678" not in page.text
            assert "开通绿色通道，请立即救助" in page.text and "/v1/acks/" not in page.text

            form = await api.post(
                behind_proxy(urljoin(link, html.unescape(action[1]))),
                content=b"",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
            assert "已确认收到" in form.text and "张三138****" in form.text
            assert "2026-03-02 12:00" in form.text  # local time of the acknowledgement

            client = await api.post(behind_proxy(link))  # an API client: JSON, as before
            assert client.json()["acknowledged_at"].startswith("2026-03-02T04:00:00")
            again = await api.get(behind_proxy(link))
            assert "已确认 / Acknowledged" in again.text and "<form" not in again.text

            forged = behind_proxy(link)[:-4] + "AAAA"
            refused = await api.get(forged)
            assert refused.status_code == 401 and "token: signature" in refused.text
            assert refused.headers["content-type"].startswith("text/html")
            assert (await api.post(forged)).json()["detail"].startswith("token:")
        [acked] = await p.events("NotificationAcknowledged")
        assert acked.payload.recipient == "cadre:r1"
    finally:
        await p.runtime.engine.dispose()


def told(event_type: str, level: str) -> float:
    value = REGISTRY.get_sample_value(
        "holdline_notify_undelivered_reported_total", {"event_type": event_type, "level": level}
    )
    return value or 0.0


async def test_an_undelivered_alert_is_told_one_level_up_once(
    pg_url: str, recorder: Recorder
) -> None:
    """A village cadre's webhook is dead: the CaseOpened alert (rules §4.10: visit within 2
    working days) ends failed, and the township hears whom it did not reach and what it asked,
    once, whatever is replayed; when the township's robot is dead too, the county hears."""
    p = Platform(pg_url, recorder, FrozenClock(NOON_BEIJING), max_attempts=2)
    await upgrade(p.settings.database_url, p.runtime.service_dir)
    report = partial(escalation.report_undelivered, uow_factory=p.runtime.uow, settings=p.settings)
    try:
        cadres = roster(p, recorder.base)
        dead = "http://127.0.0.1:9/dead"
        cadres[1] = p.event(cadres[1].payload.model_copy(update={"name": "村干部甲",
                            "contacts": {"webhook": dead}}), "cadre-v1")  # fmt: skip
        opened = p.clock.now()
        case = p.event(
            CaseOpened(
                case_id="case-u", village_code=VILLAGE, risk_types=["illness"], channel="app",
                opened_at=opened, deadline=opened + timedelta(days=15),
                home_visit_due=opened + timedelta(days=2), head_name="张三",
            ),
            "hh-undelivered",
        )  # fmt: skip
        await p.feed(*cadres, case)
        await p.deliver()
        assert await report() == 0, "a failure with attempts left is not reported"
        p.clock.advance(timedelta(minutes=10))
        await p.deliver()
        [failed] = [r for r in await p.rows() if r.status == "failed"]
        assert failed.recipient == "cadre:v1" and failed.attempts == 2
        before = told("CaseOpened", "township")

        assert await report() == 1
        assert await report() == 0, "told once"
        await p.deliver()
        [call] = recorder.take()
        assert call["path"] == "/t1" and call["msgtype"] == "text"
        asked = "农户张三户报因病风险，请3月4日前入户核实，3月17日前完成认定"
        assert call["text"]["content"] == f"【送达失败】村干部甲未收到提醒，请代为跟进：{asked}"
        assert told("CaseOpened", "township") == before + 1

        # replayed (a crash before the mark, another replica): still one notice per recipient
        async with p.runtime.uow() as uow:
            await uow.execute(
                update(notifications)
                .where(notifications.c.id == failed.id)
                .values(escalated_at=None)
            )
        assert await report() == 1
        notices = [r for r in await p.rows() if r.body.get("undelivered_from") == failed.id]
        assert [(r.recipient, r.priority) for r in notices] == [("cadre:t1", "normal")]
        notice = notices[0]
        assert notice.body["unreached"] == "cadre:v1" and notice.body["household_name"] == "张三"
        assert notice.body["asked"].endswith(asked) and notice.event_type == "CaseOpened"

        # the township's robot is gone too: its notice fails, and the county hears of it,
        # quoting the first alert's ask
        async with p.runtime.uow() as uow:
            await uow.execute(
                update(notifications)
                .where(notifications.c.id == notice.id)
                .values(status="failed", attempts=2, escalated_at=None)
            )
        assert await report() == 1
        await p.deliver()
        [county] = recorder.take()
        assert county["path"] == "/k1"
        assert county["text"] == f"【送达失败】t1未收到提醒，请代为跟进：{asked}"
    finally:
        await p.runtime.engine.dispose()


async def test_the_upgrade_does_not_report_alerts_that_failed_long_ago(
    pg_url: str, recorder: Recorder
) -> None:
    """Migration 0006: failed non-urgent alerts older than an identification period (rules
    §4.9) count as told; a recent one is still told one level up after the upgrade."""
    p = Platform(pg_url, recorder, FrozenClock(datetime.now(UTC)))
    config = alembic_config(p.settings.database_url, p.runtime.service_dir)
    await asyncio.to_thread(command.upgrade, config, "0005")
    try:
        now = datetime.now(UTC)

        def row(name: str, age: timedelta, priority: str = "normal") -> dict[str, Any]:
            return {
                "id": name, "source_event_id": name, "event_type": "CaseOpened",
                "household_id": "hh-old", "recipient": "cadre:v1", "channel": "webhook",
                "body": {"text": "【防返贫】农户hh-old报因病风险"}, "status": "failed",
                "attempts": 8, "next_attempt_at": now - age, "created_at": now - age,
                "village_code": VILLAGE, "recipient_level": "village", "priority": priority,
            }  # fmt: skip

        async with p.runtime.uow() as uow:
            await uow.execute(
                notifications.insert(),
                [row("old", timedelta(days=40)), row("recent", timedelta(days=3)),
                 row("urgent", timedelta(days=40), "urgent")],
            )  # fmt: skip
        await upgrade(p.settings.database_url, p.runtime.service_dir)
        marked = {r.id: r.escalated_at is not None for r in await p.rows()}
        assert marked == {"old": True, "recent": False, "urgent": False}
        await p.feed(*roster(p, recorder.base))
        assert (
            await escalation.report_undelivered(uow_factory=p.runtime.uow, settings=p.settings) == 1
        )
        notices = [r for r in await p.rows() if r.body.get("undelivered_from")]
        assert [(r.body["undelivered_from"], r.recipient) for r in notices] == [
            ("recent", "cadre:t1")
        ]
    finally:
        await p.runtime.engine.dispose()
