"""Intake's and assistance's operational settings are checked at start as risk's and notify's
are: a size, limit or period of 0 or below (a commit of no rows, a rate limit refusing every
declaration, a cadre who may hold no household, a job polling in a busy loop) stops the service
with one line naming the variable."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from services.assistance.config import AssistanceSettings
from services.intake.config import IntakeSettings
from tests.support import refused_setting

BAD: list[tuple[type[BaseSettings], str, str, str]] = [
    (IntakeSettings, "FEED_BATCH_ROWS", "0", "greater than or equal to 1"),
    (IntakeSettings, "FEED_SHARDS", "-48", "greater than or equal to 1"),
    (IntakeSettings, "RATE_PER_PHONE", "0", "greater than or equal to 1"),
    (IntakeSettings, "RATE_CONTACT_PER_OFFICIAL", "-1", "greater than or equal to 1"),
    (IntakeSettings, "COMMIT_CONCURRENCY", "0", "greater than or equal to 1"),
    (IntakeSettings, "RATE_WINDOW_SECONDS", "0", "greater than 0"),
    (IntakeSettings, "FEED_RESUME_AFTER_SECONDS", "nan", "finite number"),
    (AssistanceSettings, "CADRE_CAPACITY_GENERAL", "0", "greater than or equal to 1"),
    (AssistanceSettings, "CADRE_CAPACITY_TOWNSHIP_VILLAGE", "0", "greater than or equal to 1"),
    (AssistanceSettings, "VISIT_INTERVAL_DAYS", "0", "greater than or equal to 1"),  # rules §6.10
    (AssistanceSettings, "VISIT_CHECK_SECONDS", "-300", "greater than 0"),
    (AssistanceSettings, "MUST_VISIT_LOW_INCOME_YUAN", "-6000", "greater than or equal to 0"),
]


@pytest.mark.parametrize(("settings", "name", "value", "problem"), BAD)
def test_a_setting_the_service_cannot_use_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
    settings: type[BaseSettings],
    name: str,
    value: str,
    problem: str,
) -> None:
    prefix = "HOLDLINE_INTAKE_" if settings is IntakeSettings else "HOLDLINE_ASSISTANCE_"
    variable = prefix + name
    line = refused_setting(settings, variable, value, monkeypatch)
    assert line.startswith(f"{variable}: ") and problem in line, line


def test_the_defaults_are_accepted_with_no_township_limit() -> None:
    IntakeSettings()
    assert AssistanceSettings().cadre_capacity_township_village is None
