"""Notify's tables: the roster projection, notifications, every delivery attempt, the outbox."""

from sqlalchemy import (
    JSON,
    Boolean,
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
    false,
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
    # pending, held (waiting for a digest), digested, delivered, failed (dead-lettered)
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("address", String(500)),
    Column("village_code", String(12)),
    Column("recipient_level", String(20)),
    Column("priority", String(10), nullable=False, server_default="normal"),
    Column("attempt_limit", Integer),
    Column("last_error", Text),
    Column("acknowledged_at", DateTime(timezone=True)),
    # urgent: escalated (unacknowledged or dead); other: its failure told one level up
    # (escalation.report_undelivered); either way once
    Column("escalated_at", DateTime(timezone=True)),
    Column("digest_id", String(36)),
    # about a case a department feed opened: claimed after the declarations' and reports'
    # alerts of the same priority, so that a farmer's is not queued behind a whole feed's
    Column("from_feed", Boolean, nullable=False, server_default=false()),
    # one notification per (event, recipient, channel), whatever is redelivered
    UniqueConstraint("source_event_id", "recipient", "channel", name="uq_notification_once"),
    Index("ix_notifications_due", "status", "from_feed", "next_attempt_at"),
    # the dispatcher claims due urgent alerts before the rest, a feed's after the others
    Index("ix_notifications_due_priority", "status", "priority", "from_feed", "next_attempt_at"),
    Index("ix_notifications_recipient", "recipient", "created_at"),
    Index("ix_notifications_unacked", "priority", "escalated_at"),
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

# the cadre roster as notify needs it, projected from CadreRegistered (no synchronous calls)
recipients = Table(
    "recipients",
    metadata,
    Column("cadre_id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("rank", String(20), nullable=False),
    Column("township_code", String(12), nullable=False, index=True),
    Column("village_codes", JSON, nullable=False),
    Column("contacts", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# household -> responsible cadre (帮扶责任人), projected from CadreAssigned
responsibilities = Table(
    "responsibilities",
    metadata,
    Column("household_id", String(64), primary_key=True),
    Column("cadre_id", String(64), nullable=False, index=True),
    Column("case_id", String(36), nullable=False),
    Column("village_code", String(12), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# household -> its head's name, the latest risk told (schema 1.4 `head_name`), so every alert
# about the household can name the family (rules §4.13: names may be shown)
household_names = Table(
    "household_names",
    metadata,
    Column("household_id", String(64), primary_key=True),
    Column("head_name", String(100), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
