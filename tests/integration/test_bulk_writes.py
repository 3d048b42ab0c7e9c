"""COPY-based bulk writes on PostgreSQL belong to the unit of work's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import JSON, Column, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import FrozenClock
from shared.db import (
    COPY_FROM,
    UnitOfWork,
    bulk_insert,
    bulk_update,
    create_engine,
    messaging_tables,
)

pytestmark = [pytest.mark.postgres]
CLOCK = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))


class Boom(Exception):
    pass


def items_table() -> tuple[Table, Table, Table]:
    """A table of JSON documents, with the outbox and dedup tables a unit of work needs."""
    metadata = MetaData()
    outbox, processed = messaging_tables(metadata)
    items = Table("items", metadata, Column("id", String, primary_key=True), Column("doc", JSON))
    return items, outbox, processed


async def created(url: str, table: Table) -> AsyncEngine:
    """An engine on `url` with the tables of `table`'s metadata created."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
    return engine


async def test_a_copy_as_the_first_write_is_rolled_back_with_the_rest(pg_url: str) -> None:
    items, outbox, processed = items_table()
    engine = await created(pg_url, items)

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


@pytest.mark.parametrize("db", ["postgres", "sqlite"])
async def test_small_and_large_runs_go_in_whole_and_only_with_their_transaction(
    db: str, pg_url: str, tmp_path: Path
) -> None:
    """bulk_insert with copy_from: a run below it goes as one executemany, one from it by COPY
    on PostgreSQL; either way every row with its JSON, and nothing of a rolled-back run."""
    url = pg_url if db == "postgres" else f"sqlite+aiosqlite:///{tmp_path}/bulk.db"
    items, outbox, processed = items_table()
    engine = await created(url, items)

    def run(tag: str, size: int) -> list[dict[str, object]]:
        return [{"id": f"{tag}{n}", "doc": {"n": n, "名": tag}} for n in range(size)]

    sizes = {"few": COPY_FROM - 1, "many": 3 * COPY_FROM}
    for tag, size in sizes.items():
        async with UnitOfWork(engine, outbox, processed, CLOCK) as work:
            await bulk_insert(work, items, run(tag, size), copy_from=COPY_FROM)
        with pytest.raises(Boom):
            async with UnitOfWork(engine, outbox, processed, CLOCK) as work:
                await bulk_insert(work, items, run(f"lost-{tag}", size), copy_from=COPY_FROM)
                raise Boom
    async with UnitOfWork(engine, outbox, processed, CLOCK) as work:
        docs = dict((await work.execute(select(items.c.id, items.c.doc))).all())
    assert len(docs) == sum(sizes.values())
    assert docs[f"few{COPY_FROM - 2}"] == {"n": COPY_FROM - 2, "名": "few"}
    assert docs[f"many{3 * COPY_FROM - 1}"] == {"n": 3 * COPY_FROM - 1, "名": "many"}
    await engine.dispose()
