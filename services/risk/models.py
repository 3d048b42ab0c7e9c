"""Risk's tables: the household ledger (台账), cases, their history and deadline alerts."""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from shared.db import Id, messaging_tables

metadata = MetaData()
# a department feed's case events go in the bulk lane: the relay publishes a declaration's first
outbox, processed_events = messaging_tables(metadata, bulk_lane=True)

HOME_VISIT_PENDING = "status = 'open' AND home_visited_at IS NULL AND home_visit_due IS NOT NULL"
PAPERWORK_PENDING = "status = 'open' AND paperwork_due IS NOT NULL"

cases = Table(
    "cases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("household_id", String(64), nullable=False),
    Column("village_code", String(12), nullable=False),
    # open | identified | rejected | eliminated
    Column("status", String(20), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("risk_types", JSON, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("home_visit_due", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # rules §4 / §7.2: the workflow state (services/risk/workflow.py)
    Column("purpose", String(20), nullable=False, server_default="identification"),
    Column("stage", String(30), nullable=False, server_default="risk_discovered"),
    Column("data_compared", Boolean, nullable=False, server_default=text("false")),
    Column("signed_form", Boolean, nullable=False, server_default=text("false")),
    Column("notice_posted_at", DateTime(timezone=True)),
    Column("notice_ends_at", DateTime(timezone=True)),
    # rules §4.4: objections to the public notice recorded (record_objection)
    Column("objections", Integer, nullable=False, server_default="0"),
    Column("home_visited_at", DateTime(timezone=True)),
    Column("warning_at", DateTime(timezone=True)),  # rules §4.11, so the scheduler can index it
    Column("green_channel", Boolean, nullable=False, server_default=text("false")),
    Column("paperwork_due", DateTime(timezone=True)),
    Column("provisional_measures", JSON),
    Column("kind", String(20)),
    Column("reasons", JSON),  # rules §1-§3: why, kept with the case
    Column("flags", JSON),  # rules §3.5: consistency flags travel with the case
    Column("closed_at", DateTime(timezone=True)),
    Column("rejection_reason", Text),
    Index("ix_cases_open_warning", "status", "warning_at"),
    # GET /v1/cases (migration 0004): a region's cases newest or oldest first, a household's
    # cases, the open ones by deadline (rules §4.9, §4.12), and the home visits and green-channel
    # paperwork still due (rules §4.10, §5.3; the scheduler's scan too)
    Index("ix_cases_region_opened", "village_code", "opened_at"),
    Index("ix_cases_opened", "opened_at", "id"),
    Index("ix_cases_household", "household_id", "opened_at"),
    Index("ix_cases_status_deadline", "status", "deadline", "id"),
    Index(
        "ix_cases_home_visit_pending",
        "home_visit_due",
        postgresql_where=text(HOME_VISIT_PENDING),
        sqlite_where=text(HOME_VISIT_PENDING),
    ),
    Index(
        "ix_cases_paperwork_pending",
        "paperwork_due",
        postgresql_where=text(PAPERWORK_PENDING),
        sqlite_where=text(PAPERWORK_PENDING),
    ),
    # rules §4.8: one open case per household at a time
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

households = Table(
    "households",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("village_code", String(12), nullable=False, index=True),
    Column("baseline_status", String(20)),
    Column("head_name", String(100), nullable=False, server_default=""),
    Column("per_capita_income", Float),
    Column("annual_income", Float),
    Column("previous_year_income", Float),
    Column("medical_spending", Float, nullable=False, server_default="0"),
    Column("schooling_spending", Float, nullable=False, server_default="0"),
    Column("loss_amount", Float, nullable=False, server_default="0"),
    Column("members", JSON, nullable=False),
    Column("guarantees", JSON, nullable=False),
    Column("disaster_subtype", String(20)),
    Column("social_security", Boolean, nullable=False, server_default=text("false")),
    # registered | monitoring | eliminated | no_labour_support (rules §1, §7.3)
    Column("status", String(20), nullable=False, server_default="registered"),
    Column("kind", String(20)),
    Column("risk_types", JSON, nullable=False),
    Column("risk_codes", String(300), nullable=False, server_default=""),  # ",a,b," to filter
    Column("identified_at", DateTime(timezone=True)),
    Column("income_above_since", Date),
    Column("measures_completed", Integer, nullable=False, server_default="0"),
    Column("last_visit_clear", Boolean, nullable=False, server_default=text("false")),
    Column("new_risk_types", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # rules §7.1: the day of the latest visit recorded, and the day the latest new risk
    # appeared (a clear visit before it does not resolve it)
    Column("last_visit_on", Date),
    Column("new_risks_since", Date),
)

household_signals = Table(
    "household_signals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(50), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("risk_types", JSON, nullable=False),
    Column("flags", JSON, nullable=False),
    # rules §8.2 (migration 0005): a department feed record's batch and line, and what its
    # evaluation did (feed_results.OUTCOMES; the case it opened or joined), written with the
    # row so a batch's results are one index range (GET /v1/feeds/.../results); null for
    # other signals' batch and line, and for rows written before
    Column("batch_id", String(64)),
    Column("line", Integer),
    Column("outcome", String(20)),
    Column("case_id", String(36)),
    Index("ix_household_signals_batch_line", "batch_id", "line", postgresql_include=["outcome"]),
)

# rules §7.1: each per-capita income figure by the date it was recorded (a visit's, an income
# update's, the home verification's), so the income clock reads them in date order; `restart`
# marks an elimination rollback, which no earlier figure reaches past (rules §7.4)
income_records = Table(
    "income_records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("recorded_on", Date, nullable=False),
    Column("per_capita_income", Float),
    Column("source", String(40), nullable=False),
    Column("restart", Boolean, nullable=False, server_default=text("false")),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

case_history = Table(
    "case_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("action", String(40), nullable=False),
    Column("from_stage", String(30)),
    Column("to_stage", String(30), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
)

# rules §4.9-§4.12: one row per case and alert kind, so each alert leaves exactly once
deadline_alerts = Table(
    "deadline_alerts",
    metadata,
    Column("case_id", String(36), ForeignKey("cases.id"), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("emitted_at", DateTime(timezone=True), nullable=False),
)
