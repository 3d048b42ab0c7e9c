"""Risk settings (env prefix HOLDLINE_RISK_)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic_settings import SettingsConfigDict

from services.risk.evaluation import Policy
from services.risk.thresholds import ThresholdEntry, parse_entries
from shared.settings import ServiceSettings

DEFAULT_THRESHOLDS = Path(__file__).parent / "thresholds.json"


class RiskSettings(ServiceSettings):
    """Every risk-engine knob, with the documented defaults of docs/rules.md."""

    model_config = SettingsConfigDict(env_prefix="HOLDLINE_RISK_", extra="ignore")

    service_name: str = "risk"
    port: int = 8002
    # rules §2: per-region, per-year thresholds with effective dates (a JSON file)
    thresholds_file: Path = DEFAULT_THRESHOLDS
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
        return parse_entries(json.loads(Path(self.thresholds_file).read_text(encoding="utf-8")))

    def policy(self) -> Policy:
        """The evaluation's configurable values."""
        return Policy(
            rigid_expenditure_share=self.rigid_expenditure_share,
            green_channel_risk_types=frozenset(self.green_channel_risk_types),
            green_channel_loss_threshold=self.green_channel_loss_threshold,
        )
