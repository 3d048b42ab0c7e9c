"""After the chaos: wait until the platform is quiescent, then check what happened, from the
services' own databases, the topics and the receiver's call log.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.chaos_load import Casework, Sent, Traffic
from shared.identity import is_unplaced

Say = Callable[[str], None]
# consumer group -> the short topic names it reads (services/*/app.py)
GROUPS = {
    "risk": ["signals"],
    "risk-feeds": ["signals"],
    "risk-assistance": ["assistance"],
    "assistance": ["cases"],
    "notify": ["cases", "assistance"],
    "intake-case-status": ["cases"],
}
# routed events whose route falls back to the county office's webhook when nobody is on the roster
# (services/notify/routing.py): without a roster each one is exactly one office notification
OFFICE_ROUTED = ("CaseOpened", "GreenChannelOpened", "CaseDeadlineApproaching", "CaseOverdue")
# and a CaseMerged routed by its level: a declaration joining an open case that started the home
# visit's clock (level "village"); other merges have no route. A monitoring object's new signal
# (MonitoredHouseholdReassessed) by its level too: "green_channel" (responsible, township and
# county all fall back to the one office notification, as GreenChannelOpened) and "new_risk";
# level None has no route. HouseholdIdentified, CaseRejected and RiskEliminated have no fallback:
# nothing without a roster, so the casework's rejections notify nobody.
OFFICE_ROUTED_LEVELS = (
    ("CaseMerged", "village"),
    ("MonitoredHouseholdReassessed", "green_channel"),
    ("MonitoredHouseholdReassessed", "new_risk"),
)
# CaseStepCompleted is routed by a level notify derives (services/notify/routing.py step_level):
# `village_assigned` for a county's placement (the village route, falling back to the office);
# else from `next_steps`, where the casework's village steps (home verification, notice) name
# no township review or county approval: no route. So a step notifies when its `step` is one
# of these
OFFICE_ROUTED_STEPS = ("village_assigned",)
VILLAGE_ASSIGNED = "village_assigned"
SERVICES = ("intake", "risk", "assistance", "notify")


def plain_dsn(sqlalchemy_url: str) -> str:
    """asyncpg's DSN for a postgresql+asyncpg URL."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")


async def _fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(plain_dsn(dsn), timeout=10)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def consumer_lag(bootstrap: str, prefix: str) -> dict[str, int]:
    """Group -> messages not yet committed, over every partition of the group's topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    await probe.start()
    try:
        lag = {}
        cluster = await probe._client.fetch_all_metadata()
        for group, shorts in GROUPS.items():
            partitions = []
            for short in shorts:
                topic = f"{prefix}{short}.v1"
                for p in cluster.partitions_for_topic(topic) or set():
                    partitions.append(TopicPartition(topic, p))
            ends = await probe.end_offsets(partitions)
            committed: dict[TopicPartition, int] = {}
            # the group id is the consumer's name, with or without the topic prefix in front
            for group_id in (group, f"{prefix}{group}"):
                for tp, meta in (await admin.list_consumer_group_offsets(group_id)).items():
                    committed[tp] = max(committed.get(tp, 0), meta.offset)
            lag[group] = sum(max(end - committed.get(tp, 0), 0) for tp, end in ends.items())
        return lag
    finally:
        await probe.stop()
        await admin.close()


async def snapshot(dsns: dict[str, str], bootstrap: str, prefix: str) -> dict[str, Any]:
    """What is still in flight: unpublished outbox rows, lag, undelivered notifications."""
    state: dict[str, Any] = {}
    for name in SERVICES:
        rows = await _fetch(dsns[name], "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        state[f"outbox_{name}"] = rows[0][0]
    state["lag"] = await consumer_lag(bootstrap, prefix)
    rows = await _fetch(
        dsns["notify"], "SELECT status, count(*) FROM notifications GROUP BY status"
    )
    state["notifications"] = {r[0]: r[1] for r in rows}
    rows = await _fetch(dsns["risk"], "SELECT count(*) FROM case_signals")
    state["case_signals"] = rows[0][0]
    return state


def _busy(state: dict[str, Any]) -> bool:
    outbox = any(state[f"outbox_{n}"] for n in SERVICES)
    lag = any(state["lag"].values())
    pending = state["notifications"].get("pending", 0) + state["notifications"].get("held", 0)
    return bool(outbox or lag or pending)


async def wait_quiescent(
    dsns: dict[str, str], bootstrap: str, prefix: str, *, timeout: float, say: Say
) -> tuple[bool, dict[str, Any]]:
    """Until nothing is in flight twice in a row (3 s apart), or `timeout`; (quiet, state)."""
    deadline = time.monotonic() + timeout
    quiet_passes, last_report = 0, 0.0
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            state = await snapshot(dsns, bootstrap, prefix)
        except Exception as exc:  # a broker or cluster still coming back: look again
            state = {"error": repr(exc)}
            quiet_passes = 0
        else:
            quiet_passes = 0 if _busy(state) else quiet_passes + 1
            if quiet_passes >= 2:
                return True, state
        if time.monotonic() - last_report > 15:
            say(f"drain: {state}")
            last_report = time.monotonic()
        await asyncio.sleep(3)
    return False, state


@dataclass
class Check:
    """One line of the table: a figure, and whether it is what it must be."""

    what: str
    value: Any
    expected: Any = None  # None: informational
    ok: bool = True


@dataclass
class Verdict:
    """Every line of the table, and the evidence behind the failed ones."""

    checks: list[Check] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every check holds."""
        return all(c.ok for c in self.checks)

    def info(self, what: str, value: Any) -> None:
        """A figure to show."""
        self.checks.append(Check(what, value))

    def expect(self, what: str, value: Any, expected: Any) -> None:
        """A figure that must equal `expected`."""
        self.checks.append(Check(what, value, expected, value == expected))


