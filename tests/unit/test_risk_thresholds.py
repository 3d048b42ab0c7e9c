"""rules §2.1-§2.2: monitoring thresholds per region and year, fixed or a multiple of 低保."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from services.risk.config import DEFAULT_THRESHOLDS
from services.risk.thresholds import ThresholdConfigError, parse_entries, parse_entry, threshold_for

ENTRIES = parse_entries(json.loads(Path(DEFAULT_THRESHOLDS).read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    ("region_code", "on", "annual", "form"),
    [
        ("210102001001", date(2022, 6, 1), 7260, "fixed"),  # Liaoning 2022
        ("520102001001", date(2023, 6, 1), 7300, "fixed"),  # Guizhou 2023
        ("530102001001", date(2025, 6, 1), 8700, "fixed"),  # Yunnan 2025
        ("350526101001", date(2024, 6, 1), 19560, "2 x 815 x 12"),  # Dehua = 2 x 815 x 12
    ],
)
def test_rules_2_2_reference_values(region_code: str, on: date, annual: float, form: str) -> None:
    """rules §2.2 reference table: each region's value in force."""
    entry = threshold_for(ENTRIES, region_code, on)
    assert entry is not None
    assert entry.annual_yuan == annual
    assert entry.form == form


def test_rules_2_1_not_in_force_before_its_effective_date() -> None:
    assert threshold_for(ENTRIES, "530102001001", date(2024, 12, 31)) is None


def test_rules_2_1_county_entry_beats_province_and_latest_effective_date_wins() -> None:
    entries = parse_entries(
        [
            {"region_prefix": "35", "year": 2024, "effective_from": "2024-01-01",
             "monitoring_threshold_yuan": 7000},
            {"region_prefix": "350526", "year": 2023, "effective_from": "2023-01-01",
             "mode": "dibao_multiple", "dibao_monthly_yuan": 700},
            {"region_prefix": "350526", "year": 2024, "effective_from": "2024-07-01",
             "mode": "dibao_multiple", "dibao_monthly_yuan": 815},
        ]
    )  # fmt: skip
    assert threshold_for(entries, "350526101001", date(2024, 3, 1)).annual_yuan == 16800  # type: ignore[union-attr]
    assert threshold_for(entries, "350526101001", date(2024, 8, 1)).annual_yuan == 19560  # type: ignore[union-attr]
    assert threshold_for(entries, "350100101001", date(2024, 8, 1)).annual_yuan == 7000  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"year": 2024, "effective_from": "2024-01-01"}, "region_prefix"),
        ({"region_prefix": "53", "year": 2024, "effective_from": "2024-01-01"},
         "monitoring_threshold_yuan"),
        ({"region_prefix": "53", "year": 2024, "effective_from": "2024-01-01",
          "mode": "dibao_multiple"}, "dibao_monthly_yuan"),
        ({"region_prefix": "5x", "year": 2024, "effective_from": "2024-01-01",
          "monitoring_threshold_yuan": 1}, "region_prefix"),
    ],
)  # fmt: skip
def test_rules_2_2_bad_entries_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(ThresholdConfigError, match=rf"^{field}:"):
        parse_entry(raw)
