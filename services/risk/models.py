"""Risk's tables: cases and the signals behind them, plus its outbox."""

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, MetaData, String, Table, text

from shared.db import Id, messaging_tables

metadata = MetaData()
outbox, processed_events = messaging_tables(metadata)

cases = Table(
    "cases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("household_id", String(64), nullable=False),
    Column("village_code", String(12), nullable=False),
    Column("status", String(20), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("risk_types", JSON, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("home_visit_due", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # rules §4: one open case per household at a time
    Index(
        "uq_cases_one_open_per_household",
        "household_id",
        unique=True,
        postgresql_where=text("status = 'open'"),
        sqlite_where=text("status = 'open'"),
    ),
)

case_signals = Table(
    "case_signals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False, index=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(50), nullable=False),
    Column("submission_id", String(36)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSON, nullable=False),
)
