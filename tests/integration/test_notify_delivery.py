"""Delivery on PostgreSQL against a real receiver that fails half the time and goes down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.notify import delivery, handlers, metrics
from services.notify.app import create_app
from services.notify.breaker import BreakerBoard
from services.notify.channels import build_channels
from services.notify.config import NotifySettings
from services.notify.models import delivery_attempts, notifications, outbox
from shared.auth import mint_token
from shared.clock import SystemClock
from shared.events import (
    FEED_CHANNEL,
    CadreRegistered,
    CaseOpened,
    Envelope,
    GreenChannelOpened,
    Payload,
    decode,
    new_event,
)
from shared.migrations import upgrade
from shared.service import Runtime

pytestmark = [pytest.mark.postgres]
VILLAGES = ("530102001001", "530102001002", "530102001003")


class FlakyReceiver:
    """A real webhook receiver: answers 500 to a random share of calls; `down()` refuses them."""

    def __init__(self, failure_rate: float = 0.5, seed: int = 11) -> None:
        self.failure_rate = failure_rate
        self.accepted: Counter[str] = Counter()  # notification id -> calls answered 200
        self.calls = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._server: Any = None
        self.up()

    def up(self) -> None:
        """Listen (again) on the same port."""
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with outer._lock:
                    outer.calls += 1
                    fail = outer._rng.random() < outer.failure_rate
                    if not fail:
                        outer.accepted[body["notification_id"]] += 1
                self.send_response(500 if fail else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        ThreadingHTTPServer.request_queue_size = 128
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handle)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Stop listening: connections are refused until `up()`."""
        self._server.shutdown()
        self._server.server_close()

    def close(self) -> None:
        self.down()


def event(payload: Payload, household_id: str) -> Envelope[Any]:
    """An envelope as the producing service would publish it."""
    return new_event(
        payload,
        household_id=household_id,
        source="test",
        correlation_id=str(uuid4()),
        clock=SystemClock(),
    )


def case_opened(household_id: str, village: str, channel: str = "app") -> Envelope[CaseOpened]:
    now = datetime.now(UTC)
    return event(
        CaseOpened(
            case_id=str(uuid4()),
            village_code=village,
            risk_types=["illness"],
            channel=channel,
            opened_at=now,
            deadline=now + timedelta(days=15),
            home_visit_due=now + timedelta(days=2),
        ),
        household_id,
    )


def green_channel(
    household_id: str, village: str, channel: str | None = "app"
) -> Envelope[GreenChannelOpened]:
    now = datetime.now(UTC)
    return event(
        GreenChannelOpened(
            case_id=str(uuid4()),
            village_code=village,
            risk_types=["illness"],
            provisional_measures=["medical_aid"],
            paperwork_due=now + timedelta(days=14),
            reasons=[],
            channel=channel,
        ),
        household_id,
    )


def cadre(cadre_id: str, rank: str, village: str, contacts: dict[str, str]) -> Envelope[Any]:
    return event(
        CadreRegistered(
            cadre_id=cadre_id,
            name=cadre_id,
            rank=rank,
            township_code=village[:9],
            village_codes=[village] if rank == "village" else [],
            contacts=contacts,
        ),
        f"cadre-{cadre_id}",
    )


def settings_for(pg_url: str, receiver_url: str, **overrides: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "database_url": pg_url,
        "webhook_url": receiver_url,
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
        "max_attempts": 40,
        "breaker_failure_threshold": 5,
        "breaker_cooldown_seconds": 0.05,
        # these tests are about delivery, not about the time of day
        "quiet_hours_start": 0,
        "quiet_hours_end": 0,
    }
    return NotifySettings(**(values | overrides))


@pytest.fixture
async def receiver() -> AsyncIterator[FlakyReceiver]:
    flaky = FlakyReceiver()
    yield flaky
    flaky.close()


async def service(settings: NotifySettings) -> tuple[FastAPI, Runtime]:
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    await upgrade(settings.database_url, runtime.service_dir)
    return app, runtime


