"""Responsible-cadre assignment (帮扶责任人, rules §6.8-6.9) as pure, deterministic functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

RANKS = ("county_leader", "section", "general", "township", "village")


@dataclass(frozen=True)
class CadreLoad:
    """A cadre as assignment sees them: rank, where they work, how many households they hold."""

    cadre_id: str
    rank: str
    township_code: str
    village_codes: tuple[str, ...] = ()
    load: int = 0


def township_of(village_code: str) -> str:
    """rules §9.4: the township is the first 9 digits of a 12-digit village code."""
    return village_code[:9]


def has_room(cadre: CadreLoad, capacities: Mapping[str, int | None]) -> bool:
    """rules §6.9: within the "321" capacity of the cadre's rank (None: no limit)."""
    cap = capacities.get(cadre.rank)
    return cap is None or cadre.load < cap


def choose_cadre(
    *,
    cadres: Sequence[CadreLoad],
    village_code: str,
    capacities: Mapping[str, int | None],
    exclude: frozenset[str] = frozenset(),
) -> CadreLoad | None:
    """rules §6.8-6.9: a cadre of the same township with room, capped ranks first, least loaded.

    Township and village cadres (no cap) take the rest; among them one who covers the
    household's village is preferred. Ties break on rank, then cadre id, so the choice is
    the same on every replica and every replay.
    """
    township = township_of(village_code)
    fits = [
        c
        for c in cadres
        if c.township_code == township and c.cadre_id not in exclude and has_room(c, capacities)
    ]
    if not fits:
        return None

    def key(c: CadreLoad) -> tuple[int, int, int, int, str]:
        uncapped = capacities.get(c.rank) is None
        local = village_code in c.village_codes
        rank = RANKS.index(c.rank) if c.rank in RANKS else len(RANKS)
        return (uncapped, uncapped and not local, c.load, rank, c.cadre_id)

    return min(fits, key=key)


def assign_all(
    *,
    households: Sequence[tuple[str, str]],
    cadres: Sequence[CadreLoad],
    capacities: Mapping[str, int | None],
    exclude: frozenset[str] = frozenset(),
) -> dict[str, str | None]:
    """Assign (household_id, village_code) pairs in household order; loads grow as we go."""
    pool = {c.cadre_id: c for c in cadres}
    chosen: dict[str, str | None] = {}
    for household_id, village_code in sorted(households):
        cadre = choose_cadre(
            cadres=list(pool.values()), village_code=village_code, capacities=capacities,
            exclude=exclude,
        )  # fmt: skip
        chosen[household_id] = cadre.cadre_id if cadre else None
        if cadre is not None:
            pool[cadre.cadre_id] = replace(cadre, load=cadre.load + 1)
    return chosen
