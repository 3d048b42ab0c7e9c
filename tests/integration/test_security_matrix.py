"""Every endpoint of the four services against every kind of caller that must be refused.

The matrix is checked against the OpenAPI of each app: an endpoint that is added without a row
here fails `test_the_matrix_covers_every_endpoint`. The apps run in-process (ASGI) on fresh
PostgreSQL databases with real rows to point at, so "outside jurisdiction" means a real object.

Outside the caller's jurisdiction is 403 for one object (the design shows that the id exists but
not its content: ids are random and carry no personal data) and an empty list for a listing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.assistance import handlers as assistance_handlers
from services.assistance.app import create_app as assistance_app
from services.assistance.config import AssistanceSettings
from services.assistance.models import measures
from services.assistance.roster import register_cadre
from services.assistance.schemas import CadreIn
from services.intake.app import create_app as intake_app
from services.intake.config import IntakeSettings
from services.notify import acks
from services.notify import handlers as notify_handlers
from services.notify.app import create_app as notify_app
from services.notify.config import NotifySettings
from services.notify.models import notifications
from services.risk import handlers as risk_handlers
from services.risk.app import create_app as risk_app
from services.risk.config import RiskSettings
from services.risk.models import cases
from shared.auth import ROLES, Role, mint_token
from shared.clock import FrozenClock, SystemClock
from shared.events import (
    CaseOpened,
    DeclarationSubmitted,
    HouseholdIdentified,
    Member,
    Payload,
    RegistryRecordReceived,
    new_event,
)
from shared.migrations import upgrade
from shared.settings import ServiceSettings
from tests.conftest import new_database
from tests.integration.test_intake_api import cadre_report, declaration, registry_household

pytestmark = [pytest.mark.postgres]
TOWN = "530102001"
VILLAGE = TOWN + "001"
ELSEWHERE = "110105"
ID_A = "530102195003150018"
APP = {"X-App-Key": "holdline-dev-app-key"}
HOUSING = {"X-API-Key": "dev-housing-key"}
WATER = {"X-API-Key": "dev-water-key"}
FEED_ROW = f'{{"resident_id": "{ID_A}", "recorded_on": "2026-10-01", "house_rating": "D"}}\n'
OPS = {"/healthz", "/readyz", "/metrics"}

Guard = Literal[
    "public", "official", "app", "app_or_official", "department", "department_or_county", "ack"
]
# object: one row, 403 outside; list: filtered, [] outside; region: a region filter, 403
# outside; body: a region in the body, 403 outside; recipient: a listing of one recipient
# filtered to the caller's jurisdiction, 404 outside (the answer for an unknown recipient)
Scope = Literal["none", "object", "list", "region", "body", "recipient"]


@dataclass(frozen=True)
class Rule:
    """Who may call an endpoint, and how its answers are limited to the caller's region."""

    guard: Guard
    role: Role = "village"  # the lowest role allowed
    exact_role: bool = False  # only `role` itself (e.g. rollback is the county's step)
    # a department's key is known and refused (403 role), as for a household's contact (rules §9)
    refuses_department: bool = False
    scope: Scope = "none"
    ok: tuple[int, ...] = (200,)  # what the allowed caller gets (409: allowed, wrong state)
    why_public: str = ""