async def feed(runtime: Runtime, settings: NotifySettings, events: list[Envelope[Any]]) -> None:
    """Hand events to the handlers the consumer would call, one transaction each."""
    for env in events:
        async with runtime.uow() as uow:
            if env.event_type == "CadreRegistered":
                await handlers.on_cadre_registered(uow=uow, event=env, settings=settings)
            else:
                await handlers.on_routed_event(uow=uow, event=env, settings=settings)


async def count(runtime: Runtime, query: Any) -> int:
    async with runtime.uow() as uow:
        return int((await uow.execute(query)).scalar_one())


async def test_half_failing_receiver_that_goes_down_gets_everything_exactly_once(
    pg_url: str, receiver: FlakyReceiver
) -> None:
    settings = settings_for(pg_url, receiver.url)
    _app, runtime = await service(settings)
    roster = [
        cadre(f"v{n}", "village", v, {"webhook": f"{receiver.url}?cadre=v{n}"})
        for n, v in enumerate(VILLAGES[:2])
    ]
    cases = [case_opened(f"hh-{n:03d}", VILLAGES[n % 3]) for n in range(45)]
    await feed(runtime, settings, roster + cases)
    total = await count(runtime, select(func.count()).select_from(notifications))
    # villages 1 and 2 reach their cadre; village 3 has nobody and falls back to the office
    assert total == 45

    breakers = BreakerBoard(5, timedelta(seconds=0.05))
    rng = random.Random(3)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    passes, down_until = 0, None
    async with httpx.AsyncClient() as http:
        channels = build_channels(http, settings)
        pending = select(func.count()).where(notifications.c.status == "pending")
        while await count(runtime, pending) and loop.time() < deadline:
            attempted = await delivery.deliver_due(
                uow_factory=runtime.uow,
                channels=channels,
                breakers=breakers,
                settings=settings,
                rng=rng,
            )
            passes += 1
            if passes == 2:
                receiver.down()
                down_until = loop.time() + 0.6
            if down_until and loop.time() > down_until:
                receiver.up()
                down_until = None
            if not attempted:
                await asyncio.sleep(0.01)

    # a restart: the same events are delivered again and nothing new is sent
    await feed(runtime, settings, cases)
    assert await count(runtime, select(func.count()).select_from(notifications)) == total

    async with runtime.uow() as uow:
        rows = (await uow.execute(select(notifications))).all()
        log = (await uow.execute(select(delivery_attempts))).all()
        events = [decode(r.value) for r in (await uow.execute(select(outbox.c.value))).all()]
    assert {r.status for r in rows} == {"delivered"}, "none lost, none dead"
    assert dict(receiver.accepted) == {r.id: 1 for r in rows}, "each exactly once"
    assert len(log) == sum(r.attempts for r in rows), "every attempt is in the log"
    assert any("ConnectError" in (a.error or "") for a in log), "the down stretch was hit"
    assert any(r.attempts > 1 for r in rows)
    delivered = [e for e in events if e.event_type == "NotificationDelivered"]
    assert sorted(e.payload.notification_id for e in delivered) == sorted(r.id for r in rows)
    assert {(r.recipient, r.channel) for r in rows} == {
        ("cadre:v0", "webhook"),
        ("cadre:v1", "webhook"),
        ("office:county", "webhook"),
    }
    await runtime.engine.dispose()


