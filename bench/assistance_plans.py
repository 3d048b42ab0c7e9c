"""Bench: plans for a generated population of identified households (rules §6, §10.2).

Prints measures per household and the share of plans passing the consistency checker, for the
plan builder and, as a baseline measured in the same run, for the skeleton's one-measure-per-cause
table (services/assistance/rules.py). Usage: .venv/bin/python bench/assistance_plans.py [N] [SEED]
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Callable

from services.assistance.catalogue import load_catalogue
from services.assistance.checker import check_plan
from services.assistance.planner import PlannedMeasure, build_plan, labour_class
from services.assistance.rules import initial_measures
from shared.events import Member

CAT = load_catalogue()
SHOCKS = ["disaster", "accident", "business_failure", "unstable_employment", "housing_unsafe",
          "water_unsafe", "other"]  # fmt: skip


def _labour(rng: random.Random, age: int) -> str:
    if age < 16:
        return "none"
    if age < 60:
        return rng.choices(["full", "partial", "none"], [0.6, 0.2, 0.2])[0]
    if age < 70:
        return rng.choices(["full", "partial", "none"], [0.1, 0.4, 0.5])[0]
    return rng.choices(["partial", "none"], [0.1, 0.9])[0]


def _stage(rng: random.Random, age: int) -> str | None:
    if 3 <= age <= 5:
        return "preschool"
    if 6 <= age <= 11:
        return "primary"
    if 12 <= age <= 14:
        return None if rng.random() < 0.05 else "junior"  # a dropout now and then
    if 15 <= age <= 17:
        return rng.choices(["senior", "vocational", None], [0.6, 0.3, 0.1])[0]
    if 18 <= age <= 21 and rng.random() < 0.3:
        return rng.choice(["higher", "higher_vocational"])
    return None


def member(rng: random.Random, n: int, age: int) -> Member:
    """One generated person; shares loosely follow rules §10.1 (illness, disability, age)."""
    return Member(
        person_id_hash=f"p{n}", person_id_masked=f"***{n}", age=age,
        labour_capacity=_labour(rng, age),  # type: ignore[arg-type]
        chronic_illness=rng.random() < 0.3, serious_illness=rng.random() < 0.1,
        disability_grade=rng.randint(1, 4) if rng.random() < 0.15 else None,
        schooling_stage=_stage(rng, age),
    )  # fmt: skip


def household(rng: random.Random) -> tuple[list[str], list[Member]]:
    """A generated identified household: members, and risk types grounded in them plus shocks."""
    size = rng.choices([1, 2, 3, 4, 5, 6], [0.15, 0.3, 0.25, 0.18, 0.08, 0.04])[0]
    ages = [rng.randint(18, 85)] + [rng.choice([rng.randint(0, 20), rng.randint(20, 85)])
                                    for _ in range(size - 1)]  # fmt: skip
    members = [member(rng, i, age) for i, age in enumerate(ages)]
    risks: set[str] = set()
    if any(m.chronic_illness or m.serious_illness for m in members) and rng.random() < 0.7:
        risks.add("illness")
    if any(m.disability_grade for m in members) and rng.random() < 0.5:
        risks.add("disability")
    if any(m.schooling_stage for m in members) and rng.random() < 0.3:
        risks.add("schooling")
    if labour_class(members) == "none" and rng.random() < 0.5:
        risks.add("lack_of_labour")
    if not risks or rng.random() < 0.35:
        risks.add(rng.choice(SHOCKS))
    return sorted(risks), members


def baseline(risks: list[str], members: list[Member]) -> list[PlannedMeasure]:
    """The skeleton's plan: one household measure per cause, nothing else."""
    return [
        PlannedMeasure(code, CAT.measures[code].category, "skeleton table")
        for code in initial_measures(risks)
    ]


def run(
    name: str, population: list[tuple[list[str], list[Member]]],
    plan: Callable[[list[str], list[Member]], list[PlannedMeasure]],
) -> None:  # fmt: skip
    """Build and check every plan; print the figures."""
    started = time.perf_counter()
    plans = [plan(risks, members) for risks, members in population]
    built = time.perf_counter() - started
    failing: Counter[str] = Counter()
    passing = 0
    for (risks, members), measures in zip(population, plans, strict=True):
        problems = check_plan(catalogue=CAT, risk_types=risks, members=members, measures=measures)
        passing += not problems
        failing.update({v.rule for v in problems})
    total = sum(len(p) for p in plans)
    n = len(population)
    print(f"{name}:")
    print(f"  measures per household     {total / n:.2f}  ({total} measures)")
    print(f"  plans passing the checker  {passing / n:.2%}  ({passing}/{n})")
    print(f"  build time                 {built * 1e6 / n:.0f} µs per plan")
    if failing:
        print(
            "  most broken rules          "
            + ", ".join(f"{r} x{c}" for r, c in failing.most_common(3))
        )


def main() -> None:
    """Generate the population and run the builder and the baseline over it."""
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20220731
    rng = random.Random(seed)
    population = [household(rng) for _ in range(size)]
    people = sum(len(m) for _, m in population)
    classes = Counter(labour_class(m) for _, m in population)
    print(f"catalogue {CAT.version}; {size} identified households, seed {seed}")
    print(f"  people per household       {people / size:.2f}")
    print(f"  risk types per household   {sum(len(r) for r, _ in population) / size:.2f}")
    print(
        "  labour classes             " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items()))
    )
    print("  reference (rules §10.2)    2.42 measures per household")

    def builder(risks: list[str], members: list[Member]) -> list[PlannedMeasure]:
        return build_plan(catalogue=CAT, risk_types=risks, members=members)

    run("plan builder (rules §6)", population, builder)
    run("baseline: skeleton one-measure-per-cause table", population, baseline)


if __name__ == "__main__":
    main()
