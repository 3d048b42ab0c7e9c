"""The monitoring threshold (rules §2): per region prefix and year, with an effective date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

ThresholdMode = Literal["fixed", "dibao_multiple"]


@dataclass(frozen=True)
class ThresholdEntry:
    """One configured threshold: a fixed amount, or a multiple of the monthly 低保 standard."""

    region_prefix: str
    year: int
    effective_from: date
    mode: ThresholdMode = "fixed"
    monitoring_threshold_yuan: float | None = None
    dibao_monthly_yuan: float | None = None
    dibao_multiple: float = 2  # rules §2.2 default
    label: str = ""

    @property
    def annual_yuan(self) -> float:
        """Per-capita annual threshold; rules §2.2: multiple x monthly standard x 12."""
        if self.mode == "fixed":
            assert self.monitoring_threshold_yuan is not None
            return float(self.monitoring_threshold_yuan)
        assert self.dibao_monthly_yuan is not None
        return float(self.dibao_multiple * self.dibao_monthly_yuan * 12)

    @property
    def form(self) -> str:
        """How the amount was reached, for reasons and the read API."""
        if self.mode == "fixed":
            return "fixed"
        return f"{self.dibao_multiple:g} x {self.dibao_monthly_yuan:g} x 12"


class ThresholdConfigError(ValueError):
    """A threshold entry that cannot be used, naming the field."""


def parse_entry(raw: dict[str, Any]) -> ThresholdEntry:
    """One entry of the thresholds file, checked (rules §2.2: either form, never both missing)."""
    try:
        entry = ThresholdEntry(
            region_prefix=str(raw["region_prefix"]),
            year=int(raw["year"]),
            effective_from=date.fromisoformat(str(raw["effective_from"])),
            mode=raw.get("mode", "fixed"),
            monitoring_threshold_yuan=raw.get("monitoring_threshold_yuan"),
            dibao_monthly_yuan=raw.get("dibao_monthly_yuan"),
            dibao_multiple=float(raw.get("dibao_multiple", 2)),
            label=str(raw.get("label", "")),
        )
    except KeyError as exc:
        raise ThresholdConfigError(f"{exc.args[0]}: is required") from None
    if not entry.region_prefix.isdigit() and entry.region_prefix != "":
        raise ThresholdConfigError("region_prefix: must be digits (a region-code prefix)")
    if entry.mode not in ("fixed", "dibao_multiple"):
        raise ThresholdConfigError("mode: must be fixed or dibao_multiple")
    if entry.mode == "fixed" and (entry.monitoring_threshold_yuan or -1) < 0:
        raise ThresholdConfigError("monitoring_threshold_yuan: required and >= 0 when fixed")
    if entry.mode == "dibao_multiple" and (entry.dibao_monthly_yuan or -1) < 0:
        raise ThresholdConfigError("dibao_monthly_yuan: required and >= 0 for dibao_multiple")
    return entry


def parse_entries(raw: list[dict[str, Any]]) -> list[ThresholdEntry]:
    """All entries of the thresholds file."""
    return [parse_entry(item) for item in raw]


def threshold_for(
    entries: list[ThresholdEntry], region_code: str, on: date
) -> ThresholdEntry | None:
    """rules §2.1: the entry in force for a region on a date.

    The most specific region prefix wins (a county beats its province); among its entries the
    latest effective date not after `on`.
    """
    candidates = [
        e for e in entries if region_code.startswith(e.region_prefix) and e.effective_from <= on
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda e: (len(e.region_prefix), e.effective_from))
