"""Traffic through the four running services that gives every dashboard panel something to show.

Used by tests/integration/test_ops_prometheus.py and by snapshot.py (the README pictures):
declarations, a cadre roster, one case walked to identification (rules §4) and one urgent
message acknowledged through its signed link. Risk must run with `public_notice_days=0`
(HOLDLINE_RISK_PUBLIC_NOTICE_DAYS=0), or the walk stops at the public notice.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from services.demo import demo_declarations
from shared.auth import Role, mint_token
from shared.clock import SystemClock
from shared.settings import ServiceSettings

APP_KEY = {"X-App-Key": "holdline-dev-app-key"}  # the development app key
ACK_LINK = re.compile(r"/v1/acks/([A-Za-z0-9_.\-]+)")
# rules §4: every step of identification and the role that takes it
WALK: list[tuple[Role, str, dict[str, Any]]] = [
    ("village", "start_home_verification", {}),
    # the visit establishes the income the county approval compares with the threshold
    ("village", "complete_home_verification", {"signed_form": True, "per_capita_income": 5200}),
    ("county", "complete_data_comparison", {}),
    ("village", "post_public_notice", {}),
    ("village", "complete_village_appraisal", {}),
    ("township", "approve_township_review", {}),
    ("county", "approve_county", {}),
]


def official(role: Role = "admin", jurisdiction: str = "") -> dict[str, str]:
    """Bearer header of a development token (the configured JWT secret)."""
    token = mint_token(
        subject=f"ops-{role}", role=role, jurisdiction=jurisdiction,
        secret=ServiceSettings().jwt_secret.get_secret_value(), clock=SystemClock(),
    )  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


async def declare(http: httpx.AsyncClient, urls: dict[str, str], households: int, seed: int) -> int:
    """Post the demo declarations to intake; how many were accepted."""
    accepted = 0
    for body in demo_declarations(households, seed=seed):
        answer = await http.post(f"{urls['intake']}/v1/declarations", json=body, headers=APP_KEY)
        accepted += answer.status_code == 202
    return accepted


async def register_cadres(
    http: httpx.AsyncClient,
    urls: dict[str, str],
    webhook: str,
    ranks: tuple[str, ...] = ("general", "village"),
) -> None:
    """A cadre of each rank in each demo township (general: capacity 1 under "321")."""  # fmt: skip
    for town in ("530102001", "530102002", "530102003"):
        for n, rank in enumerate(ranks, start=1):
            body = {
                "cadre_id": f"ops-{town}-{n}", "name": f"干部{town[-1]}{n}", "rank": rank,
                "township_code": town, "contacts": {"webhook": webhook},
            }  # fmt: skip
            answer = await http.post(
                f"{urls['assistance']}/v1/cadres", json=body, headers=official()
            )
            answer.raise_for_status()


async def identify_one(http: httpx.AsyncClient, urls: dict[str, str]) -> str | None:
    """Walk the first open case that fits a monitoring kind to identification; its id."""
    listed = await http.get(
        f"{urls['risk']}/v1/cases", params={"status": "open"}, headers=official()
    )
    listed.raise_for_status()
    for case in listed.json():
        town = case["village_code"][:9]
        url = f"{urls['risk']}/v1/cases/{case['case_id']}/actions"
        for role, action, extra in WALK:
            answer = await http.post(
                url, json={"action": action, **extra}, headers=official(role, town)
            )
            if answer.status_code != 200:
                break  # e.g. 409 kind: fits no monitoring kind; try the next case
        else:
            return str(case["case_id"])
    return None


async def acknowledge_one(
    http: httpx.AsyncClient, urls: dict[str, str], timeout: float = 30
) -> str | None:
    """Acknowledge a delivered urgent message through its signed link; the notification id."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        notes = await http.get(
            f"{urls['notify']}/v1/notifications", params={"status": "delivered", "limit": 1000},
            headers=official(),
        )  # fmt: skip
        for note in notes.json() if notes.status_code == 200 else []:
            link = ACK_LINK.search(note["text"])
            if note["priority"] == "urgent" and note["acknowledged_at"] is None and link:
                answer = await http.post(f"{urls['notify']}/v1/acks/{link.group(1)}")
                answer.raise_for_status()
                return str(note["notification_id"])
        await asyncio.sleep(0.5)
    return None
