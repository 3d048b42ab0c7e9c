"""Alembic per service: each service keeps its own `migrations/` and its own version table."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(url: str, service_dir: Path) -> Config:
    """A programmatic Alembic config for one service's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(service_dir / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(url: str, service_dir: Path) -> None:
    """Bring the service's schema to the newest revision (Alembic runs its own event loop)."""
    await asyncio.to_thread(command.upgrade, alembic_config(url, service_dir), "head")


def run_env(metadata: MetaData) -> None:
    """Body of every service's migrations/env.py: online migrations over the async driver."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"

    def migrate(conn: Connection) -> None:
        context.configure(
            connection=conn, target_metadata=metadata, render_as_batch=conn.dialect.name == "sqlite"
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            await conn.run_sync(migrate)
            await conn.commit()
        await engine.dispose()

    asyncio.run(main())