def receiver_calls(path: Path) -> list[dict[str, Any]]:
    """The receiver's call log (a line cut short by a kill is skipped)."""
    calls = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                calls.append(json.loads(line))
            except ValueError:
                continue
    return calls


async def verify(
    *,
    dsns: dict[str, str],
    bootstrap: str,
    prefix: str,
    traffic: Traffic,
    sent: Sent,
    work: Casework,
    calls_log: Path,
) -> Verdict:
    """Every check of the chaos run, from the stores of record."""
    v = Verdict()
    signals_topic = f"{prefix}signals.v1"
    v.info("signals sent: declarations", len(traffic.declarations))
    v.info("signals sent: feed records", traffic.feed_rows)
    v.info("invalid feed lines sent", traffic.invalid_rows)
    v.info("poison messages injected", len(sent.poison_sent))
    v.info("client retries (declarations / feed uploads)",
           f"{sent.declaration_retries} / {sent.upload_retries}")  # fmt: skip

    # --- intake: what the client was told, and what intake holds durably
    subs = await _fetch(dsns["intake"], "SELECT id, event_id, case_id FROM submissions")
    sub_by_id = {r["id"]: r for r in subs}
    missing_decl = [s for s in sent.declarations.values() if s not in sub_by_id]
    v.expect("declarations accepted (202)", len(sent.declarations), len(traffic.declarations))
    v.expect("declarations refused", len(sent.refused), 0)
    v.expect("accepted declarations missing in intake", len(missing_decl), 0)
    batches = await _fetch(
        dsns["intake"], "SELECT id, status, accepted, rejected FROM feed_batches"
    )
    batch_by_id = {r["id"]: r for r in batches}
    client_rows = sum(a for a, _ in sent.batches.values())
    v.expect("feed records accepted (202 uploads)", client_rows, traffic.feed_rows)
    accepted_keys = await intake_signals(dsns["intake"], signals_topic)
    per_batch = Counter(k[1] for k in accepted_keys if k[0] == "feed")
    short_batches = [
        b for b, (acc, _) in sent.batches.items()
        if b not in batch_by_id or batch_by_id[b]["status"] != "complete" or per_batch[b] != acc
    ]  # fmt: skip
    v.expect("accepted uploads not fully on intake's outbox", len(short_batches), 0)
    errors = await _fetch(
        dsns["intake"], "SELECT batch_id, count(DISTINCT line) AS n FROM feed_errors GROUP BY 1"
    )
    recorded = sum(r["n"] for r in errors if r["batch_id"] in sent.batches)
    v.expect("rejected feed lines, recorded", recorded, traffic.invalid_rows)
    aborted = sum(1 for r in batches if r["status"] != "complete")
    v.info("accepted signals on intake's outbox (incl. retried uploads)", len(accepted_keys))
    v.info("feed batches interrupted by a kill (kept as aborted/receiving)", aborted)

    # --- risk: every accepted signal reached its household's case
    linked, evaluated = await risk_signals(dsns["risk"])
    case_keys = Counter(linked)
    reached = accepted_keys & case_keys.keys()
    lost = accepted_keys - case_keys.keys()
    v.info("signals that reached a case", len(reached))
    v.expect("LOST (accepted, no case)", len(lost), 0)
    v.info("  of which evaluated but no case", len(lost & evaluated))
    if lost:
        v.evidence["lost_signals"] = sorted(lost)[:50]
    v.expect("signals linked to a case twice", sum(n - 1 for n in case_keys.values()), 0)
    no_status = [
        s for s in sent.declarations.values() if s in sub_by_id and not sub_by_id[s]["case_id"]
    ]
    v.expect("declarations whose status never showed the case", len(no_status), 0)
    cases = await _fetch(
        dsns["risk"], "SELECT id, household_id, status, village_code, green_channel FROM cases"
    )
    open_per_household = Counter(r["household_id"] for r in cases if r["status"] == "open")
    with_case = {r["household_id"] for r in cases}
    history = await _fetch(dsns["risk"], "SELECT id, case_id, action, role FROM case_history")
    excess, reopened = extra_cases(cases, history)
    v.info("cases opened", len(cases))
    v.expect("households with a case", len(with_case), len(set(traffic.households)))
    v.info("new cases opened by a signal after the household's case was rejected", len(reopened))
    v.expect("duplicate cases (beyond one a household, and one after a rejection)", excess, 0)
    v.expect(
        "households with >1 open case", sum(1 for n in open_per_household.values() if n > 1), 0
    )

    # --- casework: each official's action taken once, and followed by every service
    v.info("casework: unplaced households (feed records naming no village)", len(traffic.unplaced))
    v.info("casework: actions fired as risk or PostgreSQL went down", work.aimed)
    v.info("casework: POSTs / retried / confirmed by reading the case",
           f"{work.sent} / {work.retried} / {work.confirmed_by_read}")  # fmt: skip
    v.expect("casework: actions confirmed", len(work.confirmed), traffic.casework_actions)
    v.expect(
        "casework: answers dropped after the commit, then found taken by reading the case",
        sum(1 for key in work.dropped if work.confirmed.get(key) == "read"),
        len(work.dropped),
    )
    v.expect("casework: actions refused", len(work.refused), 0)
    v.expect("casework: unplaced cases of no unplaced household", len(work.strangers), 0)
    if work.refused or work.unfinished or work.strangers:
        v.evidence["casework"] = {
            "refused": work.refused[:20], "unfinished": work.unfinished[:20],
            "strangers": work.strangers[:20],
        }  # fmt: skip
    unrecorded, twice, nobodys = history_problems(work.confirmed.keys(), history)
    v.expect("casework: actions missing from risk's case history", len(unrecorded), 0)
    v.expect("casework: actions recorded twice in risk's case history", len(twice), 0)
    v.expect("official actions in risk's case history nobody confirmed", len(nobodys), 0)
    if unrecorded or twice or nobodys:
        v.evidence["case_history"] = {
            "missing": sorted(unrecorded)[:20], "doubled": sorted(twice)[:20],
            "strangers": sorted(nobodys)[:20],
        }  # fmt: skip
    v.expect(
        "cases still without a village", sum(1 for r in cases if is_unplaced(r["village_code"])), 0
    )
    plans = await _fetch(dsns["assistance"], "SELECT case_id, village_code, status FROM plans")
    wrong_village = plan_village_mismatches(plans, cases)
    v.info("assistance plans", len(plans))
    v.expect("plans whose village is not their case's (or of no case)", len(wrong_village), 0)
    unended = unended_plans(plans, cases)
    v.info("cases rejected", sum(1 for r in cases if r["status"] == "rejected"))
    v.expect("rejected cases whose plan is not rejected (rolled back if green channel)",
             len(unended), 0)  # fmt: skip
    intake_outcomes = await _fetch(
        dsns["intake"], "SELECT id, case_id, outcome FROM submissions WHERE case_id IS NOT NULL"
    )
    linked_rejected, not_shown = rejected_declarations(intake_outcomes, cases)
    v.info("declarations linked to a rejected case", linked_rejected)
    v.expect("declarations of a rejected case not shown rejected by intake", len(not_shown), 0)
    if wrong_village or unended or not_shown:
        v.evidence["casework_followers"] = {
            "plan_village": wrong_village[:20], "plan_not_ended": unended[:20],
            "intake_not_rejected": not_shown[:20],
        }  # fmt: skip

    # --- notify: one notification per routed event, delivered; the receiver's view
    routed = await _fetch(
        dsns["risk"],
        "SELECT event_id, e->>'event_type' = 'CaseStepCompleted' AS step"
        " FROM outbox, LATERAL (SELECT convert_from(value, 'UTF8')::jsonb AS e) v"
        " WHERE e->>'event_type' = ANY($1::text[])"
        " OR (e->>'event_type') || ':' || coalesce(e->'payload'->>'level', '') = ANY($2::text[])"
        " OR (e->>'event_type' = 'CaseStepCompleted' AND e->'payload'->>'step' = ANY($3::text[]))",
        list(OFFICE_ROUTED),
        [f"{kind}:{level}" for kind, level in OFFICE_ROUTED_LEVELS],
        list(OFFICE_ROUTED_STEPS),
    )
    visits = await _fetch(
        dsns["assistance"],
        "SELECT event_id FROM outbox WHERE convert_from(value, 'UTF8')::jsonb->>'event_type'"
        " = 'VisitOverdue'",
    )
    expected_events = {r["event_id"] for r in routed} | {r["event_id"] for r in visits}
    notes = await _fetch(
        dsns["notify"],
        "SELECT id, source_event_id, recipient, channel, status, attempts FROM notifications",
    )
    triples = Counter((r["source_event_id"], r["recipient"], r["channel"]) for r in notes)
    delivered = {r["id"] for r in notes if r["status"] == "delivered"}
    v.info("notifications expected (routed events)", len(expected_events))
    v.expect("notification rows", len(notes), len(expected_events))
    v.expect("routed events without a notification",
             len(expected_events - {r["source_event_id"] for r in notes}), 0)  # fmt: skip
    v.expect("duplicate (event, recipient, channel) rows", sum(n - 1 for n in triples.values()), 0)
    placements = {r["event_id"] for r in routed if r["step"]}
    v.info("placements published (CaseStepCompleted village_assigned)", len(placements))
    v.expect("placements (village_assigned) without exactly one notification",
             len(not_notified_once(placements, notes)), 0)  # fmt: skip
    v.expect("notifications delivered", len(delivered), len(notes))
    v.expect("notifications failed (dead)", sum(1 for r in notes if r["status"] == "failed"), 0)
    v.info("delivery attempts (mean per notification)",
           round(sum(r["attempts"] for r in notes) / max(len(notes), 1), 2))  # fmt: skip
    calls = receiver_calls(calls_log)
    ok_calls = [c for c in calls if c["ok"]]
    accepted_ids = Counter(c["key"] for c in ok_calls)
    v.info("receiver: raw calls (incl. its 500s)", len(calls))
    v.info("receiver: calls answered 200", len(ok_calls))
    v.expect("receiver: distinct notifications accepted", len(accepted_ids), len(delivered))
    v.expect(
        "delivered but never accepted by the receiver", len(delivered - accepted_ids.keys()), 0
    )
    v.expect("calls whose Idempotency-Key != notification_id",
             sum(1 for c in calls if c["key"] != c["id"]), 0)  # fmt: skip
    v.info("receiver: re-sent after a 200 (at-least-once HTTP; deduped by Idempotency-Key)",
           sum(n - 1 for n in accepted_ids.values()))  # fmt: skip
    per_event: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for c in ok_calls:
        per_event[(c["case_id"], c["event_type"], c["recipient"])].add(c["key"])
    doubled = {k: ids for k, ids in per_event.items() if len(ids) > 1}
    v.expect("receiver: (event, recipient, channel) with >1 notification", len(doubled), 0)
    if doubled:
        v.evidence["doubled_at_receiver"] = {
            str(k): sorted(i) for k, i in list(doubled.items())[:20]
        }

    # --- DLQs: exactly the poison
    dlq = await read_dlqs(bootstrap, prefix)
    keys = Counter(k for k, _ in dlq)
    poison = set(sent.poison_sent)
    strangers = [(k, h) for k, h in dlq if k not in poison]
    v.info("DLQ messages (all topics)", len(dlq))
    v.expect("poison messages found in the DLQ", len(poison & keys.keys()), len(poison))
    v.expect("DLQ messages that are not poison", len(strangers), 0)
    if strangers:
        v.evidence["dlq_strangers"] = strangers[:30]
    return v


