"""The chaos run's traffic: declarations over the API, department feed uploads, poison messages,
and the officials' casework.

Every valid signal names one of a fixed set of households and reports a risk, so each must end up
in that household's case (the first one opens it, the rest merge). A few feed lines are invalid on
purpose (they must be recorded as rejected), and a few poison messages go straight onto the
signals topic (they must land in the DLQ and nowhere else). A few households' feed records name
no village, so risk holds their cases under the county (rules §9.4) until the county official
places them (`assign_village`); village officials take a sample of declared households' cases
through the home verification and the public notice and reject them at the village appraisal
(rules §4.2-§4.4, §4.7). Each action is retried through the faults until it is confirmed.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.demo import resident_id
from shared.auth import mint_token
from shared.clock import SystemClock
from shared.settings import ServiceSettings

APP_KEY = {"X-App-Key": "holdline-dev-app-key"}  # the development app key
RISKS = [["illness"], ["disaster"], ["accident", "illness"], ["housing_unsafe"], ["schooling"]]
RECORDED_ON = "2026-10-31"
Say = Callable[[str], None]


def village_of(h: int) -> str:
    """A valid village code (rules §9.4), spread over a few townships."""
    return f"5301020{h % 3 + 1:02d}{h % 5 + 1:03d}"


def feed_facts(department: str, rng: random.Random) -> dict[str, Any]:
    """Facts that report a risk for each department used (services/risk/feeds.py)."""
    match department:
        case "medical_insurance":
            spent = round(rng.uniform(20_000, 60_000), 2)
            return {"out_of_pocket_spending": spent, "serious_illness_claim": rng.random() < 0.2}
        case "agriculture":
            return {"project": "肉牛养殖", "failed": True, "loss_amount": rng.randint(5, 50) * 1000}
        case "emergency_management":
            return {"event": "disaster", "disaster_subtype": "flood", "loss_amount": 30_000}
        case "education":
            return {"schooling_stage": "junior", "dropped_out": True}
        case _:
            return {"house_rating": rng.choice("CD")}


DEPARTMENTS = ("medical_insurance", "agriculture", "emergency_management", "education", "housing")


@dataclass
class FeedUpload:
    """One NDJSON upload of one department."""

    department: str
    body: bytes
    valid: int
    invalid: int


@dataclass
class Traffic:
    """Everything the run sends, built up front from the seed."""

    households: list[str]
    declarations: list[dict[str, Any]]
    uploads: list[FeedUpload]
    poison: list[tuple[str, bytes]]
    # household -> its village (where the county places an unplaced case, rules §9.4)
    villages: dict[str, str] = field(default_factory=dict)
    # households whose feed records name no village: their cases wait for the county
    unplaced: list[str] = field(default_factory=list)
    # declared households whose case the village takes to the appraisal and rejects
    rejections: list[str] = field(default_factory=list)

    @property
    def casework_actions(self) -> int:
        """The officials' actions the run must take: a placement per unplaced household, and
        the four steps up to the rejection per sampled one."""
        return len(self.unplaced) + len(REJECTION_STEPS) * len(self.rejections)

    @property
    def feed_rows(self) -> int:
        """Valid feed lines."""
        return sum(u.valid for u in self.uploads)

    @property
    def invalid_rows(self) -> int:
        """Feed lines that must be rejected and recorded."""
        return sum(u.invalid for u in self.uploads)


def pick_casework(
    households: list[str], declared: list[str], seed: int
) -> tuple[list[str], list[str]]:
    """(unplaced, rejections): about 0.5% of the households, none declared (a declaration names
    its village), whose feed records name no village; about 1% of them, all declared, whose
    cases the village rejects. At least 3 of each while there are households to pick from."""
    rng = random.Random(seed * 31 + 1)  # its own stream: the signals stay as they were
    wanted = set(declared)
    others = [h for h in households if h not in wanted]
    unplaced = rng.sample(others, min(max(len(households) // 200, 3), len(others)))
    distinct = sorted(wanted, key=households.index)
    rejections = rng.sample(distinct, min(max(len(households) // 100, 3), len(distinct)))
    return unplaced, rejections


def build_traffic(signals: int, seed: int, uploads: int = 19) -> Traffic:
    """`signals` valid signals over signals/20 households: some declarations, the rest feeds."""
    rng = random.Random(seed)
    count = max(signals // 20, 3)
    households = [f"chaos-{seed}-h{h}" for h in range(count)]
    # every household gets a signal first, then they are drawn at random
    order = list(range(count)) + [rng.randrange(count) for _ in range(max(signals - count, 0))]
    rng.shuffle(order)
    order = order[:signals]
    # declarations go one by one through the API: 5%, at most 1,000 (feeds carry the volume)
    n_decl = max(min(signals // 20, 1_000), 1)
    declarations = []
    for n, h in enumerate(order[:n_decl]):
        village = village_of(h)
        declarations.append(
            {
                "household_id": households[h],
                "declarant_name": "王秀英",
                "declarant_id": resident_id(rng, village),
                "phone": f"13{rng.randint(0, 999_999_999):09d}",
                "village_code": village,
                "risk_types": RISKS[n % len(RISKS)],
                "description": "家庭突发困难，申请监测帮扶",
                "medical_spending": rng.choice([0, 12_000, 35_000]),
                "idempotency_key": f"chaos-{seed}-d{n}",
            }
        )
    unplaced, rejections = pick_casework(
        households, [str(d["household_id"]) for d in declarations], seed
    )
    nowhere = set(unplaced)
    feed_order = order[n_decl:]
    per_upload = max(-(-len(feed_order) // uploads), 1)
    out: list[FeedUpload] = []
    for u, start in enumerate(range(0, len(feed_order), per_upload)):
        department = DEPARTMENTS[u % len(DEPARTMENTS)]
        lines, invalid = [], 0
        for i, h in enumerate(feed_order[start : start + per_upload]):
            village = village_of(h)
            row = {
                "resident_id": resident_id(rng, village),
                "household_id": households[h],
                "village_code": village,
                "recorded_on": RECORDED_ON,
            } | feed_facts(department, rng)
            if households[h] in nowhere:
                # rules §9.4: no village named; the resident ID is still registered in 530102
                del row["village_code"]
            lines.append(json.dumps(row, ensure_ascii=False))
            if i % 200 == 17:  # rules §8: a bad line is rejected and recorded, the rest go on
                lines.append(json.dumps(row | {"resident_id": "11010519491231002"}))
                invalid += 1
        body = ("\n".join(lines) + "\n").encode()
        out.append(FeedUpload(department, body, len(lines) - invalid, invalid))
    villages = {hid: village_of(h) for h, hid in enumerate(households)}
    return Traffic(
        households, declarations, out, poison_messages(seed), villages, unplaced, rejections
    )


def poison_messages(seed: int) -> list[tuple[str, bytes]]:
    """(key, value) of messages no consumer can take: each must end in the DLQ."""
    now = "2026-11-01T00:00:00+00:00"

    def envelope(n: int, event_type: str, version: str) -> bytes:
        body = {
            "event_id": str(uuid.UUID(int=seed * 1000 + n)), "event_type": event_type,
            "schema_version": version, "occurred_at": now, "household_id": f"poison-{n}",
            "source": "chaos", "correlation_id": f"poison-{n}", "payload": {},
        }  # fmt: skip
        return json.dumps(body).encode()

    return [
        ("poison-0", b'{"event_id": "poison-0", this is not JSON'),
        ("poison-1", envelope(1, "FeedRecordReceived", "9.0")),  # a major version from the future
        ("poison-2", envelope(2, "HouseholdTeleported", "1.0")),  # an event type nobody knows
        ("poison-3", b"\xff\xfe not even UTF-8"),
        ("poison-4", envelope(4, "DeclarationSubmitted", "2.1")),
        ("poison-5", b"[1, 2, 3]"),
    ]


@dataclass
class Sent:
    """What the platform answered: the client's view of what was accepted."""

    declarations: dict[str, str] = field(default_factory=dict)  # idempotency key -> submission
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    batches: dict[str, tuple[int, int]] = field(default_factory=dict)  # batch id -> (acc, rej)
    upload_retries: int = 0
    declaration_retries: int = 0
    poison_sent: list[str] = field(default_factory=list)


