"""COPY-based bulk writes on PostgreSQL belong to the unit of work's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import JSON, Column, MetaData, String, Table, func, select

from shared.clock import FrozenClock
from shared.db import UnitOfWork, bulk_insert, bulk_update, create_engine, messaging_tables

pytestmark = [pytest.mark.postgres]
CLOCK = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))


class Boom(Exception):
    pass


async def test_a_copy_as_the_first_write_is_rolled_back_with_the_rest(pg_url: str) -> None:
    metadata = MetaData()
    outbox, processed = messaging_tables(metadata)
    items = Table("items", metadata, Column("id", String, primary_key=True), Column("doc", JSON))
    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)

    def uow() -> UnitOfWork:
        return UnitOfWork(engine, outbox, processed, CLOCK)

    rows = [{"id": f"i{n}", "doc": {"n": n, "名": "张"}} for n in range(50)]
    with pytest.raises(Boom):
        async with uow() as work:
            await bulk_insert(work, items, rows)  # nothing ran before it in this transaction
            raise Boom
    async with uow() as work:
        assert (await work.execute(select(func.count()).select_from(items))).scalar_one() == 0

    async with uow() as work:
        await bulk_insert(work, items, rows)
    with pytest.raises(Boom):
        async with uow() as work:
            await bulk_update(work, items, [{"id": "i1", "doc": {"n": -1}}])
            raise Boom
    async with uow() as work:
        await bulk_update(work, items, [{"id": "i2", "doc": {"n": 200}}])
    async with uow() as work:
        docs = dict((await work.execute(select(items.c.id, items.c.doc))).all())
    assert len(docs) == 50
    assert docs["i1"] == {"n": 1, "名": "张"}, "the rolled-back update left it"
    assert docs["i2"] == {"n": 200}
    await engine.dispose()