Key = tuple[str, ...]
Row = Any  # an asyncpg.Record, or a dict in the unit tests: read by column name


def extra_cases(cases: list[Row], history: list[Row]) -> tuple[int, list[str]]:
    """(cases beyond what rules §4.8 allows, the cases rightly opened after a rejection).

    A household has one case, and one more after each rejection of its case: a signal risk
    evaluated after the rejection opens a new one. Its opening is the case's `open` history
    row, which comes after the rejection's (history ids grow with time: the signal's
    transaction waits for the household the rejection locked)."""
    opened: dict[str, int] = {}
    rejected_at: dict[str, int] = {}
    for h in history:
        if h["action"] == "open":
            opened[h["case_id"]] = min(opened.get(h["case_id"], h["id"]), h["id"])
        elif h["action"] == "reject":
            rejected_at[h["case_id"]] = h["id"]
    per_household: dict[str, list[Row]] = defaultdict(list)
    for case in cases:
        per_household[case["household_id"]].append(case)
    excess, reopened = 0, []
    for household_cases in per_household.values():
        ordered = sorted(household_cases, key=lambda c: opened.get(c["id"], 0))
        for before, after in pairwise(ordered):
            rejection = rejected_at.get(before["id"])
            if (
                before["status"] == "rejected"
                and rejection is not None
                and opened.get(after["id"], 0) > rejection
            ):
                reopened.append(after["id"])
            else:
                excess += 1
    return excess, reopened