RETRYABLE = (httpx.TransportError,)


async def post_declaration(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], sent: Sent
) -> None:
    """POST until intake answers: a lost answer is retried with the same Idempotency-Key."""
    key = body["idempotency_key"]
    payload = {k: v for k, v in body.items() if k != "idempotency_key"}
    while True:
        try:
            answer = await http.post(
                f"{url}/v1/declarations", json=payload, headers=APP_KEY | {"Idempotency-Key": key}
            )
        except RETRYABLE:
            answer = None
        if answer is not None and answer.status_code == 202:
            sent.declarations[key] = answer.json()["submission_id"]
            return
        if answer is not None and answer.status_code < 500 and answer.status_code != 429:
            sent.refused.append((key, answer.status_code, answer.text[:300]))
            return
        sent.declaration_retries += 1
        await asyncio.sleep(0.5)


async def post_feed(http: httpx.AsyncClient, url: str, upload: FeedUpload, sent: Sent) -> None:
    """Upload until one attempt completes; an interrupted one stays on record as aborted."""
    headers = {
        "X-API-Key": f"dev-{upload.department}-key",
        "Content-Type": "application/x-ndjson",
    }
    while True:
        try:
            answer = await http.post(
                f"{url}/v1/feeds/{upload.department}", content=upload.body, headers=headers
            )
        except RETRYABLE:
            answer = None
        if answer is not None and answer.status_code == 202:
            got = answer.json()
            sent.batches[got["batch_id"]] = (got["accepted"], got["rejected"])
            return
        if answer is not None and answer.status_code < 500:
            raise AssertionError(f"feed upload refused: {answer.status_code} {answer.text[:500]}")
        sent.upload_retries += 1
        await asyncio.sleep(1)


