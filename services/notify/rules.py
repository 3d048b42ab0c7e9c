"""Routing and messages as pure functions (no I/O)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from shared.events import PlanCreated


def plan_created_message(*, household_id: str, plan: PlanCreated) -> str:
    """zh-CN text short enough for SMS: which household, what to do, by when."""
    measures = "、".join(plan.measures)
    text = f"【防返贫监测】农户{household_id}已建立帮扶计划（{measures}）"
    if plan.case_deadline is None:
        return text + "，请尽快落实。"
    return text + f"，请于{plan.case_deadline.date().isoformat()}前完成认定。"


def plan_recipient(plan: PlanCreated) -> str:
    """The village cadres of the household's village receive its plan."""
    return f"village:{plan.village_code}"


def next_attempt_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter after failed attempt number `attempt` (1-based)."""
    return timedelta(seconds=rng.uniform(0, min(cap, base * 2 ** (attempt - 1))))


def is_due(next_attempt_at: datetime, now: datetime) -> bool:
    """A pending notification is due when its next attempt time has come."""
    return next_attempt_at <= now