def history_problems(
    confirmed: Any, history: list[Row]
) -> tuple[set[tuple[str, str]], set[tuple[str, str]], set[tuple[str, str]]]:
    """(missing, doubled, strangers) among the officials' actions in risk's case history: a
    confirmed (case, action) not recorded, one recorded more than once, and one recorded that
    nobody confirmed (the system's own rows, role `system`, are not officials' actions)."""
    recorded = Counter((h["case_id"], h["action"]) for h in history if h["role"] != "system")
    wanted = set(confirmed)
    missing = wanted - recorded.keys()
    doubled = {k for k, n in recorded.items() if n > 1}
    strangers = recorded.keys() - wanted
    return missing, doubled, strangers


def not_notified_once(placements: set[str], notes: list[Row]) -> list[str]:
    """The placements' events (CaseStepCompleted village_assigned) that got no notification or
    more than one (no roster: the village route falls back to the one office webhook)."""
    per_event = Counter(r["source_event_id"] for r in notes if r["source_event_id"] in placements)
    return sorted(e for e in placements if per_event[e] != 1)


def plan_village_mismatches(plans: list[Row], cases: list[Row]) -> list[tuple[str, str, str]]:
    """(case, plan's village, case's village) of every plan not in its case's village (a plan
    follows its case's placement, services/assistance step village_assigned)."""
    village = {c["id"]: c["village_code"] for c in cases}
    return [
        (p["case_id"], p["village_code"], village.get(p["case_id"], "(no such case)"))
        for p in plans
        if village.get(p["case_id"]) != p["village_code"]
    ]


