"""The group committer knows which Idempotency-Keys are in flight (queued or committing), so
a retry over the app's rate limit replays instead of being refused (services/intake/api.py)."""

from __future__ import annotations

import asyncio

from services.intake import handlers
from services.intake.committer import GroupCommitter
from tests.unit.test_intake_committer import prepared


async def test_a_key_is_held_from_queueing_until_its_commit_ends() -> None:
    release = asyncio.Event()
    fail = False

    async def store(batch: list[handlers.Prepared]) -> list[handlers.Outcome]:
        await release.wait()
        if fail:
            raise ConnectionRefusedError("database down")
        return [p.accepted for p in batch]

    committer = GroupCommitter(store, batch_max=10, concurrency=1)
    first = asyncio.create_task(committer.submit(prepared(0, key="k-1")))
    second = asyncio.create_task(committer.submit(prepared(0, key="k-1")))
    bare = asyncio.create_task(committer.submit(prepared(1)))
    await asyncio.sleep(0)
    assert committer.holds(("declaration", "k-1"))
    assert not committer.holds(("declaration", "k-2"))
    assert not committer.holds(("cadre_report", "k-1")), "a key is per kind"
    release.set()
    await asyncio.gather(first, second, bare)
    assert not committer.holds(("declaration", "k-1"))
    # a failed commit lets go of its keys too
    fail, release = True, asyncio.Event()
    failing = asyncio.create_task(committer.submit(prepared(2, key="k-2")))
    await asyncio.sleep(0)
    assert committer.holds(("declaration", "k-2"))
    release.set()
    await asyncio.gather(failing, return_exceptions=True)
    assert not committer.holds(("declaration", "k-2"))
