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


_MISSING = object()


def _value(raw: dict[str, Any], name: str, convert: Any, default: Any = _MISSING) -> Any:
    """One field of an entry, converted; an error names the field and what it holds."""
    value = raw.get(name, default)
    if value is _MISSING:
        raise ThresholdConfigError(f"{name}: is required")
    if value is None:
        return None
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise ThresholdConfigError(f"{name}: {value!r} is not a valid value") from None


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    return float(value)


def parse_entry(raw: dict[str, Any]) -> ThresholdEntry:
    """One entry of the thresholds file, checked (rules §2.2: either form, never both missing)."""
    entry = ThresholdEntry(
        region_prefix=_value(raw, "region_prefix", str),
        year=_value(raw, "year", int),
        effective_from=_value(raw, "effective_from", lambda v: date.fromisoformat(str(v))),
        mode=raw.get("mode", "fixed"),
        monitoring_threshold_yuan=_value(raw, "monitoring_threshold_yuan", _amount, None),
        dibao_monthly_yuan=_value(raw, "dibao_monthly_yuan", _amount, None),
        dibao_multiple=_value(raw, "dibao_multiple", _amount, 2),
        label=str(raw.get("label", "")),
    )
    if not entry.region_prefix.isdigit() and entry.region_prefix != "":
        raise ThresholdConfigError("region_prefix: must be digits (a region-code prefix)")
    if entry.mode not in ("fixed", "dibao_multiple"):
        raise ThresholdConfigError("mode: must be fixed or dibao_multiple")
    if entry.mode == "fixed" and (entry.monitoring_threshold_yuan or -1) < 0:
        raise ThresholdConfigError("monitoring_threshold_yuan: required and >= 0 when fixed")
    if entry.mode == "dibao_multiple" and (entry.dibao_monthly_yuan or -1) < 0:
        raise ThresholdConfigError("dibao_monthly_yuan: required and >= 0 for dibao_multiple")
    return entry


def parse_entries(raw: Any) -> list[ThresholdEntry]:
    """All entries of the thresholds file (a list); an error names the entry by position."""
    if not isinstance(raw, list):
        raise ThresholdConfigError("thresholds file: must be a list of entries")
    entries = []
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ThresholdConfigError(f"entry {n}: must be an object")
        try:
            entries.append(parse_entry(item))
        except (TypeError, ValueError) as exc:  # a ThresholdConfigError already names its field
            raise ThresholdConfigError(f"entry {n}: {exc}") from None
    return entries


def behind(entries: list[ThresholdEntry], year: int) -> list[ThresholdEntry]:
    """Per region prefix, its latest entry when that is of an earlier year than `year`: the
    threshold is indexed yearly (rules §2.1), so those regions still use last year's."""
    latest: dict[str, ThresholdEntry] = {}
    for entry in entries:
        kept = latest.get(entry.region_prefix)
        if kept is None or (entry.year, entry.effective_from) > (kept.year, kept.effective_from):
            latest[entry.region_prefix] = entry
    return sorted((e for e in latest.values() if e.year < year), key=lambda e: e.region_prefix)


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