async def test_dead_letter_after_the_last_attempt_then_resend(
    pg_url: str, receiver: FlakyReceiver
) -> None:
    settings = settings_for(pg_url, receiver.url, max_attempts=3)
    app, runtime = await service(settings)
    await feed(runtime, settings, [case_opened("hh-dead", VILLAGES[0])])
    receiver.failure_rate = 1.0
    breakers = BreakerBoard(100, timedelta(seconds=1))
    async with httpx.AsyncClient() as http:
        channels = build_channels(http, settings)
        for _ in range(200):
            await delivery.deliver_due(
                uow_factory=runtime.uow,
                channels=channels,
                breakers=breakers,
                settings=settings,
                rng=random.Random(1),
            )
            if await count(runtime, select(func.count()).where(notifications.c.status == "failed")):
                break
            await asyncio.sleep(0.02)
        async with runtime.uow() as uow:
            [row] = (await uow.execute(select(notifications))).all()
            events = [decode(r.value) for r in (await uow.execute(select(outbox.c.value))).all()]
        assert (row.status, row.attempts, row.last_error) == ("failed", 3, "HTTP 500")
        [failed] = [e for e in events if e.event_type == "NotificationFailed"]
        assert (failed.payload.attempts, failed.payload.error) == (3, "HTTP 500")

        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        async with api:
            listing = "/v1/notifications"
            assert (await api.get(listing)).status_code == 401
            assert (await api.get(listing, headers=_token(settings, "440101"))).json() == []
            api.headers.update(_token(settings, "530102"))
            dead = (await api.get(listing, params={"status": "failed"})).json()
            assert [d["notification_id"] for d in dead] == [row.id]
            resend = f"/v1/notifications/{row.id}/resend"
            assert (await api.post(resend, headers={"Authorization": ""})).status_code == 401
            outsider = _token(settings, "440101")
            answer = await api.post(resend, headers=outsider)
            assert answer.status_code == 403 and answer.json()["detail"].startswith("village_code")
            answer = await api.post(resend, headers=_token(settings, "530102"))
            assert answer.status_code == 202 and answer.json()["status"] == "pending"

            receiver.failure_rate = 0.0
            await delivery.deliver_due(
                uow_factory=runtime.uow,
                channels=channels,
                breakers=breakers,
                settings=settings,
                rng=random.Random(1),
            )
            detail = (await api.get(f"/v1/notifications/{row.id}")).json()
            assert detail["status"] == "delivered" and detail["attempts"] == 4
            assert [a["status_code"] for a in detail["attempt_log"]] == [500, 500, 500, 200]
            health = {h["channel"]: h for h in (await api.get("/v1/channels/health")).json()}
            assert health["webhook"]["attempts_last_hour"] == 4
            assert health["webhook"]["failures_last_hour"] == 3
            assert health["webhook"]["dead"] == 0
            who = (await api.get("/v1/recipients/office:county/notifications")).json()
            assert who["counts"] == {"delivered": 1}
            assert (await api.get("/v1/recipients/cadre:nobody/notifications")).status_code == 404
    assert receiver.accepted == Counter({row.id: 1})
    await runtime.engine.dispose()


async def test_open_breaker_holds_messages_without_spending_attempts(
    pg_url: str, receiver: FlakyReceiver
) -> None:
    settings = settings_for(pg_url, receiver.url, breaker_cooldown_seconds=60)
    _app, runtime = await service(settings)
    await feed(runtime, settings, [case_opened(f"hh-b{n}", VILLAGES[2]) for n in range(8)])
    receiver.down()
    breakers = BreakerBoard(3, timedelta(seconds=60))
    async with httpx.AsyncClient() as http:
        await delivery.deliver_due(
            uow_factory=runtime.uow,
            channels=build_channels(http, settings),
            breakers=breakers,
            settings=settings.model_copy(update={"dispatch_concurrency": 1}),
            rng=random.Random(1),
        )
    receiver.up()
    async with runtime.uow() as uow:
        rows = (await uow.execute(select(notifications))).all()
    assert sorted(r.attempts for r in rows) == [0, 0, 0, 0, 0, 1, 1, 1]
    assert sum(r.last_error == "circuit open" for r in rows) == 5
    [breaker] = breakers.breakers.values()
    assert breaker.state == "open" and breaker.last_error and "ConnectError" in breaker.last_error
    await runtime.engine.dispose()


async def batches_of_five(
    db: str, pg_url: str, receiver: FlakyReceiver, tmp_path: Any
) -> tuple[NotifySettings, Runtime]:
    """Notify on PostgreSQL or SQLite, passes of 5, a receiver that answers every call."""
    url = pg_url if db == "postgres" else f"sqlite+aiosqlite:///{tmp_path}/notify.db"
    settings = settings_for(url, receiver.url, dispatch_batch_size=5)
    _app, runtime = await service(settings)
    receiver.failure_rate = 0.0
    return settings, runtime


