"""Intake's tables: submissions kept raw for audit and status look-up, plus its outbox."""

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, UniqueConstraint

from shared.db import messaging_tables

metadata = MetaData()
outbox, processed_events = messaging_tables(metadata)

submissions = Table(
    "submissions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("household_id", String(64), nullable=False, index=True),
    Column("event_id", String(36), nullable=False),
    Column("idempotency_key", String(200)),
    Column("body_hash", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("kind", "idempotency_key", name="uq_submissions_idempotency"),
)