def unended_plans(plans: list[Row], cases: list[Row]) -> list[tuple[str, str]]:
    """(case, plan status) of every rejected case whose plan is not `rejected`, or
    `rolled_back` for a green-channel case (rules §5.4); a rejected case with no plan too."""
    status = {p["case_id"]: p["status"] for p in plans}
    out = []
    for case in cases:
        if case["status"] != "rejected":
            continue
        wanted = "rolled_back" if case["green_channel"] else "rejected"
        got = status.get(case["id"], "(no plan)")
        if got != wanted:
            out.append((case["id"], got))
    return out


def rejected_declarations(submissions: list[Row], cases: list[Row]) -> tuple[int, list[str]]:
    """(submissions linked to a rejected case, those of them intake does not show `rejected`)."""
    rejected = {c["id"] for c in cases if c["status"] == "rejected"}
    linked = [s for s in submissions if s["case_id"] in rejected]
    return len(linked), sorted(s["id"] for s in linked if s["outcome"] != "rejected")


async def intake_signals(dsn: str, topic: str) -> set[Key]:
    """Every signal intake accepted durably: ("decl", submission) or ("feed", batch, line).

    A feed record travels alone (FeedRecordReceived) or in a slice (FeedRecordsReceived).
    """
    rows = await _fetch(dsn, "SELECT value FROM outbox WHERE topic = $1", topic)
    keys: set[Key] = set()
    for row in rows:
        event = json.loads(row["value"])
        payload = event.get("payload") or {}
        if event.get("event_type") == "FeedRecordsReceived":
            keys.update(("feed", payload["batch_id"], str(r["line"])) for r in payload["records"])
        elif event.get("event_type") == "FeedRecordReceived":
            keys.add(("feed", payload["batch_id"], str(payload["line"])))
        elif payload.get("submission_id"):
            keys.add(("decl", payload["submission_id"]))
    return keys


