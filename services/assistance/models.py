"""Assistance's tables: plans, plus its outbox."""

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table

from shared.db import messaging_tables

metadata = MetaData()
outbox, processed_events = messaging_tables(metadata)

plans = Table(
    "plans",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("case_id", String(36), nullable=False, unique=True),
    Column("village_code", String(12), nullable=False),
    Column("measures", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