RULES: dict[tuple[str, str, str], Rule] = {
    # intake
    ("intake", "POST", "/v1/declarations"): Rule("app", ok=(202,)),
    ("intake", "POST", "/v1/cadre-reports"): Rule("official", scope="body", ok=(202,)),
    ("intake", "POST", "/v1/registry"): Rule("official", "county", scope="body", ok=(202,)),
    ("intake", "GET", "/v1/submissions/{submission_id}"): Rule("app_or_official", scope="object"),
    ("intake", "GET", "/v1/submissions/{submission_id}/contact"): Rule(
        "official", scope="object", refuses_department=True
    ),
    ("intake", "GET", "/v1/submissions/{submission_id}/contact/audit"): Rule(
        "official", "county", scope="object"
    ),
    # from an alert naming the household to its submissions' contacts (no contact in it)
    ("intake", "GET", "/v1/households/{household_id}/submissions"): Rule(
        "official", scope="object", refuses_department=True
    ),
    ("intake", "POST", "/v1/feeds/{department}"): Rule("department", ok=(202,)),
    # rules §8.2: the department reads back what risk made of its records (the matrix's batch
    # was never evaluated by risk, so its own department's allowed call is a 404)
    ("risk", "GET", "/v1/feeds/{department}/batches/{batch_id}/results"): Rule(
        "department", ok=(200, 404)
    ),
    ("risk", "GET", "/v1/feeds/{department}/batches/{batch_id}/summary"): Rule(
        "department", ok=(200, 404)
    ),
    ("intake", "GET", "/v1/feeds/batches/{batch_id}"): Rule("department_or_county", "county"),
    ("intake", "GET", "/v1/feeds/batches/{batch_id}/rejected"): Rule(
        "department_or_county", "county"
    ),
    # risk
    ("risk", "GET", "/v1/cases"): Rule("official", scope="list"),
    ("risk", "GET", "/v1/cases/{case_id}"): Rule("official", scope="object"),
    ("risk", "POST", "/v1/cases/{case_id}/actions"): Rule(
        "official", exact_role=True, scope="object", ok=(200, 409)
    ),
    ("risk", "GET", "/v1/cases/{case_id}/public-notice"): Rule(
        "official", scope="object", ok=(200, 409)
    ),
    ("risk", "GET", "/v1/ledger"): Rule("official", scope="region"),
    ("risk", "GET", "/v1/ledger/counts"): Rule("official", "township", scope="region"),
    ("risk", "GET", "/v1/households/{household_id}"): Rule("official", scope="object"),
    ("risk", "POST", "/v1/households/{household_id}/elimination-rollback"): Rule(
        "official", "county", exact_role=True, scope="object", ok=(409,)
    ),
    ("risk", "GET", "/v1/thresholds"): Rule(
        "public", why_public="the published monitoring thresholds (rules §2); no household data"
    ),
    # assistance
    ("assistance", "GET", "/v1/catalogue"): Rule(
        "public", why_public="the published measure catalogue (rules §6); no household data"
    ),
    ("assistance", "GET", "/v1/catalogue/{code}"): Rule(
        "public", why_public="one measure of the published catalogue; no household data"
    ),
    ("assistance", "GET", "/v1/plans"): Rule("official", scope="list"),
    ("assistance", "GET", "/v1/households/{household_id}/plan"): Rule("official", scope="object"),
    ("assistance", "POST", "/v1/plans/{plan_id}/measures"): Rule(
        "official", scope="object", ok=(201, 409)
    ),
    ("assistance", "GET", "/v1/measures"): Rule("official", scope="region"),
    ("assistance", "POST", "/v1/measures/{measure_id}/transitions"): Rule(
        "official", scope="object", ok=(200, 409)
    ),
    ("assistance", "GET", "/v1/measures/{measure_id}/history"): Rule("official", scope="object"),
    ("assistance", "POST", "/v1/cadres"): Rule("official", "county", scope="body", ok=(200, 201)),
    ("assistance", "GET", "/v1/cadres"): Rule("official", scope="region"),
    ("assistance", "POST", "/v1/cadres/{cadre_id}/leave"): Rule(
        "official", "county", scope="object"
    ),
    ("assistance", "GET", "/v1/workload"): Rule("official", scope="region"),
    ("assistance", "POST", "/v1/visits"): Rule("official", scope="body", ok=(201,)),
    ("assistance", "GET", "/v1/visits/due"): Rule("official", scope="region"),
    # notify
    ("notify", "GET", "/v1/notifications"): Rule("official", scope="list"),
    ("notify", "GET", "/v1/notifications/{notification_id}"): Rule("official", scope="object"),
    ("notify", "GET", "/v1/recipients/{recipient}/notifications"): Rule(
        "official", scope="recipient"
    ),
    ("notify", "POST", "/v1/notifications/{notification_id}/resend"): Rule(
        "official", "township", scope="object", ok=(202,)
    ),
    ("notify", "GET", "/v1/channels/health"): Rule("official"),
    # the page names the household and shows the alert, so it takes the signed token as the
    # POST does; it changes nothing (link previewers fetch with GET)
    ("notify", "GET", "/v1/acks/{token}"): Rule("ack"),
    ("notify", "POST", "/v1/acks/{token}"): Rule("ack"),
}