async def dispatch_once(runtime: Runtime, settings: NotifySettings, channels: Any) -> int:
    """One dispatch pass."""
    return await delivery.deliver_due(
        uow_factory=runtime.uow,
        channels=channels,
        breakers=BreakerBoard(5, timedelta(seconds=1)),
        settings=settings,
        rng=random.Random(1),
    )


@pytest.mark.parametrize("db", ["postgres", "sqlite"])
async def test_urgent_alerts_leave_before_an_older_backlog(
    db: str, pg_url: str, receiver: FlakyReceiver, tmp_path: Any
) -> None:
    # rules §5.2: a green-channel alert is urgent; routine alerts queued before it (a feed that
    # opened many cases, a receiver that was down) must not hold it back
    settings, runtime = await batches_of_five(db, pg_url, receiver, tmp_path)
    await feed(runtime, settings, [case_opened(f"hh-{n:02d}", VILLAGES[2]) for n in range(12)])
    await feed(runtime, settings, [green_channel(f"hh-g{n}", VILLAGES[2]) for n in range(2)])
    async with runtime.uow() as uow:
        rows = (await uow.execute(select(notifications))).all()
    urgent = {r.id for r in rows if r.priority == "urgent"}
    assert len(urgent) == 2 and len(rows) == 14, "nobody on the roster: the office, once each"
    oldest = sorted((r for r in rows if r.id not in urgent), key=lambda r: r.next_attempt_at)
    # the operators' view of the same queue (gauges behind HoldlineUrgentAlertsWaiting)
    await delivery.measure_backlog(runtime.uow)
    assert _gauges() == {"urgent": 2, "normal": 12, "low": 0}
    assert 0 < metrics.DUE_OLDEST.labels("normal", "direct")._value.get() < 60

    async with httpx.AsyncClient() as http:
        channels = build_channels(http, settings)

        def one_pass() -> Awaitable[int]:
            return dispatch_once(runtime, settings, channels)

        assert await one_pass() == 5
        assert set(receiver.accepted) == urgent | {r.id for r in oldest[:3]}
        # the rest, with passes overlapping where the database lets them (PostgreSQL skips the
        # rows another pass holds): each one still goes exactly once
        width = 3 if db == "postgres" else 1
        while sum(await asyncio.gather(*(one_pass() for _ in range(width)))):
            pass
    assert receiver.accepted == Counter({r.id: 1 for r in rows})
    await delivery.measure_backlog(runtime.uow)
    assert _gauges() == {"urgent": 0, "normal": 0, "low": 0}
    assert metrics.DUE_OLDEST.labels("urgent", "direct")._value.get() == 0
    await runtime.engine.dispose()


