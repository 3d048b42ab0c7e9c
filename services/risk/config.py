"""Risk settings (env prefix HOLDLINE_RISK_)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from services.risk.evaluation import Policy
from services.risk.thresholds import ThresholdEntry, parse_entries
from services.risk.workdays import WorkCalendar, parse_calendar
from shared.settings import ServiceSettings

DEFAULT_THRESHOLDS = Path(__file__).parent / "thresholds.json"
DEFAULT_WORKDAYS = Path(__file__).parent / "workdays.json"


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
    rigid_expenditure_share: float = 0.40  # rules §2.3
    identification_days: int = 15  # rules §4.9: discovery to identification
    identification_day_basis: Literal["calendar", "working"] = "calendar"  # rules §4.9
    home_visit_working_days: int = 2  # rules §4.10: after a self-declaration
    public_notice_days: int = 5  # rules §4.4
    warning_fraction: float = 2 / 3  # rules §4.11: day 10 of 15
    green_channel_risk_types: tuple[str, ...] = ("disaster", "accident", "illness")  # rules §5.1
    green_channel_loss_threshold: float = 10_000  # rules §5.1, yuan
    green_channel_paperwork_working_days: int = 10  # rules §5.3
    elimination_stable_income_months: int = 6  # rules §7.1
    elimination_min_monitoring_months: int = 6  # rules §7.1
    deadline_scan_seconds: float = 30.0  # how often the deadline scheduler looks
    deadline_scan_batch: int = 500  # open cases examined per scheduler transaction

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
        return self

    def policy(self) -> Policy:
        """The evaluation's configurable values."""
        return Policy(
            rigid_expenditure_share=self.rigid_expenditure_share,
            green_channel_risk_types=frozenset(self.green_channel_risk_types),
            green_channel_loss_threshold=self.green_channel_loss_threshold,
        )