async def risk_signals(dsn: str) -> tuple[list[Key], set[Key]]:
    """The signals linked to a case (one entry per link), and every signal risk evaluated."""

    def key(r: asyncpg.Record) -> Key:
        if r["batch"] is not None and r["line"] is not None:
            return ("feed", r["batch"], r["line"])
        return ("decl", r["submission"])

    linked = await _fetch(
        dsn,
        "SELECT cs.submission_id AS submission, hs.payload->>'batch_id' AS batch,"
        " hs.payload->>'line' AS line"
        " FROM case_signals cs LEFT JOIN household_signals hs ON hs.event_id = cs.event_id",
    )
    evaluated = await _fetch(
        dsn,
        "SELECT payload->>'submission_id' AS submission, payload->>'batch_id' AS batch,"
        " payload->>'line' AS line FROM household_signals",
    )
    return [key(r) for r in linked], {key(r) for r in evaluated}


async def read_dlqs(bootstrap: str, prefix: str) -> list[tuple[str, dict[str, str]]]:
    """(key, headers) of every message on every DLQ topic of the run."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    out: list[tuple[str, dict[str, str]]] = []
    try:
        cluster = await consumer._client.fetch_all_metadata()
        topics = [t for t in cluster.topics() if t.startswith(prefix) and t.endswith(".dlq")]
        partitions = [
            TopicPartition(t, p) for t in topics for p in cluster.partitions_for_topic(t) or ()
        ]
        if not partitions:
            return out
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while True:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                break
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    headers = {k: v.decode(errors="replace")[:300] for k, v in r.headers}
                    key = r.key.decode(errors="replace") if r.key else ""
                    out.append((key, headers | {"topic": r.topic}))
    finally:
        await consumer.stop()
    return out
