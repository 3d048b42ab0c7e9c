"""Assistance's tables: plans, measures, monitored households, cadres, visits, plus its outbox."""

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
    UniqueConstraint,
    false,
    text,
)

from shared.db import Id, messaging_tables

metadata = MetaData()
outbox, processed_events = messaging_tables(metadata)

plans = Table(
    "plans",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("case_id", String(36), nullable=False, unique=True),
    Column("village_code", String(12), nullable=False),
    Column("measures", JSON, nullable=False),  # codes of the active measures, in plan order
    Column("created_at", DateTime(timezone=True), nullable=False),
    # pending (case open) -> provisional (green channel) -> active -> closed | rolled_back
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("kind", String(20)),
    Column("risk_types", JSON),
    Column("members", JSON),
    Column("labour_class", String(10)),
    Column("catalogue_version", String(20)),
    Column("updated_at", DateTime(timezone=True)),
)

measures = Table(
    "measures",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("plan_id", String(36), ForeignKey("plans.id"), nullable=False, index=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("village_code", String(12), nullable=False, index=True),
    Column("code", String(50), nullable=False),
    Column("category", String(20), nullable=False),
    Column("person_id_hash", String(128)),
    Column("reason", Text, nullable=False),
    Column("provisional", Boolean, nullable=False, server_default=false()),
    Column("position", Integer, nullable=False),
    # planned -> in_progress -> completed | cancelled (rules §6, with who and when in history)
    Column("status", String(20), nullable=False),
    Column("recorded_as", String(50)),  # rules §5.4: rolled-back help stays as temporary assistance
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_on", Date),
    Column("completed_on", Date),
    Column("cancelled_on", Date),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(100), nullable=False),
    Index("ix_measures_status_code", "status", "code"),
)

measure_history = Table(
    "measure_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("measure_id", String(36), ForeignKey("measures.id"), nullable=False, index=True),
    Column("from_status", String(20)),
    Column("to_status", String(20), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("note", Text, nullable=False, default=""),
)

households = Table(
    "households",
    metadata,
    Column("household_id", String(64), primary_key=True),
    Column("case_id", String(36), nullable=False),
    Column("village_code", String(12), nullable=False, index=True),
    Column("township_code", String(9), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("status", String(20), nullable=False),  # monitored | eliminated
    Column("risk_types", JSON, nullable=False),
    Column("per_capita_income", Float),
    Column("must_visit", JSON, nullable=False),  # rules §6.11 flags
    Column("identified_at", DateTime(timezone=True), nullable=False),
    Column("last_visit_on", Date),
    Column("next_visit_due", Date, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

cadres = Table(
    "cadres",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("rank", String(20), nullable=False),
    Column("township_code", String(9), nullable=False, index=True),
    Column("village_codes", JSON, nullable=False),
    Column("contacts", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(100), nullable=False),
)

responsibilities = Table(
    "responsibilities",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("case_id", String(36), nullable=False),
    Column("cadre_id", String(64), ForeignKey("cadres.id"), nullable=False, index=True),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", String(200)),
    # rules §6.8: one responsible cadre per monitoring object at a time
    Index(
        "uq_responsibilities_one_open",
        "household_id",
        unique=True,
        postgresql_where=text("ended_at IS NULL"),
        sqlite_where=text("ended_at IS NULL"),
    ),
)

visits = Table(
    "visits",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("household_id", String(64), nullable=False, index=True),
    Column("cadre_id", String(64), nullable=False, index=True),
    Column("visited_on", Date, nullable=False),
    Column("per_capita_income", Float),
    Column("guarantees", JSON, nullable=False),
    Column("new_risk_types", JSON, nullable=False),
    Column("note", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

visit_alerts = Table(
    "visit_alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("household_id", String(64), nullable=False),
    Column("period", String(7), nullable=False),  # YYYY-MM of the missed due date
    Column("level", String(10), nullable=False),  # cadre | township
    Column("cadre_id", String(64)),
    Column("due_on", Date, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # rules §6.10: each missed visit warns each level exactly once, however often the job runs
    UniqueConstraint("household_id", "period", "level", name="uq_visit_alert_once"),
)