def bearer(role: Role, jurisdiction: str, *, subject: str = "o-1", expired: bool = False) -> dict:  # type: ignore[type-arg]
    """An official's bearer header; `expired` mints one that ran out an hour ago."""
    clock = FrozenClock(datetime.now(UTC) - timedelta(hours=9)) if expired else SystemClock()
    token = mint_token(
        subject=subject, role=role, jurisdiction=jurisdiction, clock=clock,
        secret=ServiceSettings().jwt_secret.get_secret_value(), ttl=timedelta(hours=8),
    )  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def home_of(role: Role) -> str:
    """A jurisdiction of `role` that holds VILLAGE."""
    return {"village": TOWN, "township": TOWN, "county": "530102", "admin": ""}[role]


@dataclass
class World:
    """The four apps, their clients, and the ids of real rows in VILLAGE."""

    http: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    apps: dict[str, FastAPI] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)


async def _app(name: str, app: FastAPI) -> tuple[FastAPI, httpx.AsyncClient]:
    await upgrade(app.state.runtime.settings.database_url, app.state.runtime.service_dir)
    transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 40000))
    return app, httpx.AsyncClient(transport=transport, base_url=f"http://{name}")


async def _handle(app: FastAPI, handler: Any, payload: Payload, household: str) -> None:
    runtime = app.state.runtime
    event = new_event(
        payload, household_id=household, source="test", correlation_id="c", clock=runtime.clock
    )
    async with runtime.uow() as uow:
        await handler(uow=uow, event=event, settings=runtime.settings)