@pytest.mark.parametrize("db", ["postgres", "sqlite"])
async def test_a_feeds_alerts_leave_after_the_declarations_of_their_priority(
    db: str, pg_url: str, receiver: FlakyReceiver, tmp_path: Any
) -> None:
    # a department feed opens thousands of cases at once, nearly all of them through the green
    # channel: a farmer declaring during it must not wait behind all of their alerts
    settings, runtime = await batches_of_five(db, pg_url, receiver, tmp_path)
    village = VILLAGES[2]  # nobody on the roster: one alert to the office per event
    await feed(
        runtime, settings, [green_channel(f"f-g{n}", village, FEED_CHANNEL) for n in range(6)]
    )
    # a 1.0 producer's green channel has no channel: it queues as a declaration's would
    await feed(
        runtime, settings, [green_channel("d-g0", village), green_channel("d-g1", village, None)]
    )
    await feed(runtime, settings, [case_opened(f"f-o{n}", village, FEED_CHANNEL) for n in range(4)])
    await feed(runtime, settings, [case_opened(f"d-o{n}", village) for n in range(2)])
    async with runtime.uow() as uow:
        rows = (await uow.execute(select(notifications))).all()
    assert len(rows) == 14
    assert {r.household_id for r in rows if r.from_feed} == {
        *(f"f-g{n}" for n in range(6)),
        *(f"f-o{n}" for n in range(4)),
    }
    created = {r.id: r.household_id for r in rows}
    # operators see the feed's queue apart (HoldlineUrgentAlertsWaiting watches the direct lane)
    await delivery.measure_backlog(runtime.uow)
    assert _lanes("urgent") == {"direct": 2, "feed": 6}
    assert _lanes("normal") == {"direct": 2, "feed": 4}

    async def one_pass() -> list[str]:
        before = set(receiver.accepted)
        await dispatch_once(runtime, settings, channels)
        return sorted(created[n] for n in set(receiver.accepted) - before)

    async with httpx.AsyncClient() as http:
        channels = build_channels(http, settings)
        # urgent first, the declarations' before the feed's, oldest first within each
        assert await one_pass() == ["d-g0", "d-g1", "f-g0", "f-g1", "f-g2"]
        assert await one_pass() == ["d-o0", "d-o1", "f-g3", "f-g4", "f-g5"]
        assert await one_pass() == ["f-o0", "f-o1", "f-o2", "f-o3"]
        assert await one_pass() == []
    assert receiver.accepted == Counter({r.id: 1 for r in rows})
    await delivery.measure_backlog(runtime.uow)
    assert _lanes("urgent") == _lanes("normal") == {"direct": 0, "feed": 0}
    await runtime.engine.dispose()


def _gauges() -> dict[str, float]:
    """Due and unsent notifications by priority (both lanes)."""
    return {p: sum(_lanes(p).values()) for p in delivery.PRIORITIES}


def _lanes(priority: str) -> dict[str, float]:
    return {
        lane: metrics.DUE_WAITING.labels(priority, lane)._value.get()
        for lane in delivery.LANES.values()
    }


def _token(settings: NotifySettings, jurisdiction: str) -> dict[str, str]:
    token = mint_token(
        subject="official",
        role="township",
        jurisdiction=jurisdiction,
        secret=settings.jwt_secret.get_secret_value(),
        clock=SystemClock(),
    )
    return {"Authorization": f"Bearer {token}"}


async def test_the_dispatcher_passes_only_while_there_is_more_to_send(
    pg_url: str, receiver: FlakyReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pass that claimed less than a batch left nothing due: the next one waits to be woken
    # (or for the poll), instead of following at once to find nothing
    settings = settings_for(pg_url, receiver.url, dispatch_batch_size=5, dispatch_poll_seconds=60)
    _app, runtime = await service(settings)
    receiver.failure_rate = 0.0
    await feed(runtime, settings, [case_opened(f"hh-{n:02d}", VILLAGES[2]) for n in range(12)])
    passes: list[int] = []
    deliver_due = delivery.deliver_due

    async def counted(**kwargs: Any) -> int:
        passes.append(await deliver_due(**kwargs))
        return passes[-1]

    monkeypatch.setattr(delivery, "deliver_due", counted)
    [dispatcher, *_] = runtime.background
    wake = runtime.consumers[0].batch_handler.keywords["wake"]  # type: ignore[union-attr]
    task = asyncio.create_task(dispatcher(runtime))
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while sum(passes) < 12:
            assert asyncio.get_running_loop().time() < deadline, f"passes so far: {passes}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert passes == [5, 5, 2], "full passes follow at once; the last one waits"
        await feed(runtime, settings, [case_opened("hh-late", VILLAGES[2])])
        wake()  # as the consumer does once new notifications are committed
        while len(passes) < 4:
            assert asyncio.get_running_loop().time() < deadline, f"passes so far: {passes}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert passes == [5, 5, 2, 1]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(receiver.accepted) == 13 and set(receiver.accepted.values()) == {1}, "each once"
    await runtime.engine.dispose()