async def inject_poison(bootstrap: str, topic: str, messages: list[tuple[str, bytes]]) -> None:
    """Write the poison straight onto a topic risk consumes (as a broken producer would)."""
    while True:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", request_timeout_ms=5000
        )
        try:
            await producer.start()
            for key, value in messages:
                await producer.send_and_wait(topic, value, key=key.encode())
            return
        except KafkaError:
            await asyncio.sleep(1)
        finally:
            await producer.stop()


async def drive(
    *,
    traffic: Traffic,
    intake_url: str,
    bootstrap: str,
    signals_topic: str,
    min_seconds: float,
    say: Say,
    concurrency: int = 6,
) -> Sent:
    """Send everything in a shuffled order, spread over at least `min_seconds`."""
    sent = Sent()
    units: list[tuple[str, Any]] = [("feed", u) for u in traffic.uploads]
    chunk = 25
    decl = traffic.declarations
    units += [("decl", decl[i : i + chunk]) for i in range(0, len(decl), chunk)]
    random.Random(len(units)).shuffle(units)
    half = len(traffic.poison) // 2
    # poison early and again in the middle, while the faults are under way
    units.insert(min(1, len(units)), ("poison", traffic.poison[:half]))
    units.insert(len(units) // 2, ("poison", traffic.poison[half:]))
    started = time.monotonic()
    gate = asyncio.Semaphore(concurrency)
    poisoning: list[asyncio.Task[None]] = []
    timeout = httpx.Timeout(120, connect=5)
    async with httpx.AsyncClient(timeout=timeout) as http:

        async def one_declaration(body: dict[str, Any]) -> None:
            async with gate:
                await post_declaration(http, intake_url, body, sent)

        for n, (kind, unit) in enumerate(units):
            if kind == "feed":
                await post_feed(http, intake_url, unit, sent)
            elif kind == "decl":
                await asyncio.gather(*(one_declaration(b) for b in unit))
            else:
                # in the background: a broker being restarted must not hold up the API traffic
                poisoning.append(asyncio.create_task(inject_poison(bootstrap, signals_topic, unit)))
                sent.poison_sent += [k for k, _ in unit]
            ahead = min_seconds * (n + 1) / len(units) - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
            if (n + 1) % max(len(units) // 10, 1) == 0:
                say(f"drive: {n + 1}/{len(units)} units sent ({time.monotonic() - started:.0f} s)")
    await asyncio.gather(*poisoning)
    return sent


# --- the officials' casework (services/risk/README.md, POST /v1/cases/{id}/actions)

# rules §4.2-§4.4, §4.7: a village official's steps up to a rejection at the village appraisal
# (the notice period forbids going further while the run lasts)
REJECTION_STEPS: tuple[dict[str, Any], ...] = (
    {"action": "start_home_verification"},
    {"action": "complete_home_verification", "signed_form": True},
    {"action": "post_public_notice"},
    {"action": "reject", "reason": "家庭收入超过监测标准 (chaos run)"},
)
ASSIGN_VILLAGE = "assign_village"
COUNTY = "530102"
# the stages a case reaches once a step is taken (services/risk/workflow.py)
_PAST: dict[str, frozenset[str]] = {
    "start_home_verification": frozenset(
        {"home_verification", "village_appraisal", "township_review", "county_approval",
         "identified", "rejected"}
    ),
    "complete_home_verification": frozenset(
        {"village_appraisal", "township_review", "county_approval", "identified", "rejected"}
    ),
}  # fmt: skip


def official_headers(role: str, jurisdiction: str) -> dict[str, str]:
    """A bearer token signed with the development JWT secret, the one the run's services use
    (chaos.service_env passes no HOLDLINE_JWT_SECRET)."""
    secret = ServiceSettings.model_fields["jwt_secret"].default.get_secret_value()
    token = mint_token(
        subject=f"chaos-{role}-{jurisdiction}", role=role,  # type: ignore[arg-type]
        jurisdiction=jurisdiction, secret=secret, clock=SystemClock(),
    )  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def action_done(case: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether the case (GET /v1/cases/{id}) shows the action already taken: an earlier attempt
    committed and only its answer was lost."""
    action = body["action"]
    if action == ASSIGN_VILLAGE:
        return bool(case["village_code"] == body["village_code"])
    if action == "post_public_notice":
        return case["notice_posted_at"] is not None
    if action == "reject":
        return bool(case["status"] == "rejected")
    return case["stage"] in _PAST[action]


@dataclass
class Casework:
    """What the officials did: every POST, every retry, every action confirmed, once."""

    sent: int = 0  # POSTs of an action, retries included
    retried: int = 0
    confirmed: dict[tuple[str, str], str] = field(default_factory=dict)  # (case, action) -> how
    refused: list[tuple[str, str, int, str]] = field(default_factory=list)
    placed: dict[str, str] = field(default_factory=dict)  # household -> case placed
    rejected: dict[str, str] = field(default_factory=dict)  # household -> case rejected
    strangers: list[str] = field(default_factory=list)  # unplaced cases of no unplaced household
    reads_retried: int = 0
    aimed: int = 0  # actions fired as risk was killed or PostgreSQL restarted
    # every drop_every-th action has its 200 thrown away, as if the answer were lost on the
    # way back after risk committed: the retry must find the action taken, not take it again
    drop_every: int = 0
    actions: int = 0
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (case, action)
    unfinished: list[str] = field(default_factory=list)  # households not done when time ran out

    @property
    def confirmed_by_read(self) -> int:
        """Actions whose answer a fault took away, found taken by reading the case."""
        return sum(1 for how in self.confirmed.values() if how == "read")


class Strikes:
    """The faults as they strike (bench/chaos.py announces each just before it), so that some
    actions are in flight when risk is killed or PostgreSQL restarts."""

    def __init__(self) -> None:
        self._next: asyncio.Future[str] | None = None

    def announce(self, kind: str) -> None:
        """A fault of `kind` strikes now."""
        if self._next is not None and not self._next.done():
            self._next.set_result(kind)
        self._next = None

    async def wait(self, words: tuple[str, ...], timeout: float) -> bool:
        """Until a fault whose kind names one of `words` strikes; False after `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            try:
                kind = await asyncio.wait_for(asyncio.shield(self._next), left)
            except TimeoutError:
                return False
            if any(w in kind for w in words):
                return True
        return False


# one action in this many has its answer thrown away after risk committed it (Casework)
DROP_EVERY = 5
# the faults an aimed action is fired into: its request in flight when they strike
AIM_AT = ("risk", "postgresql")


class Pacer:
    """Spreads `total` actions evenly over `seconds` from the first turn, so that they meet the
    faults as the signals do: the n-th turn waits until start + seconds * n / (total + 1);
    every other turn then waits for risk's kill or PostgreSQL's restart to strike (at most
    `aim_timeout`), so that its request is in flight when it does. Only the first `max_aims`
    turns aim: the placements take their turns one after another, and a wait for a strike
    each held the 100,000-signal run up for ten minutes."""

    def __init__(
        self,
        total: int,
        seconds: float,
        strikes: Strikes | None = None,
        aim_timeout: float = 0,
        max_aims: int = 12,
    ) -> None:
        self.total, self.seconds = max(total, 1), seconds
        self.strikes, self.aim_timeout = strikes, aim_timeout
        self.max_aims = max_aims
        self.start: float | None = None
        self.taken = 0
        self.aiming = 0  # turns that waited for a strike
        self.aimed = 0  # of which one struck

    async def turn(self) -> None:
        """Wait for the next slot (at once when it has passed), and for a fault if aimed."""
        if self.start is None:
            self.start = time.monotonic()
        self.taken += 1
        aim = self.strikes is not None and self.taken % 2 == 1 and self.aiming < self.max_aims
        self.aiming += aim
        at = self.start + self.seconds * self.taken / (self.total + 1)
        await asyncio.sleep(max(at - time.monotonic(), 0))
        if aim and self.strikes is not None and await self.strikes.wait(AIM_AT, self.aim_timeout):
            # 0 to 0.8 s into it: at the kill, or while the cluster stops and starts again
            await asyncio.sleep(self.aimed % 5 * 0.2)
            self.aimed += 1


def _retryable(answer: httpx.Response | None) -> bool:
    return answer is None or answer.status_code >= 500 or answer.status_code == 429


async def read_json(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], work: Casework
) -> httpx.Response:
    """GET until risk answers (a kill, a PostgreSQL restart or a timeout is retried)."""
    while True:
        try:
            answer: httpx.Response | None = await http.get(url, headers=headers)
        except RETRYABLE:
            answer = None
        if not _retryable(answer):
            assert answer is not None
            return answer
        work.reads_retried += 1
        await asyncio.sleep(0.5)


async def act(
    http: httpx.AsyncClient,
    risk_url: str,
    case_id: str,
    body: dict[str, Any],
    headers: dict[str, str],
    work: Casework,
) -> bool:
    """POST one action until it is confirmed: a 200, or, after a retry whose earlier attempt
    may have committed, a 409/422 with the case showing the action taken. False: refused."""
    url = f"{risk_url}/v1/cases/{case_id}"
    key = (case_id, body["action"])
    attempts = 0
    work.actions += 1
    drop = work.drop_every > 0 and work.actions % work.drop_every == 0
    while True:
        attempts += 1
        work.sent += 1
        try:
            answer: httpx.Response | None = await http.post(
                f"{url}/actions", json=body, headers=headers
            )
        except RETRYABLE:
            answer = None
        if drop and answer is not None and answer.status_code == 200:
            work.dropped.append(key)
            drop, answer = False, None
        if answer is not None and answer.status_code == 200:
            work.confirmed[key] = "answer"
            return True
        if answer is not None and answer.status_code in (409, 422) and attempts > 1:
            case = await read_json(http, url, headers, work)
            if case.status_code == 200 and action_done(case.json(), body):
                work.confirmed[key] = "read"
                return True
        if not _retryable(answer):
            assert answer is not None
            work.refused.append((case_id, body["action"], answer.status_code, answer.text[:300]))
            return False
        work.retried += 1
        await asyncio.sleep(0.5)


async def list_cases(
    http: httpx.AsyncClient, risk_url: str, query: str, headers: dict[str, str], work: Casework
) -> list[dict[str, Any]]:
    """Every case the query lists, following the Link rel=next pages to the end."""
    url: str | None = f"{risk_url}/v1/cases?{query}&limit=1000"
    found: list[dict[str, Any]] = []
    while url is not None:
        answer = await read_json(http, url, headers, work)
        if answer.status_code != 200:
            raise AssertionError(f"GET {url}: {answer.status_code} {answer.text[:500]}")
        found += answer.json()
        following = answer.links.get("next", {}).get("url")
        url = f"{risk_url}{following}" if following else None
    return found


async def place_unplaced(
    http: httpx.AsyncClient,
    risk_url: str,
    traffic: Traffic,
    work: Casework,
    done: asyncio.Event,
    pacer: Pacer,
) -> None:
    """The county official works down `GET /v1/cases?unplaced=true` and places each case in
    its household's village, until every unplaced household is placed (rules §9.4)."""
    headers = official_headers("county", COUNTY)
    waiting = set(traffic.unplaced)
    while waiting or not done.is_set():
        for case in await list_cases(http, risk_url, "status=open&unplaced=true", headers, work):
            household = case["household_id"]
            if household not in waiting:
                if household not in work.strangers:
                    work.strangers.append(household)
                continue
            await pacer.turn()
            body = {"action": ASSIGN_VILLAGE, "village_code": traffic.villages[household]}
            if await act(http, risk_url, case["case_id"], body, headers, work):
                work.placed[household] = case["case_id"]
            waiting.discard(household)
        await asyncio.sleep(1)


async def take_to_rejection(
    http: httpx.AsyncClient,
    risk_url: str,
    traffic: Traffic,
    household: str,
    work: Casework,
    driven: asyncio.Event,
    pacers: tuple[Pacer, Pacer],
) -> None:
    """The village official takes the household's case through the home verification and the
    public notice, then, once every signal was sent, rejects it at the village appraisal."""
    headers = official_headers("village", traffic.villages[household])
    query = f"household_id={household}&status=open"
    await pacers[0].turn()
    while not (found := await list_cases(http, risk_url, query, headers, work)):
        await asyncio.sleep(1)  # risk has not opened it yet
    case_id = found[0]["case_id"]
    for n, body in enumerate(REJECTION_STEPS):
        if body["action"] == "reject":
            await driven.wait()  # rules §4.8: a signal after it may open a new case, rightly
            await pacers[1].turn()
        elif n:
            await pacers[0].turn()
        if not await act(http, risk_url, case_id, body, headers, work):
            return
    work.rejected[household] = case_id


async def casework(
    *,
    traffic: Traffic,
    risk_url: str,
    driving: asyncio.Task[Any],
    drive_seconds: float,
    after_seconds: float,
    strikes: Strikes,
    timeout: float,
    say: Say,
) -> Casework:
    """The officials' actions while the traffic and the faults go on: the placements and the
    steps up to the notice spread over the drive, the rejections over `after_seconds` after
    it, half of them fired as risk is killed or PostgreSQL restarts. Done when every unplaced
    case is placed and every sampled case rejected, or when
    `timeout` runs out."""
    work = Casework(drop_every=DROP_EVERY)
    driven = asyncio.Event()
    driving.add_done_callback(lambda _: driven.set())
    started = time.monotonic()
    steps = len(REJECTION_STEPS) - 1
    total = len(traffic.unplaced) + steps * len(traffic.rejections)
    during = Pacer(total, drive_seconds, strikes, after_seconds)
    pacers = (during, Pacer(len(traffic.rejections), after_seconds, strikes, after_seconds))
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5)) as http:
        tasks = [asyncio.create_task(place_unplaced(http, risk_url, traffic, work, driven, during))]
        tasks += [
            asyncio.create_task(take_to_rejection(http, risk_url, traffic, h, work, driven, pacers))
            for h in traffic.rejections
        ]
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in tasks:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
    work.aimed = during.aimed + pacers[1].aimed
    left = set(traffic.unplaced) - work.placed.keys()
    work.unfinished = sorted(left | (set(traffic.rejections) - work.rejected.keys()))
    say(
        f"casework: {len(work.placed)} placed, {len(work.rejected)} rejected, {work.sent} POSTs"
        f" ({work.retried} retried, {len(work.dropped)} answers dropped,"
        f" {work.confirmed_by_read} confirmed by a read,"
        f" {work.aimed} fired into a fault) in"
        f" {time.monotonic() - started:.0f} s"
    )
    return work