async def _seed_intake(world: World) -> None:
    http = world.http["intake"]
    # the household risk's rows are about (ids["household"]), in VILLAGE
    body = declaration(household_id="hh-matrix")
    answer = await http.post("/v1/declarations", json=body, headers=APP)
    assert answer.status_code == 202, answer.text
    world.ids["submission"] = answer.json()["submission_id"]
    batch = await http.post(
        "/v1/feeds/housing", content=FEED_ROW,
        headers=HOUSING | {"Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    assert batch.status_code == 202, batch.text
    world.ids["batch"] = batch.json()["batch_id"]


async def _seed_risk(world: World) -> None:
    app, household = world.apps["risk"], "hh-matrix"
    member = Member(
        person_id_hash="p1", person_id_masked="530102***********1", name="王秀英", age=35
    )
    await _handle(app, risk_handlers.on_registry_record, RegistryRecordReceived(
        submission_id="r", village_code=VILLAGE, baseline_status="formerly_poor",
        per_capita_income=9000, members=[member],
    ), household)  # fmt: skip
    await _handle(app, risk_handlers.on_declaration, DeclarationSubmitted(
        submission_id="s", declarant_name="王秀英", declarant_id_masked="530102***********1",
        village_code=VILLAGE, risk_types=["illness"], medical_spending=30000,
    ), household)  # fmt: skip
    async with app.state.runtime.uow() as uow:
        world.ids["case"] = (await uow.execute(select(cases.c.id))).scalar_one()
    world.ids["household"] = household


async def _seed_assistance(world: World) -> None:
    app, household = world.apps["assistance"], "hh-matrix"
    runtime = app.state.runtime
    await _handle(app, assistance_handlers.on_household_identified, HouseholdIdentified(
        case_id="case-matrix", village_code=VILLAGE, kind="marginal", risk_types=["illness"],
        reasons=[], per_capita_income=5200,
        members=[Member(person_id_hash="p1", person_id_masked="5301***1", age=35)],
    ), household)  # fmt: skip
    async with runtime.uow() as uow:
        for cadre_id, rank, villages in (
            ("c-vil", "village", [VILLAGE]), ("c-leave", "general", []),
        ):  # fmt: skip
            await register_cadre(
                uow, cadre=CadreIn(cadre_id=cadre_id, name="干部", rank=rank,
                                   township_code=TOWN, village_codes=villages),
                actor="test", settings=runtime.settings,
            )  # fmt: skip
        row = (await uow.execute(select(measures.c.id, measures.c.plan_id))).first()
    assert row is not None, "the plan has no measure"
    world.ids["measure"], world.ids["plan"] = row.id, row.plan_id


async def _seed_notify(world: World) -> None:
    app, runtime = world.apps["notify"], world.apps["notify"].state.runtime
    now = datetime.now(UTC)
    for household in ("hh-matrix", "hh-other"):
        await _handle(app, notify_handlers.on_routed_event, CaseOpened(
            case_id=str(uuid.uuid4()), village_code=VILLAGE, risk_types=["illness"],
            channel="app", opened_at=now, deadline=now + timedelta(days=15),
            home_visit_due=now + timedelta(days=2),
        ), household)  # fmt: skip
    async with runtime.uow() as uow:
        rows = (await uow.execute(select(notifications).order_by(notifications.c.id))).all()
    assert len(rows) >= 2 and all(r.village_code == VILLAGE for r in rows)
    world.ids["notification"], world.ids["other_notification"] = rows[0].id, rows[1].id
    world.ids["recipient"] = rows[0].recipient


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    """The four apps on fresh databases, seeded with one household's rows in VILLAGE."""
    built = World()
    unlimited = {"rate_per_ip": 1_000_000, "rate_per_phone": 1_000_000}
    factories: dict[str, Callable[[str], FastAPI]] = {
        "intake": lambda url: intake_app(IntakeSettings(database_url=url, **unlimited)),
        "risk": lambda url: risk_app(RiskSettings(database_url=url)),
        "assistance": lambda url: assistance_app(AssistanceSettings(database_url=url)),
        "notify": lambda url: notify_app(
            NotifySettings(database_url=url, quiet_hours_start=0, quiet_hours_end=0)
        ),
    }
    for name, factory in factories.items():
        built.apps[name], built.http[name] = await _app(name, factory(await new_database()))
    await _seed_intake(built)
    await _seed_risk(built)
    await _seed_assistance(built)
    await _seed_notify(built)
    try:
        yield built
    finally:
        for name, http in built.http.items():
            await http.aclose()
            await built.apps[name].state.runtime.engine.dispose()


def _ack_token(world: World, notification: str, *, hours: float = 1) -> str:
    secret = world.apps["notify"].state.runtime.settings.secret_key.get_secret_value()
    expires = datetime.now(UTC) + timedelta(hours=hours)
    return acks.sign(world.ids[notification], expires_at=expires, secret=secret)


def request_for(world: World, key: tuple[str, str, str]) -> tuple[str, dict[str, Any]]:
    """A well-formed request for an endpoint, about VILLAGE's rows: (url, httpx kwargs)."""
    _, method, path = key
    ids = world.ids
    url = path.format(
        submission_id=ids["submission"], department="housing", batch_id=ids["batch"],
        case_id=ids["case"], household_id=ids["household"], plan_id=ids["plan"],
        measure_id=ids["measure"], cadre_id="c-leave", notification_id=ids["notification"],
        recipient=ids["recipient"], code="public_welfare_job", token="-",
    )  # fmt: skip
    bodies: dict[str, dict[str, Any]] = {
        "/v1/declarations": {"json": declaration()},
        "/v1/cadre-reports": {"json": cadre_report(village_code=VILLAGE)},
        "/v1/registry": {
            "json": {"households": [registry_household(ID_A, 7000, village=VILLAGE)]}
        },
        "/v1/feeds/{department}": {
            "content": FEED_ROW, "headers": {"Content-Type": "application/x-ndjson"}
        },
        "/v1/cases/{case_id}/actions": {"json": {"action": "start_home_verification"}},
        "/v1/households/{household_id}/elimination-rollback": {"json": {"reason": "relapse"}},
        "/v1/plans/{plan_id}/measures": {"json": {"code": "public_welfare_job", "reason": "x",
                                                   "person_id_hash": "p1"}},
        "/v1/measures/{measure_id}/transitions": {"json": {"status": "in_progress"}},
        "/v1/cadres": {"json": {"cadre_id": "c-new", "name": "新干部", "rank": "general",
                                "township_code": TOWN}},
        "/v1/visits": {"json": {"household_id": "hh-matrix",
                                "visited_on": date.today().isoformat()}},
    }  # fmt: skip
    kwargs = dict(bodies.get(path, {})) if method == "POST" else {}
    if RULES[key].scope == "region":
        kwargs["params"] = {"region_prefix" if path.startswith("/v1/ledger") else "region": TOWN}
    return url, kwargs


@dataclass(frozen=True)
class Probe:
    """One caller against one endpoint, and the status it must get."""

    key: tuple[str, str, str]
    who: str
    expected: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.key[0]} {self.key[1]} {self.key[2]} :: {self.who}"


def _below(role: Role) -> Role:
    return ROLES[ROLES.index(role) - 1]


def probes() -> list[Probe]:
    """The matrix: each endpoint with every refusal that applies to it, then an allowed call."""
    out: list[Probe] = []
    for key, rule in RULES.items():

        def add(who: str, *codes: int, key: tuple[str, str, str] = key) -> None:
            out.append(Probe(key, who, codes))

        if rule.guard == "public":
            add("anyone", 200)
            continue
        add("no credentials", 401)
        if rule.guard == "ack":
            for who in ("tampered signature", "other notification's token", "expired token",
                        "malformed token"):  # fmt: skip
                add(who, 401)
            add("valid token", 200)
            continue
        if rule.guard in ("official", "app_or_official", "department_or_county"):
            add("expired token", 401)
            add("forged token", 401)
        if rule.guard == "official":
            add("app key instead of a token", 401)
            if rule.role != "village":
                add("wrong role", 403)
            elif rule.exact_role:
                add("wrong role", 403)
            if rule.exact_role and rule.role != "admin":
                add("admin for another role's step", 403)
            if rule.refuses_department:
                add("department key instead of a token", 403)
        if rule.guard == "department_or_county":
            add("wrong role", 403)
        if rule.guard in ("app", "app_or_official"):
            add("wrong app key", 401)
        if rule.guard in ("department", "department_or_county"):
            add("unknown department key", 401)
            add("wrong department", 403)
        if rule.scope == "list":
            add("outside jurisdiction sees nothing", 200)
        elif rule.scope == "recipient":
            add("outside jurisdiction", 404)
        elif rule.scope != "none":
            add("outside jurisdiction", 403)
        add("allowed", *rule.ok)
    return out


def credentials(key: tuple[str, str, str], who: str) -> dict[str, str]:
    """The headers of caller `who` for endpoint `key`."""
    rule = RULES[key]
    role = rule.role
    subject = "c-vil" if key[2] == "/v1/visits" else "o-1"
    table: dict[str, Callable[[], dict[str, str]]] = {
        "no credentials": dict,
        "anyone": dict,
        "expired token": lambda: bearer(role, home_of(role), expired=True),
        "forged token": lambda: {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA"},
        "app key instead of a token": lambda: dict(APP),
        "wrong role": lambda: bearer(
            "township" if key[0] == "risk" and key[2].endswith("/actions") else _below(role),
            home_of(role),
        ),
        "admin for another role's step": lambda: bearer("admin", ""),
        "wrong app key": lambda: {"X-App-Key": "not-the-app-key"},
        "unknown department key": lambda: {"X-API-Key": "dev-nobody-key"},
        "wrong department": lambda: dict(WATER),
        "department key instead of a token": lambda: dict(HOUSING),
        "outside jurisdiction": lambda: bearer(role, ELSEWHERE, subject=subject),
        "outside jurisdiction sees nothing": lambda: bearer(role, ELSEWHERE),
    }
    if who in table:
        return table[who]()
    if rule.guard == "ack":
        return {}  # the signed token in the path is the only credential
    assert who == "allowed", who
    if rule.guard == "app":
        return dict(APP)
    if rule.guard == "department":
        return dict(HOUSING)
    if rule.guard == "app_or_official":
        return bearer("village", TOWN)
    return bearer(role, home_of(role), subject=subject)


@pytest.mark.parametrize("probe", probes(), ids=str)
async def test_security_matrix(world: World, probe: Probe) -> None:
    """401 for an unknown caller, 403 for a known one in the wrong role, place or department."""
    key, who = probe.key, probe.who
    service, method, _ = key
    url, kwargs = request_for(world, key)
    if who != "anyone" and RULES[key].guard == "ack":
        url = "/v1/acks/" + _forged_ack(world, who)
    headers = kwargs.pop("headers", {}) | credentials(key, who)
    answer = await world.http[service].request(method, url, headers=headers, **kwargs)
    assert answer.status_code in probe.expected, f"{probe}: {answer.status_code} {answer.text}"
    if answer.status_code in (401, 403) and answer.headers["content-type"].startswith("text/html"):
        # a page a phone shows (the acknowledgement page): the reason names the field too
        assert "token: " in answer.text, answer.text
    elif answer.status_code in (401, 403):
        detail = answer.json()["detail"]
        assert ":" in detail and " " not in detail.split(":")[0], detail  # names the field
    if who == "outside jurisdiction sees nothing":
        assert answer.json() == [], answer.text
    if who == "allowed" and RULES[key].scope == "list":
        assert answer.json(), (
            f"{probe}: the allowed caller sees nothing, so the filter proves nothing"
        )


def _forged_ack(world: World, who: str) -> str:
    token = _ack_token(world, "notification")
    other = _ack_token(world, "other_notification")
    if who == "tampered signature":
        return token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    if who == "other notification's token":
        # the id of one notification with the expiry and signature of another
        ident = world.ids["notification"]
        return ident + other[len(world.ids["other_notification"]) :]
    if who == "expired token":
        return _ack_token(world, "notification", hours=-1)
    if who == "malformed token":
        return "not-a-token"
    if who == "no credentials":
        return "-"
    assert who == "valid token", who
    return token


def test_the_matrix_covers_every_endpoint() -> None:
    """Every operation in the four OpenAPI documents has a rule, and every rule an operation."""
    apps = {
        "intake": intake_app(), "risk": risk_app(), "assistance": assistance_app(),
        "notify": notify_app(),
    }  # fmt: skip
    served = {
        (name, method.upper(), path)
        for name, app in apps.items()
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path not in OPS
    }
    assert served == set(RULES), {
        "missing from the matrix": sorted(served - set(RULES)),
        "not served": sorted(set(RULES) - served),
    }
    # the public ones say why
    assert all(r.why_public for r in RULES.values() if r.guard == "public")


async def test_rules_4_13_the_public_notice_through_the_api_shows_names_but_nothing_protected(
    world: World,
) -> None:
    """The notice a village posts: names and kind of risk; no ID, phone, account, health or
    income detail, even where the stored data holds them."""
    app, household = world.apps["risk"], "hh-notice"
    members = [
        Member(person_id_hash="n1", person_id_masked="530102***********7", name="李桂兰", age=52,
               chronic_illness=True),
        Member(person_id_hash="n2", person_id_masked="530102***********X",
               name="王强 13812345678 6222021234567890123", age=30),
    ]  # fmt: skip
    await _handle(app, risk_handlers.on_registry_record, RegistryRecordReceived(
        submission_id="r-n", village_code=VILLAGE, baseline_status="formerly_poor",
        per_capita_income=8123, members=members,
    ), household)  # fmt: skip
    await _handle(app, risk_handlers.on_declaration, DeclarationSubmitted(
        submission_id="s-n", declarant_name="李桂兰", declarant_id_masked="530102***********7",
        village_code=VILLAGE, risk_types=["illness", "disaster"], medical_spending=31234,
    ), household)  # fmt: skip
    http, village = world.http["risk"], bearer("village", TOWN)
    found = await http.get("/v1/cases", params={"household_id": household}, headers=village)
    [case] = found.json()
    url = f"/v1/cases/{case['case_id']}"
    assert (await http.get(f"{url}/public-notice", headers=village)).status_code == 409
    for action, extra in (
        ("start_home_verification", {}), ("complete_home_verification", {"signed_form": True}),
        ("post_public_notice", {}),
    ):  # fmt: skip
        step = await http.post(f"{url}/actions", json={"action": action, **extra}, headers=village)
        assert step.status_code == 200, step.text
    for who in ("village", "county"):
        notice = await http.get(f"{url}/public-notice", headers=bearer(who, home_of(who)))  # type: ignore[arg-type]
        assert notice.status_code == 200, notice.text
        text = notice.json()["text"]
        assert "李桂兰" in text and "王强" in text and "disaster" in text
        for secret in ("530102*", "***", "13812345678", "138****", "622202123456",
                       "illness", "chronic", "8123", "31234"):  # fmt: skip
            assert secret not in text, f"the notice shows {secret!r}:\n{text}"
    outsider = await http.get(f"{url}/public-notice", headers=bearer("village", ELSEWHERE))
    assert outsider.status_code == 403


# inputs the fuzzer (test_fuzz.py) once turned into 500s
NUL_QUERIES = [
    ("risk", "/v1/cases", {"status": "open\x00"}),
    ("risk", "/v1/cases", {"household_id": "\x00"}),
    ("risk", "/v1/ledger", {"status": "\x00"}),
    ("risk", "/v1/ledger", {"risk_type": "x\x00"}),
    ("risk", "/v1/households/hh%00", {}),
    ("assistance", "/v1/plans", {"household_id": "hh\x00"}),
    ("assistance", "/v1/measures", {"code": "\x00"}),
    ("notify", "/v1/notifications", {"status": "\x00"}),
    ("notify", "/v1/recipients/cadre:%00/notifications", {}),
]


@pytest.mark.parametrize(("service", "path", "params"), NUL_QUERIES)
async def test_a_nul_character_in_the_url_is_refused_not_a_server_error(
    world: World, service: str, path: str, params: dict[str, str]
) -> None:
    answer = await world.http[service].get(path, params=params, headers=bearer("admin", ""))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].endswith("must not contain a NUL character")


async def test_a_ledger_page_beyond_any_database_offset_is_refused(world: World) -> None:
    params = {"page": str(2**80), "page_size": "500"}
    answer = await world.http["risk"].get("/v1/ledger", params=params, headers=bearer("admin", ""))
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["page"]


async def test_a_nul_character_in_a_body_is_refused_naming_the_field(world: World) -> None:
    county = bearer("county", "530102")
    cadre = {"cadre_id": "c-nul", "name": "王\x00", "rank": "general", "township_code": TOWN}
    answer = await world.http["assistance"].post("/v1/cadres", json=cadre, headers=county)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [
        {"field": "name", "problem": "must not contain a NUL character"}
    ]
    action = {"action": "start_home_verification", "note": "\x00"}
    answer = await world.http["risk"].post(
        f"/v1/cases/{world.ids['case']}/actions", json=action, headers=bearer("village", TOWN)
    )
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "note"
    # intake's bodies too: a NUL it accepted would reach risk's text columns (the household
    # head's name) and fail there, in the consumer, after the 202
    body = declaration(declarant_name="王\x00五")
    answer = await world.http["intake"].post("/v1/declarations", json=body, headers=APP)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [
        {"field": "declarant_name", "problem": "must not contain a NUL character"}
    ]
    report = cadre_report()
    report["members"][0]["name"] = "\x00"
    answer = await world.http["intake"].post(
        "/v1/cadre-reports", json=report, headers=bearer("village", TOWN)
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "members.0.name"


def _oversized_posts(world: World) -> list[tuple[str, str, int, bool]]:
    """(service, path, limit, whether it reads a body) of every POST route but the feeds."""
    routes = []
    for service, app in world.apps.items():
        settings = app.state.runtime.settings
        for path, operations in app.openapi()["paths"].items():
            if "post" not in operations or path.startswith("/v1/feeds/"):
                continue  # a feed streams its body under a limit of its own (feed_max_bytes)
            limit = settings.registry_max_body_bytes if path == "/v1/registry" else 64 * 1024
            reads = "requestBody" in operations["post"]
            routes.append((service, re.sub(r"\{[^}]+\}", "x", path), limit, reads))
    return routes


async def test_an_oversized_body_is_refused_on_every_route_before_anything_reads_it(
    world: World,
) -> None:
    """A body one byte over the route's limit: 413. Declared, before the route runs (without
    credentials, which the route would answer 401); chunked without a length, as the read
    crosses the limit (with the app key, which the declaration route checks before reading), on
    every route that reads a body."""
    routes = _oversized_posts(world)
    assert {s for s, _, _, _ in routes} == {"intake", "risk", "assistance", "notify"}
    assert {s for s, _, _, reads in routes if reads} == {"intake", "risk", "assistance"}
    for service, path, limit, reads in routes:
        declared = await world.http[service].post(
            path, content=b" " * (limit + 1), headers={"Content-Type": "application/json"}
        )
        assert declared.status_code == 413, (service, path, declared.text)
        assert declared.json()["detail"] == f"body: {limit + 1} bytes exceeds the limit of {limit}"
        if not reads:
            continue  # nothing reads a body there

        async def chunks(size: int = limit + 1) -> AsyncIterator[bytes]:
            while size > 0:
                yield b" " * min(size, 16 * 1024)
                size -= 16 * 1024

        chunked = await world.http[service].post(
            path, content=chunks(), headers=APP | {"Content-Type": "application/json"}
        )
        assert chunked.status_code == 413, (service, path, chunked.text)
        assert chunked.json()["detail"] == f"body: exceeds the limit of {limit}"
    # at the limit it is read, and refused for what it is
    declaration_at_limit = await world.http["intake"].post(
        "/v1/declarations",
        content=b" " * (64 * 1024),
        headers=APP | {"Content-Type": "application/json"},
    )
    assert declaration_at_limit.status_code == 422, declaration_at_limit.text


async def test_retiring_a_cadre_while_naming_another_township_answers_with_the_stored_cadre(
    world: World,
) -> None:
    http, county = world.http["assistance"], bearer("county", "530102")
    cadre = {"cadre_id": "c-retire", "name": "干部", "rank": "general", "township_code": TOWN}
    assert (await http.post("/v1/cadres", json=cadre, headers=county)).status_code == 201
    moved = cadre | {"township_code": "530102002", "active": False}
    answer = await http.post("/v1/cadres", json=moved, headers=county)
    assert answer.status_code == 200, answer.text
    assert answer.json()["cadre_id"] == "c-retire" and answer.json()["active"] is False


async def test_a_county_cannot_take_over_a_cadre_of_another_jurisdiction(world: World) -> None:
    """Naming a township of one's own does not make another county's cadre one's own."""
    http = world.http["assistance"]
    takeover = {
        "cadre_id": "c-vil",
        "name": "干部",
        "rank": "village",
        "township_code": "110105001",
    }
    answer = await http.post("/v1/cadres", json=takeover, headers=bearer("county", ELSEWHERE))
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"].startswith("cadre_id:")
    listed = (await http.get("/v1/cadres", headers=bearer("county", "530102"))).json()
    assert any(c["cadre_id"] == "c-vil" and c["township_code"] == TOWN for c in listed)
