"""The measure catalogue (rules §6): a versioned data file, parsed into immutable specs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

Category = Literal["development", "social_security", "guarantee_fix", "emergency"]
CATEGORIES: tuple[Category, ...] = ("development", "social_security", "guarantee_fix", "emergency")
DEFAULT_PATH = Path(__file__).with_name("catalogue.json")


@dataclass(frozen=True)
class MeasureSpec:
    """One kind of measure: who may get it, which risks it answers, who is responsible."""

    code: str
    name: str
    category: Category
    scope: Literal["household", "person"]
    risk_types: frozenset[str]
    agency: str
    outlives_elimination: bool
    outlives_until: str | None = None
    labour: frozenset[str] | None = None  # person labour capacities allowed
    household_labour: frozenset[str] | None = None  # household labour classes allowed
    age_min: int | None = None
    age_max: int | None = None
    schooling_stages: frozenset[str] | None = None
    requires: str | None = None  # a member condition: "disability" or "serious_illness"
    note: str = ""


@dataclass(frozen=True)
class Catalogue:
    """All measure specs of one catalogue version."""

    version: str
    effective_from: str
    measures: dict[str, MeasureSpec]
    no_labour_substitutes: dict[str, frozenset[str]] = field(default_factory=dict)
    basic_living: frozenset[str] = frozenset()

    def addressing(self, risk_type: str) -> list[str]:
        """Codes of the measures that answer `risk_type` (rules §6 table), catalogue order."""
        return [c for c, m in self.measures.items() if risk_type in m.risk_types]


class CatalogueError(ValueError):
    """The catalogue file breaks its own schema."""


def _opt_set(raw: dict[str, Any], key: str) -> frozenset[str] | None:
    value = raw.get(key)
    return frozenset(value) if value is not None else None


def parse_catalogue(raw: dict[str, Any]) -> Catalogue:
    """Validate and freeze a catalogue document."""
    if not raw.get("version"):
        raise CatalogueError("version: missing")
    measures: dict[str, MeasureSpec] = {}
    for item in raw.get("measures", []):
        code = item.get("code", "")
        if item.get("category") not in CATEGORIES:
            raise CatalogueError(f"measures.{code}.category: {item.get('category')!r} unknown")
        if item.get("scope") not in ("household", "person"):
            raise CatalogueError(f"measures.{code}.scope: {item.get('scope')!r} unknown")
        if code in measures:
            raise CatalogueError(f"measures.{code}: listed twice")
        measures[code] = MeasureSpec(
            code=code,
            name=item.get("name", code),
            category=item["category"],
            scope=item["scope"],
            risk_types=frozenset(item.get("risk_types", [])),
            agency=item["agency"],
            outlives_elimination=bool(item.get("outlives_elimination", False)),
            outlives_until=item.get("outlives_until"),
            labour=_opt_set(item, "labour"),
            household_labour=_opt_set(item, "household_labour"),
            age_min=item.get("age_min"),
            age_max=item.get("age_max"),
            schooling_stages=_opt_set(item, "schooling_stages"),
            requires=item.get("requires"),
            note=item.get("note", ""),
        )
    substitutes = {
        risk: frozenset(codes)
        for risk, codes in raw.get("no_labour_substitutes", {}).items()
        if isinstance(codes, list)
    }
    for risk, codes in substitutes.items():
        unknown = codes - measures.keys()
        if unknown:
            raise CatalogueError(f"no_labour_substitutes.{risk}: unknown {sorted(unknown)}")
    basic_living = frozenset(raw.get("basic_living", {}).get("measures", []))
    if basic_living - measures.keys():
        raise CatalogueError(f"basic_living: unknown {sorted(basic_living - measures.keys())}")
    return Catalogue(
        basic_living=basic_living,
        version=str(raw["version"]),
        effective_from=str(raw.get("effective_from", "")),
        measures=measures,
        no_labour_substitutes=substitutes,
    )


@lru_cache(maxsize=4)
def load_catalogue(path: str | None = None) -> Catalogue:
    """The catalogue at `path` (the bundled file when empty), parsed once per process."""
    source = Path(path) if path else DEFAULT_PATH
    return parse_catalogue(json.loads(source.read_text(encoding="utf-8")))


def catalogue_document(path: str | None = None) -> dict[str, Any]:
    """The raw catalogue document, for the read API."""
    source = Path(path) if path else DEFAULT_PATH
    document: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    return document
