"""One transaction's signals, evaluated together (rules §4): households and open cases are read
with one query each, and every write goes out in bulk, so a feed never costs one round trip
per record. A single event is a batch of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from hashlib import sha1
from types import SimpleNamespace
from typing import Any, Literal
from uuid import UUID, uuid4

from sqlalchemy import select

from services.risk import repository as repo
from services.risk.config import RiskSettings
from services.risk.evaluation import (
    Evaluation,
    HouseholdFacts,
    evaluate,
    green_channel_trigger,
)
from services.risk.income import Figure, income_histories, income_values
from services.risk.models import (
    case_history,
    case_signals,
    cases,
    household_signals,
    households,
    income_records,
)
from services.risk.rules import (
    identification_deadline,
    merged_risk_types,
    warning_time,
)
from services.risk.signals import Signal, apply_signal
from services.risk.thresholds import threshold_for
from shared.db import UnitOfWork, bulk_insert, bulk_update, one_of
from shared.events import (
    FEED_CHANNEL,
    CaseMerged,
    CaseOpened,
    Envelope,
    FeedRecord,
    GreenChannelOpened,
    MonitoredHouseholdReassessed,
    Payload,
    Reason,
    new_event,
)
from shared.identity import county_placeholder

MONITORED = ("monitoring", "no_labour_support")
FEED_RECORD = "FeedRecordReceived"  # the event type of a feed record's signal (Origin)
CADRE_CHANNEL = "cadre"  # a cadre's report (signals.from_cadre_report)
# the channels whose income figure is an official's record (rules §7.1): a cadre's report and
# the registry; a self-declared figure is evaluated, not recorded
INCOME_CHANNELS = (CADRE_CHANNEL, "registry")
MAX_CASE_REASONS = 200  # a busy feed must not grow a case's reasons without bound
Rows = list[dict[str, Any]]
HOUSEHOLD_COLUMNS = [c.name for c in households.columns]
_ENVELOPES: dict[type[Payload], Any] = {}
CASE_COLUMNS = [c.name for c in cases.columns]
# a batch's households and their open cases, by locked (PostgreSQL) or not; built once, the ids
# bound when they run (shared.db.one_of)
_BY_ID = select(households).where(one_of(households.c.id, "ids")).order_by(households.c.id)
_HOUSEHOLDS = {False: _BY_ID, True: _BY_ID.with_for_update()}
_OPEN = select(cases).where(one_of(cases.c.household_id, "ids"), cases.c.status == "open")
_OPEN_CASES = {False: _OPEN, True: _OPEN.with_for_update()}


def reason_rows(reasons: list[Reason]) -> Rows:
    """Reasons as JSON rows for storage: their fields as they are (strings, numbers or None,
    all JSON already; model_dump per reason was a tenth of a feed record's evaluation)."""
    return [
        {"rule": r.rule, "detail": r.detail, "value": r.value, "threshold": r.threshold}
        for r in reasons
    ]


def merge_rows(old: Rows | None, new: Rows) -> Rows:
    """The case's reasons with the new ones: one per (rule, detail), the latest reading wins
    and moves last. A monthly feed re-reads the same facts; the signal history keeps each."""
    kept = {(r["rule"], r["detail"]): r for r in old or []}
    for r in new:
        key = (r["rule"], r["detail"])
        kept.pop(key, None)
        kept[key] = r
    return list(kept.values())[-MAX_CASE_REASONS:]


def uuid5_text(namespace: UUID, name: str) -> str:
    """str(uuid.uuid5(namespace, name)) without building UUID objects (1.5 us instead of 3.7):
    the id of every record of a feed slice."""
    digest = bytearray(sha1(namespace.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


@dataclass(frozen=True)
class Origin:
    """Where one signal came from: an event, or one record of a feed slice event."""

    household_id: str
    event_id: str  # unique per signal: a slice record gets a name-based id under its event
    event_type: str
    occurred_at: datetime
    correlation_id: str
    source_event_id: str  # the Kafka event; a slice's records share it
    payload: dict[str, Any]

    @classmethod
    def of(cls, event: Envelope[Any]) -> Origin:
        """A whole event is one signal."""
        return cls(
            household_id=event.household_id,
            event_id=str(event.event_id),
            event_type=event.event_type,
            occurred_at=event.occurred_at,
            correlation_id=event.correlation_id,
            source_event_id=str(event.event_id),
            payload=event.payload.model_dump(mode="json"),
        )

    @classmethod
    def of_record(cls, event: Envelope[Any], record: FeedRecord) -> Origin:
        """One record of a FeedRecordsReceived slice, kept in the history as a feed record."""
        slice_id: UUID = event.event_id
        payload = {
            "batch_id": event.payload.batch_id, "department": event.payload.department,
            "line": record.line, "household_id": record.household_id,
            "person_id_hash": record.person_id_hash, "person_id_masked": record.person_id_masked,
            "village_code": record.village_code, "recorded_on": record.recorded_on.isoformat(),
            "facts": record.facts,
        }  # fmt: skip
        return cls(
            household_id=record.household_id,
            event_id=uuid5_text(slice_id, str(record.line)),
            event_type=FEED_RECORD,
            occurred_at=event.occurred_at,
            correlation_id=event.correlation_id,
            source_event_id=str(slice_id),
            payload=payload,
        )


class SignalBatch:
    """The households and open cases a batch touches, and the writes it will make."""

    def __init__(self, uow: UnitOfWork, settings: RiskSettings) -> None:
        self.uow = uow
        self.settings = settings
        self.now = uow.clock.now()
        self.households: dict[str, SimpleNamespace] = {}
        self.open_cases: dict[str, SimpleNamespace] = {}
        self.new_households: set[str] = set()
        self.dirty_households: set[str] = set()
        self.new_cases: set[str] = set()
        self.dirty_cases: dict[str, SimpleNamespace] = {}
        # facts of the households touched, kept as objects until flush (a household's rows
        # are parsed and dumped once per batch, not once per signal)
        self.facts: dict[str, HouseholdFacts] = {}
        self.signal_rows: Rows = []
        self.income_rows: Rows = []  # income_records
        self.case_signal_rows: Rows = []
        self.history_rows: Rows = []
        self.outgoing: list[Envelope[Any] | CaseMerged] = []
        # one flag an outgoing event: from a department feed's record (the outbox's bulk lane,
        # published after a declaration's events that do not depend on it)
        self.bulk: list[bool] = []
        # records of one event (a feed slice) merging into a case give one CaseMerged
        self.merged_at: dict[tuple[str, str], int] = {}
        self.merge_origin: dict[int, Origin] = {}

    async def load(self, household_ids: set[str]) -> None:
        """Read the households and their open cases, locked, one query each. Households are
        locked in id order, as every transaction that locks several does (repository
        lock_households): without ORDER BY a scan locks them in the table's physical order."""
        ids = {"ids": sorted(household_ids)}
        lock = self.uow.conn.dialect.name == "postgresql"
        for row in await self.uow.execute(_HOUSEHOLDS[lock], ids):
            self.households[row.id] = SimpleNamespace(**row._mapping)
        for row in await self.uow.execute(_OPEN_CASES[lock], ids):
            self.open_cases[row.household_id] = SimpleNamespace(**row._mapping)

    def _save_household(self, household_id: str, values: dict[str, Any]) -> None:
        row = self.households.get(household_id)
        if row is None:
            blank: dict[str, Any] = {c: None for c in HOUSEHOLD_COLUMNS}
            blank |= {
                "id": household_id, "head_name": "", "status": "registered", "risk_types": [],
                "risk_codes": "", "new_risk_types": [], "measures_completed": 0,
                "last_visit_clear": False, "social_security": False, "members": [],
                "guarantees": {}, "medical_spending": 0, "schooling_spending": 0,
                "loss_amount": 0,
            }  # fmt: skip
            row = self.households[household_id] = SimpleNamespace(**blank)
            self.new_households.add(household_id)
        if "risk_types" in values:
            values = values | {"risk_codes": repo.risk_codes(values["risk_types"])}
        for key, value in (values | {"updated_at": self.now}).items():
            setattr(row, key, value)
        self.dirty_households.add(household_id)

    def _head_name(self, household_id: str) -> str | None:
        """The household head's name the alerts show (rules §4.13: names may be shown): the
        row's, which a signal naming the head fills when the row has none yet (process); None
        when nobody named them (a department record of a household not known yet)."""
        row = self.households.get(household_id)
        return (row.head_name or None) if row is not None else None

    def _event(self, payload: Payload, source_event: Origin) -> None:
        self.outgoing.append(self._envelope(payload, source_event))
        self.bulk.append(source_event.event_type == FEED_RECORD)

    def _envelope(self, payload: Payload, source_event: Origin) -> Envelope[Any]:
        # the same envelope new_event() builds; the parametrised class is looked up once per
        # payload type because pydantic's generic lookup dominates a large batch otherwise
        kind = type(payload)
        envelope_type = _ENVELOPES.get(kind)
        if envelope_type is None:
            envelope_type = _ENVELOPES[kind] = type(
                new_event(
                    payload, household_id="", source="", correlation_id="", clock=self.uow.clock
                )
            )
        envelope: Envelope[Any] = envelope_type(
            event_type=kind.__name__,
            occurred_at=self.now,
            household_id=source_event.household_id,
            source="risk",
            correlation_id=source_event.correlation_id,
            payload=payload,
        )
        return envelope

    def _history(self, case_id: str, action: str, stage: str | None, to: str, note: str) -> None:
        self.history_rows.append(
            {"case_id": case_id, "at": self.now, "actor": "risk", "role": "system",
             "action": action, "from_stage": stage, "to_stage": to, "note": note}
        )  # fmt: skip

    def _link(self, case_id: str, event: Origin, signal: Signal) -> None:
        # the payload itself is kept once, in household_signals (same event_id)
        self.case_signal_rows.append(
            {"case_id": case_id, "event_id": event.event_id, "event_type": event.event_type,
             "submission_id": signal.submission_id, "received_at": self.now, "payload": {}}
        )  # fmt: skip

    def process(self, event: Origin, signal: Signal) -> None:
        """rules §4: evaluate the household with this signal; open, merge or track its case."""
        household_id = event.household_id
        row = self.households.get(household_id)
        before = self.facts.get(household_id)
        if before is None:
            before = repo.facts_of(row)
        facts = apply_signal(before, signal)
        self.facts[household_id] = facts
        # rules §9.4: a department record naming no village, about a household not known yet,
        # is held by the county of the person's resident ID until the county places it
        village = (
            signal.village_code
            or (row.village_code if row else "")
            or county_placeholder(event.payload.get("person_id_masked") or "")
        )
        on = self.settings.work_calendar.local_date(event.occurred_at)
        threshold = threshold_for(self.settings.thresholds, village, on)
        evaluation = evaluate(
            facts=facts,
            declared_risk_types=signal.risk_types,
            threshold=threshold,
            policy=self.settings.policy(),
            rigid_risk_types=signal.rigid_risk_types,
        )
        reasons = signal.reasons + evaluation.reasons
        values: dict[str, Any] = {"village_code": village}
        if signal.head_name and not (row is not None and row.head_name):
            values["head_name"] = signal.head_name[:100]
        # rules §8.2: a feed record's row says where it came from and, below, what it did
        feed = event.event_type == FEED_RECORD
        signal_row: dict[str, Any] = {
            "household_id": household_id, "event_id": event.event_id,
            "event_type": event.event_type, "received_at": self.now, "payload": event.payload,
            "risk_types": evaluation.risk_types, "flags": reason_rows(evaluation.flags),
            "batch_id": event.payload["batch_id"] if feed else None,
            "line": event.payload["line"] if feed else None,
            "outcome": "no_risk", "case_id": None,
        }  # fmt: skip
        self.signal_rows.append(signal_row)
        current = self.open_cases.get(household_id)
        status = row.status if row is not None else "registered"
        income = signal.updates.get("per_capita_income")
        if income is not None and signal.channel in INCOME_CHANNELS:
            if status in MONITORED or current is not None:
                # rules §7.1: an official's figure for a household monitored or being
                # identified is a dated record of the history the income clock reads
                self.income_rows.append(
                    {"household_id": household_id, "recorded_on": on,
                     "per_capita_income": income, "source": signal.channel,
                     "restart": False, "recorded_at": self.now}
                )  # fmt: skip
        if status in MONITORED and (current is None or current.purpose == "elimination"):
            # rules §4 channel 4, key-object tracking: a monitoring object is re-evaluated; a
            # risk it was not identified for is a new risk and blocks elimination (rules §7.1)
            assert row is not None
            signal_row["outcome"] = "monitored"
            new = sorted(set(evaluation.risk_types) - set(row.risk_types or []))
            unseen = set(new) - set(row.new_risk_types or [])
            if new:
                values["new_risk_types"] = merged_risk_types(row.new_risk_types or [], new)
                # rules §7.1: only a visit from the day the latest appeared resolves them
                day = signal.observed_on or on
                since = row.new_risks_since if row.new_risk_types else None
                values["new_risks_since"] = max(since, day) if since else day
            self._save_household(household_id, values)
            self._reassessed(event, signal, evaluation, reasons, village, new, unseen, before)
            return
        if current is not None:
            values["risk_types"] = merged_risk_types(current.risk_types, evaluation.risk_types)
        elif evaluation.risk_types:
            values["risk_types"] = evaluation.risk_types
        self._save_household(household_id, values)
        if current is not None:
            signal_row["outcome"], signal_row["case_id"] = "case_joined", current.id
            self._merge(event, signal, evaluation, reasons, current, village)
        elif evaluation.risk_types:
            self._open(event, signal, evaluation, reasons, village)
            opened = self.open_cases[household_id].id
            signal_row["outcome"], signal_row["case_id"] = "case_opened", opened

    def _merge(
        self,
        event: Origin,
        signal: Signal,
        evaluation: Evaluation,
        reasons: list[Reason],
        current: SimpleNamespace,
        village: str,
    ) -> None:
        """rules §4.8: the signal joins the open case, adds its risk types, keeps the clock."""
        risk_types = merged_risk_types(current.risk_types, evaluation.risk_types)
        news = risk_types != current.risk_types
        current.risk_types = risk_types
        current.kind = evaluation.kind or current.kind
        current.reasons = merge_rows(current.reasons, reason_rows(reasons))
        current.flags = merge_rows(current.flags, reason_rows(evaluation.flags))
        current.updated_at = self.now
        visit_due = None
        if signal.self_declared and current.home_visit_due is None and not current.home_visited_at:
            # rules §4.10: a farmer who declares into a case a department or cadre opened is
            # visited within the same working days as one whose declaration opened it
            visit_due = current.home_visit_due = self._home_visit_due(event)
        if current.id not in self.new_cases:
            self.dirty_cases[current.id] = current
        # a merge is not a transition: case_signals records it, case_history stays for steps
        self._link(current.id, event, signal)
        # the envelope is built at flush, with the case's risk types after the last record
        key = (current.id, event.source_event_id)
        name = self._head_name(event.household_id)
        at = self.merged_at.get(key)
        if at is not None:
            earlier = self.outgoing[at]
            assert isinstance(earlier, CaseMerged)
            visit_due = visit_due or earlier.home_visit_due  # a clock started stays told
            self.outgoing[at] = self._merged(current, risk_types, signal, village, visit_due, name)
        elif news or visit_due or signal.channel != FEED_CHANNEL:
            # a department record re-reading what the case already holds is kept in
            # case_signals only: nobody downstream acts on it, and a monthly feed re-reads
            # most open cases (a declaration or report always tells its submitter)
            self.merged_at[key] = len(self.outgoing)
            self.merge_origin[len(self.outgoing)] = event
            self.outgoing.append(
                self._merged(current, risk_types, signal, village, visit_due, name)
            )
            self.bulk.append(event.event_type == FEED_RECORD)
        if evaluation.green_channel and not current.green_channel:
            self._green_channel(event, current, evaluation, signal.channel)

    def _reassessed(
        self,
        event: Origin,
        signal: Signal,
        evaluation: Evaluation,
        reasons: list[Reason],
        village: str,
        new: list[str],
        unseen: set[str],
        before: HouseholdFacts,
    ) -> None:
        """rules §4 channel 4: tell who must act on a monitoring object's new signal. The
        green channel's trigger and provisional help are the ones a case gets (rules §5.1-§5.2);
        else a risk type it was not identified for is new (its plan fills the gap, rules §6.2).
        A declaration or a cadre's report always tells its submitter; a department or registry
        record only when it changes something (a monthly feed re-reads most monitored
        households): a new risk type not recorded yet, or a §5.1 trigger the household's
        facts before it did not meet."""
        level: Literal["green_channel", "new_risk"] | None = None
        if evaluation.green_channel:
            level = "green_channel"
        elif new:
            level = "new_risk"
        submitted = signal.self_declared or signal.channel == CADRE_CHANNEL
        if not submitted:
            if level is None:
                return
            if not unseen and (
                level == "new_risk" or self._green_before(before, evaluation.risk_types)
            ):
                return
        self._event(
            MonitoredHouseholdReassessed(
                village_code=village, risk_types=evaluation.risk_types, new_risk_types=new,
                channel=signal.channel, level=level,
                provisional_measures=evaluation.provisional_measures, reasons=reasons,
                submission_id=signal.submission_id if submitted else None,
                head_name=self._head_name(event.household_id),
            ),
            event,
        )  # fmt: skip

    def _green_before(self, before: HouseholdFacts, risk_types: list[str]) -> bool:
        """Whether the facts known before this signal already met rules §5.1 for these risk
        types (then a record re-reading them changes nothing)."""
        met, _ = green_channel_trigger(before, risk_types, self.settings.policy())
        return met

    def _home_visit_due(self, event: Origin) -> datetime:
        """rules §4.10: the village's home visit is due this many working days after the
        self-declaration."""
        settings = self.settings
        return settings.work_calendar.add_working_days(
            event.occurred_at, settings.home_visit_working_days
        )

    @staticmethod
    def _merged(
        current: SimpleNamespace,
        risk_types: list[str],
        signal: Signal,
        village: str,
        visit_due: datetime | None,
        head_name: str | None,
    ) -> CaseMerged:
        # rules §4.10: a merge that started the home-visit clock goes to the village cadre
        return CaseMerged.model_construct(
            case_id=current.id, risk_types=risk_types, submission_id=signal.submission_id,
            village_code=village or current.village_code, home_visit_due=visit_due,
            level="village" if visit_due is not None else None, head_name=head_name,
        )  # fmt: skip

    def _open(
        self,
        event: Origin,
        signal: Signal,
        evaluation: Evaluation,
        reasons: list[Reason],
        village: str,
    ) -> None:
        """rules §4.1: the first signal opens the case; the identification clock starts."""
        settings = self.settings
        case_id = str(uuid4())
        opened_at = event.occurred_at
        deadline = identification_deadline(
            opened_at,
            days=settings.identification_days,
            calendar=settings.work_calendar,
            basis=settings.identification_day_basis,
        )
        # rules §4.10: only a self-declaration starts the home-visit clock
        home_visit_due = self._home_visit_due(event) if signal.self_declared else None
        values: dict[str, Any] = {c: None for c in CASE_COLUMNS}
        values |= {
            "id": case_id, "household_id": event.household_id, "village_code": village,
            "status": "open", "channel": signal.channel, "risk_types": evaluation.risk_types,
            "opened_at": opened_at, "deadline": deadline, "home_visit_due": home_visit_due,
            "warning_at": warning_time(opened_at, deadline, settings.warning_fraction),
            "updated_at": self.now, "purpose": "identification", "stage": "risk_discovered",
            "data_compared": False, "signed_form": False, "green_channel": False, "objections": 0,
            "kind": evaluation.kind, "reasons": reason_rows(reasons)[-MAX_CASE_REASONS:],
            "flags": reason_rows(evaluation.flags),
        }  # fmt: skip
        case = SimpleNamespace(**values)
        self.open_cases[event.household_id] = case
        self.new_cases.add(case_id)
        self._link(case_id, event, signal)
        self._history(
            case_id, "open", None, "risk_discovered",
            f"{event.event_type}; risk types {','.join(evaluation.risk_types)}",
        )  # fmt: skip
        self._event(
            CaseOpened(
                case_id=case_id, village_code=village, risk_types=evaluation.risk_types,
                channel=signal.channel, opened_at=opened_at, deadline=deadline,
                home_visit_due=home_visit_due, submission_id=signal.submission_id,
                reasons=reasons, head_name=self._head_name(event.household_id),
            ),
            event,
        )  # fmt: skip
        if evaluation.green_channel:
            # the case has no other signal yet: its submission, if any, is all intake needs (a
            # department record's `submission_id` names its batch, not a submission)
            feed = signal.channel == FEED_CHANNEL
            linked = [signal.submission_id] if signal.submission_id and not feed else []
            self._green_channel(event, case, evaluation, signal.channel, linked)

    def _green_channel(
        self,
        event: Origin,
        case: SimpleNamespace,
        evaluation: Evaluation,
        channel: str,
        submission_ids: list[str] | None = None,
    ) -> None:
        """rules §5.2-§5.3: flag the case and request provisional help now; paperwork follows.
        `channel` is the signal's that opened it (a department feed's alerts queue behind the
        declarations' and reports' in notify). `submission_ids`: the submissions linked to the
        case, when known (a case opening with its green channel), so intake need not look."""
        settings = self.settings
        due = settings.work_calendar.add_working_days(
            self.now, settings.green_channel_paperwork_working_days
        )
        case.green_channel = True
        case.paperwork_due = due
        case.provisional_measures = evaluation.provisional_measures
        if case.id not in self.new_cases:
            self.dirty_cases[case.id] = case
        self._history(
            case.id, "green_channel", case.stage, case.stage,
            "provisional: " + ",".join(evaluation.provisional_measures),
        )  # fmt: skip
        self._event(
            GreenChannelOpened(
                case_id=case.id,
                village_code=case.village_code,
                risk_types=case.risk_types,
                provisional_measures=evaluation.provisional_measures,
                paperwork_due=due,
                reasons=[r for r in evaluation.reasons if r.rule.startswith("rules §5")],
                channel=channel,
                submission_ids=submission_ids,
                head_name=self._head_name(event.household_id),
            ),
            event,
        )

    async def _income_clock(self) -> None:
        """rules §7.1: the batch's income records join the households' histories: each
        household's income known and income clock as the dated history now gives them."""
        figures: dict[str, list[Figure]] = {}
        for r in self.income_rows:
            figures.setdefault(r["household_id"], []).append(
                (r["recorded_on"], r["per_capita_income"], False)
            )
        history = await income_histories(self.uow, set(figures))
        for household_id, new in figures.items():
            row = self.households[household_id]
            vars(row).update(income_values(row, self.settings, history.get(household_id, []), new))
        await bulk_insert(self.uow, income_records, self.income_rows)

    async def flush(self, cases_topic: str) -> None:
        """Write everything in bulk: COPY and one UPDATE per table, outbox rows in order."""
        uow = self.uow
        for household_id in self.dirty_households:
            vars(self.households[household_id]).update(repo.facts_columns(self.facts[household_id]))
        if self.income_rows:
            await self._income_clock()
        new = [vars(self.households[h]) for h in sorted(self.new_households)]
        await bulk_insert(uow, households, new)
        changed = [
            vars(self.households[h]) for h in sorted(self.dirty_households - self.new_households)
        ]
        await bulk_update(uow, households, changed)
        opened = [vars(c) for c in self.open_cases.values() if c.id in self.new_cases]
        await bulk_insert(uow, cases, opened)
        await bulk_update(uow, cases, [vars(c) for c in self.dirty_cases.values()])
        await bulk_insert(uow, household_signals, self.signal_rows)
        await bulk_insert(uow, case_signals, self.case_signal_rows)
        await bulk_insert(uow, case_history, self.history_rows)
        outgoing = [
            self._envelope(CaseMerged.model_validate(vars(e)), self.merge_origin[n])
            if isinstance(e, CaseMerged)
            else e
            for n, e in enumerate(self.outgoing)
        ]
        await uow.record_many(outgoing, cases_topic, bulk=self.bulk)
