"""Group commit of intake channels (rules §4 channels 1 and 2), on a fake unit of work."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from services.demo import demo_declarations
from services.intake import handlers
from services.intake.committer import GroupCommitter, in_units_of_work
from services.intake.pii import Vault
from services.intake.schemas import DeclarationCreate
from shared.clock import FrozenClock

CLOCK = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
VAULT = Vault("unit-test-secret")
BODIES = demo_declarations(12, seed=3)


def prepared(n: int, key: str | None = None, **changes: Any) -> handlers.Prepared:
    """The n-th sample declaration, ready to store."""
    return handlers.prepare_declaration(
        declaration=DeclarationCreate.model_validate(BODIES[n] | changes),
        idempotency_key=key,
        vault=VAULT,
        signals_topic="signals",
        clock=CLOCK,
    )


class FakeDatabase:
    """Commits what a transaction wrote unless it failed; `poison` ids raise a unique violation."""

    def __init__(self, poison: frozenset[str] = frozenset(), down: bool = False) -> None:
        self.rows: list[dict[str, Any]] = []
        self.events: list[Any] = []
        self.transactions: list[int] = []  # submissions written per committed transaction
        self.poison = poison
        self.down = down

    def uow(self) -> FakeUow:
        return FakeUow(self)


class FakeUow:
    """Just what store_batch uses of a UnitOfWork."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.rows: list[dict[str, Any]] = []
        self.events: list[Any] = []

    async def __aenter__(self) -> FakeUow:
        if self.db.down:
            raise ConnectionRefusedError("database down")
        await asyncio.sleep(0)  # a round trip: lets other requests queue meanwhile
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.db.rows += self.rows
            self.db.events += self.events
            self.db.transactions.append(len(self.rows))

    async def execute(self, statement: Any, params: Any = None) -> Any:
        if isinstance(statement, Select):
            keys = {(r["kind"], r["idempotency_key"]): r for r in self.db.rows}
            return [
                type("Row", (), {"kind": k[0], "idempotency_key": k[1], "id": r["id"],
                                 "household_id": r["household_id"], "body_hash": r["body_hash"]})
                for k, r in keys.items() if k[1] is not None
            ]  # fmt: skip
        rows = params if isinstance(params, list) else [params]
        if any(r["id"] in self.db.poison for r in rows):
            raise IntegrityError("INSERT", {}, Exception("duplicate key"))
        self.rows += rows

    async def record_rows(self, events: list[Any]) -> None:
        self.events += events


async def submit_all(
    db: FakeDatabase, items: list[handlers.Prepared], batch_max: int = 200, concurrency: int = 1
) -> list[Any]:
    store = in_units_of_work(db.uow)  # type: ignore[arg-type]
    committer = GroupCommitter(store, batch_max=batch_max, concurrency=concurrency)
    return await asyncio.gather(*(committer.submit(p) for p in items), return_exceptions=True)


async def test_requests_queued_together_share_one_transaction() -> None:
    """rules §4: every declaration is stored with its event; the queue is one commit."""
    db = FakeDatabase()
    items = [prepared(n) for n in range(10)]
    answers = await submit_all(db, items)
    assert answers == [p.accepted for p in items]
    assert db.transactions == [10]
    assert [e.event_id for e, _ in db.events] == [p.event.event_id for p in items]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 5), st.integers(1, 3))
def test_batches_never_exceed_the_maximum_and_lose_nothing(
    count: int, batch_max: int, concurrency: int
) -> None:
    """Each accepted declaration is committed exactly once, in batches of at most the max."""
    db = FakeDatabase()
    items = [prepared(n) for n in range(count)]
    answers = asyncio.run(submit_all(db, items, batch_max, concurrency))
    assert answers == [p.accepted for p in items]
    assert sorted(r["id"] for r in db.rows) == sorted(p.row["id"] for p in items)
    assert max(db.transactions) <= batch_max


async def test_a_key_repeated_in_one_batch_is_stored_once_and_replayed() -> None:
    """Same key, same body: the original answer; same key, other body: a conflict."""
    db = FakeDatabase()
    first, again = prepared(0, key="k1"), prepared(0, key="k1")
    other = prepared(0, key="k1", description="a different body")
    answers = await submit_all(db, [first, again, other, prepared(1)])
    assert answers[0] == first.accepted
    assert answers[1] == handlers.Accepted(first.row["id"], first.row["household_id"], True)
    assert isinstance(answers[2], handlers.IdempotencyConflict)
    assert len(db.rows) == 2 and db.transactions == [2]


async def test_a_stored_key_replays_across_batches() -> None:
    """A key committed earlier replays its answer in a later batch."""
    db = FakeDatabase()
    first = prepared(0, key="k1")
    await submit_all(db, [first])
    (answer,) = await submit_all(db, [prepared(0, key="k1")])
    assert answer == handlers.Accepted(first.row["id"], first.row["household_id"], True)
    assert len(db.rows) == 1


async def test_a_refused_row_fails_alone_and_the_rest_are_committed_one_by_one() -> None:
    """A batch failing on one row is retried item by item: only that request errors."""
    items = [prepared(n) for n in range(4)]
    db = FakeDatabase(poison=frozenset({items[2].row["id"]}))
    answers = await submit_all(db, items)
    assert isinstance(answers[2], IntegrityError)
    assert [answers[n] for n in (0, 1, 3)] == [items[n].accepted for n in (0, 1, 3)]
    assert sorted(r["id"] for r in db.rows) == sorted(items[n].row["id"] for n in (0, 1, 3))


async def test_database_down_errors_every_waiting_request() -> None:
    """Nothing is answered 202 unless committed; no request waits forever."""
    db = FakeDatabase(down=True)
    answers = await submit_all(db, [prepared(n) for n in range(3)])
    assert all(isinstance(a, ConnectionRefusedError) for a in answers)
    assert db.rows == []


async def test_a_cancelled_request_does_not_disturb_its_batch() -> None:
    """A client that goes away: its row is still committed, the others are answered."""
    db = FakeDatabase()
    committer = GroupCommitter(in_units_of_work(db.uow), batch_max=200, concurrency=1)  # type: ignore[arg-type]
    items = [prepared(n) for n in range(3)]
    tasks = [asyncio.create_task(committer.submit(p)) for p in items]
    await asyncio.sleep(0)
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert done[0] == items[0].accepted and done[2] == items[2].accepted
    assert isinstance(done[1], asyncio.CancelledError)
    assert len(db.rows) == 3


@pytest.mark.parametrize("n", [0, 5])
def test_prepared_row_carries_no_resident_id_or_phone_in_clear(n: int) -> None:
    """rules §9: the stored body and the event hold hash, mask and ciphertext only."""
    item = prepared(n)
    text = str(item.row["body"]) + item.event.to_bytes().decode()
    assert BODIES[n]["declarant_id"] not in text and BODIES[n]["phone"] not in text
    assert item.row["event_id"] == str(item.event.event_id)


async def test_a_request_right_after_a_drain_ends_is_still_committed() -> None:
    """Sequential requests: each finds a committer running for it (none waits forever)."""
    db = FakeDatabase()
    committer = GroupCommitter(in_units_of_work(db.uow), batch_max=200, concurrency=1)  # type: ignore[arg-type]
    items = [prepared(n) for n in range(3)]
    async with asyncio.timeout(5):  # a hang guard, not a measurement
        for item in items:
            assert await committer.submit(item) == item.accepted
    assert db.transactions == [1, 1, 1]
