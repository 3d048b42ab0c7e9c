"""Intake's tables: submissions kept for audit and status, who read their contact, feed batches,
registry, outbox."""

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

submissions = Table(
    "submissions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("household_id", String(64), nullable=False, index=True),
    # the last event of the submission: the relay publishes in id order, so once it is
    # published every earlier one is too; empty when the submission produced no event
    Column("event_id", String(36), nullable=False),
    Column("idempotency_key", String(200)),
    Column("body_hash", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("village_code", String(12)),
    # a case's outcome events update the submissions linked to it (handlers.on_case_events)
    Column("case_id", String(36), index=True),
    Column("case_stage", String(20)),
    # the outcome of the case the submission joined, or of the reassessment of a household
    # already monitored (handlers.on_case_events)
    Column("outcome", String(20)),
    Column("outcome_reason", Text),
    Column("monitoring_kind", String(20)),
    Column("new_risk_types", JSON),
    Column("green_channel", String(20)),  # opened, rolled_back
    Column("decided_at", DateTime(timezone=True)),
    UniqueConstraint("kind", "idempotency_key", name="uq_submissions_idempotency"),
)

# rules §1: the registry is upserted by household; the hash tells an update from a no-op
registry_households = Table(
    "registry_households",
    metadata,
    Column("household_id", String(64), primary_key=True),
    Column("village_code", String(12), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("submission_id", String(36), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

feed_batches = Table(
    "feed_batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("department", String(40), nullable=False, index=True),
    Column("content_type", String(20), nullable=False),
    Column("status", String(20), nullable=False),  # receiving, complete, aborted
    Column("lines", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("csv_header", Text),
    Column("detail", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    # the department's Idempotency-Key: a retried upload replays or resumes this batch
    Column("idempotency_key", String(100)),
    Column("updated_at", DateTime(timezone=True)),  # the last commit of the upload
    Column("attempt_id", String(36)),  # the upload writing to the batch now
    # SHA-256 of the first `lines` lines as received: a resumed upload must start the same
    Column("lines_sha256", String(64)),
    Index("ux_feed_batches_department_key", "department", "idempotency_key", unique=True),
)

feed_errors = Table(
    "feed_errors",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("batch_id", String(36), ForeignKey("feed_batches.id"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("field", String(200), nullable=False),
    Column("problem", String(500), nullable=False),
    # the rejected line, encrypted (it may hold a resident ID); on the line's first error only
    Column("row_ciphertext", Text),
    Index("ix_feed_errors_batch_line", "batch_id", "line"),
)

# rules §9: every read of a household's contact (the phone in clear) by an official, kept for
# audit: who (token subject, role, jurisdiction), which submission, when
contact_reads = Table(
    "contact_reads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("submission_id", String(36), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("jurisdiction", String(12), nullable=False),
    Column("read_at", DateTime(timezone=True), nullable=False),
    Index("ix_contact_reads_submission_read_at", "submission_id", "read_at"),
)
