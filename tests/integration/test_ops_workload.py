"""Cadre workload gauges on PostgreSQL: county load against the "321" capacity (rules §6.9)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import services.assistance
from services.assistance import handlers
from services.assistance.config import AssistanceSettings
from services.assistance.models import metadata
from services.assistance.roster import register_cadre
from services.assistance.schemas import CadreIn
from services.assistance.workload_metrics import refresh_workload
from shared.clock import SystemClock
from shared.events import HouseholdIdentified, Member, new_event
from shared.migrations import upgrade
from shared.service import Runtime

pytestmark = [pytest.mark.postgres]
TOWN = "530197001"  # county 530197: no other test uses it
COUNTY = TOWN[:6]


@pytest.fixture
async def runtime(pg_url: str) -> AsyncIterator[Runtime]:
    settings = AssistanceSettings(database_url=pg_url)
    rt = Runtime(
        settings=settings, metadata=metadata, service_dir=Path(services.assistance.__file__).parent
    )
    await upgrade(settings.database_url, rt.service_dir)
    yield rt
    await rt.engine.dispose()


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"county": COUNTY, **labels})


async def test_rules_6_9_load_by_county_and_rank_without_per_cadre_labels(
    runtime: Runtime,
) -> None:
    settings = runtime.settings
    assert isinstance(settings, AssistanceSettings)
    async with runtime.uow() as uow:
        for cadre_id, rank in (("w-section", "section"), ("w-general", "general")):
            cadre = CadreIn(cadre_id=cadre_id, name="干部", rank=rank, township_code=TOWN)
            await register_cadre(uow, cadre=cadre, actor="test", settings=settings)
    for n in range(4):  # capacity is 2 + 1: the fourth household waits for a cadre
        event = new_event(
            HouseholdIdentified(
                case_id=f"w-case-{n}", village_code=TOWN + "001", kind="marginal",
                risk_types=["illness"], reasons=[],
                members=[Member(person_id_hash=f"w-p{n}", person_id_masked="5301***01", age=40)],
            ),
            household_id=f"w-hh-{n}", source="risk", correlation_id="c", clock=SystemClock(),
        )  # fmt: skip
        async with runtime.uow() as uow:
            await handlers.on_household_identified(uow=uow, event=event, settings=settings)

    await refresh_workload(runtime.uow, settings.capacities())

    assert gauge("holdline_cadre_households", rank="section") == 2
    assert gauge("holdline_cadre_households", rank="general") == 1
    assert gauge("holdline_cadre_load_ratio") == 1.0
    assert gauge("holdline_cadres_at_capacity") == 2
    assert gauge("holdline_households_without_cadre") == 1
    exported = {
        label
        for metric in REGISTRY.collect()
        if metric.name.startswith("holdline_cadre")
        for s in metric.samples
        for label in s.labels
    }
    assert exported <= {"county", "rank"}, "no per-cadre label"
