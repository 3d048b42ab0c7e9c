"""Plan rules as pure functions (no I/O). Sections cite docs/rules.md."""

from __future__ import annotations

# rules §6, cause -> a first measure; the full catalogue and plan builder replace this table
FIRST_MEASURE = {
    "illness": "medical_aid",
    "disability": "disability_subsidy",
    "schooling": "education_aid",
    "disaster": "temporary_assistance",
    "accident": "temporary_assistance",
    "business_failure": "employment_placement",
    "unstable_employment": "employment_placement",
    "lack_of_labour": "minimum_living_allowance",
    "housing_unsafe": "dangerous_house_renovation",
    "water_unsafe": "drinking_water_project",
    "other": "temporary_assistance",
}


def initial_measures(risk_types: list[str]) -> list[str]:
    """One measure per risk type, each at most once ("fill exactly the gap")."""
    return sorted({FIRST_MEASURE.get(r, "temporary_assistance") for r in risk_types})
