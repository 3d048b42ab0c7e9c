"""Notify's tables: notifications, every delivery attempt, plus its outbox."""

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from shared.db import Id, messaging_tables

metadata = MetaData()
outbox, processed_events = messaging_tables(metadata)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source_event_id", String(36), nullable=False),
    Column("event_type", String(50), nullable=False),
    Column("household_id", String(64), nullable=False, index=True),
    Column("recipient", String(100), nullable=False),
    Column("channel", String(30), nullable=False),
    Column("body", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    # one notification per (event, recipient, channel), whatever is redelivered
    UniqueConstraint("source_event_id", "recipient", "channel", name="uq_notification_once"),
    Index("ix_notifications_due", "status", "next_attempt_at"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("notification_id", String(36), ForeignKey("notifications.id"), index=True),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
)
