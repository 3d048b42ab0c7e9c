"""Notify delivery under a receiver failing half the time: delivered, duplicates, attempts.

    .venv/bin/python bench/notify_delivery.py                  # 10,000 notifications, PostgreSQL
    .venv/bin/python bench/notify_delivery.py -n 500 --db sqlite

Each notification comes from a routed CaseOpened (the county office fallback webhook), and
the real dispatcher code delivers it over HTTP to a real receiver on 127.0.0.1 that answers
500 to a random `--failure-rate` share of calls (and, with `--down-seconds`, refuses
connections for a stretch). A baseline with a healthy receiver runs first, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.notify import delivery, handlers, metrics
from services.notify.app import breaker_board, create_app
from services.notify.channels import HttpSlots, build_channels
from services.notify.config import NotifySettings
from services.notify.models import delivery_attempts, notifications
from shared.migrations import upgrade
from shared.service import Runtime
from tests.integration.test_notify_delivery import case_opened


class ReceiverProcess:
    """bench/notify_receiver.py as a child process; down means killed (connections refused)."""

    def __init__(self, failure_rate: float, seed: int) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.failure_rate, self.seed = failure_rate, seed
        self.accepted: Counter[str] = Counter()
        self.calls = 0
        self.up()

    def up(self) -> None:
        """Start listening."""
        script = Path(__file__).with_name("notify_receiver.py")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.port), str(self.failure_rate), str(self.seed)],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # "ready"
        self.seed += 1

    def down(self) -> None:
        """Collect what it received, then kill it."""
        stats = httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=10).json()
        self.calls += stats["calls"]
        self.accepted.update(stats["accepted"])
        self.proc.kill()
        self.proc.wait()


async def database_url(kind: str) -> str:
    """A fresh database: PostgreSQL through the test helper, or a SQLite file."""
    if kind == "postgres":
        from tests.conftest import new_database

        return await new_database()
    path = Path(tempfile.mkdtemp(prefix="notify-bench-")) / "notify.sqlite3"
    return f"sqlite+aiosqlite:///{path}"


async def run(
    *, count: int, failure_rate: float, down_seconds: float, db: str, seed: int
) -> dict[str, Any]:
    """Create `count` notifications, deliver them all, and measure."""
    receiver = ReceiverProcess(failure_rate, seed)
    settings = NotifySettings(
        database_url=await database_url(db),
        webhook_url=receiver.url,
        retry_base_seconds=0.02,
        retry_max_seconds=1.0,
        breaker_cooldown_seconds=0.5,
        dispatch_batch_size=400,
        quiet_hours_start=0,
        quiet_hours_end=0,
    )
    runtime: Runtime = create_app(settings).state.runtime
    logging.disable(logging.ERROR)  # one line per retry would drown the figures
    await upgrade(settings.database_url, runtime.service_dir)
    events = [case_opened(f"hh-{n:06d}", "530102001001") for n in range(count)]
    for start in range(0, count, 500):
        async with runtime.uow() as uow:
            for env in events[start : start + 500]:
                await handlers.on_routed_event(uow=uow, event=env, settings=settings)

    breakers = breaker_board(settings)
    rng = random.Random(seed)
    pending = select(func.count()).where(notifications.c.status == "pending")
    started = time.perf_counter()

    async def outage() -> None:
        # the dispatcher keeps running meanwhile: attempts meet refused connections
        await asyncio.sleep(1.0)
        await asyncio.to_thread(receiver.down)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(receiver.up)

    outage_task = asyncio.create_task(outage()) if down_seconds else None
    http = HttpSlots(settings.dispatch_concurrency)  # as the notify service sends
    try:
        channels = build_channels(http, settings)
        while True:
            attempted = await delivery.deliver_due(
                uow_factory=runtime.uow,
                channels=channels,
                breakers=breakers,
                settings=settings,
                rng=rng,
            )
            if not attempted:
                async with runtime.uow() as uow:
                    left = (await uow.execute(pending)).scalar_one()
                if not left and (outage_task is None or outage_task.done()):
                    break
                await asyncio.sleep(0.02)
    finally:
        await http.aclose()
    elapsed = time.perf_counter() - started
    async with runtime.uow() as uow:
        rows = (await uow.execute(select(notifications.c.status, notifications.c.attempts))).all()
        refused = (
            await uow.execute(
                select(func.count()).where(delivery_attempts.c.error.contains("ConnectError"))
            )
        ).scalar_one()
    await runtime.engine.dispose()
    receiver.down()
    statuses = Counter(r.status for r in rows)
    delivered_attempts = [r.attempts for r in rows if r.status == "delivered"]
    return {
        "notifications": len(rows),
        "delivered": statuses["delivered"],
        "dead_lettered": statuses["failed"],
        "duplicates": sum(n - 1 for n in receiver.accepted.values() if n > 1),
        "received_once": sum(1 for n in receiver.accepted.values() if n == 1),
        "median_attempts": statistics.median(r.attempts for r in rows),
        "median_attempts_delivered": statistics.median(delivered_attempts or [0]),
        "mean_attempts": round(statistics.fmean(r.attempts for r in rows), 2),
        "max_attempts_seen": max(r.attempts for r in rows),
        "refused_attempts": refused,
        "held_by_open_breaker": int(metrics.HELD_BY_BREAKER.labels("webhook")._value.get()),
        "http_calls": receiver.calls,
        "seconds": round(elapsed, 1),
        "per_second": round(len(rows) / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--notifications", type=int, default=10_000)
    parser.add_argument("--failure-rate", type=float, default=0.5)
    parser.add_argument("--down-seconds", type=float, default=0.0)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--baseline", type=int, default=2_000, help="healthy-receiver run size")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    async def both() -> None:
        base = await run(
            count=args.baseline, failure_rate=0.0, down_seconds=0, db=args.db, seed=args.seed
        )
        print(f"baseline (healthy receiver, {args.db}): {base}")
        flaky = await run(
            count=args.notifications,
            failure_rate=args.failure_rate,
            down_seconds=args.down_seconds,
            db=args.db,
            seed=args.seed,
        )
        print(
            f"receiver failing {args.failure_rate:.0%}"
            + (f", down {args.down_seconds}s" if args.down_seconds else "")
            + f" ({args.db}): {flaky}"
        )
        print(
            f"=> delivered {flaky['delivered']}/{flaky['notifications']}, "
            f"dead-lettered {flaky['dead_lettered']} (max_attempts "
            f"{NotifySettings().max_attempts}), duplicates {flaky['duplicates']}, "
            f"median attempts {flaky['median_attempts']} (mean {flaky['mean_attempts']})"
        )

    asyncio.run(both())


if __name__ == "__main__":
    main()
