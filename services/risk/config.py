"""Risk settings (env prefix HOLDLINE_RISK_)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.risk.evaluation import Policy
from services.risk.thresholds import ThresholdEntry, parse_entries
from services.risk.workdays import WorkCalendar, parse_calendar
from shared.events import RiskType
from shared.settings import Seconds, ServiceSettings

DEFAULT_THRESHOLDS = Path(__file__).parent / "thresholds.json"
DEFAULT_WORKDAYS = Path(__file__).parent / "workdays.json"
Days = Annotated[int, Field(ge=1)]  # a period the rules count in (working) days
Share = Annotated[float, Field(gt=0, lt=1)]  # a fraction of income or of a period
Amount = Annotated[float, Field(ge=0, le=10**12, allow_inf_nan=False)]  # yuan (rules §9.5)


def _read_json(path: Path, field: str) -> object:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{field}: cannot read {path}: {exc}") from None


class RiskSettings(ServiceSettings):
    """Every risk-engine knob, with the documented defaults of docs/rules.md."""

    model_config = SettingsConfigDict(env_prefix="HOLDLINE_RISK_", extra="ignore")

    service_name: str = "risk"
    port: int = 8002
    # rules §2: per-region, per-year thresholds with effective dates (a JSON file)
    thresholds_file: Path = DEFAULT_THRESHOLDS
    # rules §4.9-§4.10, §5.3: dates and working days are local (`timezone`), not UTC's
    workdays_file: Path = DEFAULT_WORKDAYS  # the official holidays and make-up working days
    # bounds: a value the rules cannot mean stops the service at start, naming its variable
    rigid_expenditure_share: Share = 0.40  # rules §2.3
    identification_days: Days = 15  # rules §4.9: discovery to identification
    identification_day_basis: Literal["calendar", "working"] = "calendar"  # rules §4.9
    home_visit_working_days: Days = 2  # rules §4.10: after a self-declaration
    # rules §4.4; 0 (the notice ends at once) only outside production, for the tools that
    # walk cases to identification (deploy/grafana/snapshot.py, tests)
    public_notice_days: Annotated[int, Field(ge=0)] = 5
    warning_fraction: Share = 2 / 3  # rules §4.11: day 10 of 15
    # rules §5.1: the project's risk types only (a misspelt one would silently never match)
    green_channel_risk_types: Annotated[tuple[RiskType, ...], Field(min_length=1)] = (
        "disaster",
        "accident",
        "illness",
    )
    green_channel_loss_threshold: Amount = 10_000  # rules §5.1, yuan
    green_channel_paperwork_working_days: Days = 10  # rules §5.3
    # rules §7.1: income stably above the line takes some time; the least time monitored may
    # be waived (a measure carried out is still required)
    elimination_stable_income_months: Annotated[int, Field(ge=1)] = 6
    elimination_min_monitoring_months: Annotated[int, Field(ge=0)] = 6
    deadline_scan_seconds: Seconds = 30.0
    deadline_scan_batch: Annotated[int, Field(ge=1)] = 500  # open cases per transaction

    @cached_property
    def thresholds(self) -> list[ThresholdEntry]:
        """The threshold entries of `thresholds_file` (rules §2)."""
        return parse_entries(_read_json(self.thresholds_file, "thresholds_file"))

    @cached_property
    def work_calendar(self) -> WorkCalendar:
        """The local zone and the working-day calendar of `workdays_file`."""
        return parse_calendar(_read_json(self.workdays_file, "workdays_file"), self.timezone)

    @model_validator(mode="after")
    def _files_are_usable(self) -> RiskSettings:
        """A threshold or calendar file that cannot be used stops the service at start, with
        the file and the field named, not at the first signal."""
        _ = self.thresholds, self.work_calendar
        if self.environment == "production" and self.public_notice_days < 1:
            raise ValueError("public_notice_days must be at least 1 in production (rules §4.4)")
        return self

    def policy(self) -> Policy:
        """The evaluation's configurable values."""
        return Policy(
            rigid_expenditure_share=self.rigid_expenditure_share,
            green_channel_risk_types=frozenset(self.green_channel_risk_types),
            green_channel_loss_threshold=self.green_channel_loss_threshold,
        )
