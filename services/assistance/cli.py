"""`holdline cadres`: bulk import of the cadre roster (rules §6.8-6.9)."""

from __future__ import annotations

import asyncio
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from services.assistance.config import AssistanceSettings
from services.assistance.models import metadata
from services.assistance.roster import register_cadre
from services.assistance.schemas import CHANNELS, CadreIn
from shared.clock import Clock, SystemClock
from shared.infra import check_database_url
from shared.migrations import upgrade
from shared.service import Runtime, validation_problem

cadres_app = typer.Typer(help="The cadre roster: bulk import.")
console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error line is never broken inside a path
SERVICE_DIR = Path(__file__).parent


class RosterFileError(Exception):
    """The file cannot be imported; every problem is listed with its line and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _csv_row(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row: villages separated by `;`, one column per contact channel."""
    villages = (row.get("village_codes") or "").replace(";", " ").split()
    contacts = {c: row[c].strip() for c in CHANNELS if (row.get(c) or "").strip()}
    record: dict[str, Any] = {
        k: v for k, v in row.items() if k not in (*CHANNELS, "village_codes") and k
    }
    active = str(record.pop("active", "") or "").strip().lower()
    if active:
        record["active"] = active not in ("0", "false", "no")
    return record | {"village_codes": villages, "contacts": contacts}


def read_roster(path: Path) -> list[CadreIn]:
    """Parse a roster file (.csv with a header, or .json: a list of cadres); all or nothing."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RosterFileError([f"file: not UTF-8 text (byte {exc.start}: {exc.reason})"]) from None
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = f"line {exc.lineno}: not JSON ({exc.msg}, column {exc.colno})"
            raise RosterFileError([problem]) from None
        if not isinstance(raw, list):
            raise RosterFileError(["file: a JSON roster is a list of cadres"])
        records = [(i + 1, r) for i, r in enumerate(raw)]
    else:
        records = [(i + 2, _csv_row(r)) for i, r in enumerate(csv.DictReader(text.splitlines()))]
    if not records:
        raise RosterFileError(
            ["file: no cadres in it (a CSV roster is a header line and a line a cadre)"]
        )
    problems: list[str] = []
    roster: list[CadreIn] = []
    seen: set[str] = set()
    for line, record in records:
        try:
            cadre = CadreIn.model_validate(record)
        except ValidationError as exc:
            for p in validation_problem(exc.errors())["errors"]:
                problems.append(f"line {line}: {p['field']}: {p['problem']}")
            continue
        if cadre.cadre_id in seen:
            problems.append(f"line {line}: cadre_id: {cadre.cadre_id} appears twice")
        seen.add(cadre.cadre_id)
        roster.append(cadre)
    if problems:
        raise RosterFileError(problems)
    return roster


async def load_roster(
    path: Path, *, settings: AssistanceSettings, clock: Clock | None = None, actor: str = "import"
) -> Counter[str]:
    """Import a roster file in one transaction; returns how many were created/updated/unchanged."""
    return await apply_roster(read_roster(path), settings=settings, clock=clock, actor=actor)


async def apply_roster(
    roster: list[CadreIn],
    *,
    settings: AssistanceSettings,
    clock: Clock | None = None,
    actor: str = "import",
) -> Counter[str]:
    """Register every cadre of a parsed roster in one transaction."""
    await upgrade(settings.database_url, SERVICE_DIR)
    runtime = Runtime(
        settings=settings, metadata=metadata, service_dir=SERVICE_DIR, clock=clock or SystemClock()
    )
    outcome: Counter[str] = Counter()
    try:
        async with runtime.uow() as uow:
            for cadre in roster:
                outcome[await register_cadre(uow, cadre=cadre, actor=actor, settings=settings)] += 1
    finally:
        await runtime.engine.dispose()
    return outcome


@cadres_app.command("load")
def load(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".csv or .json")],
) -> None:
    """Import cadres (rank, township, villages, contacts); re-importing the same file is a no-op.

    The running assistance service publishes the resulting CadreRegistered/CadreAssigned events.
    """
    try:
        roster = read_roster(file)
    except RosterFileError as exc:
        for problem in exc.problems:
            err.print(f"[red]{problem}[/red]")
        err.print("nothing was imported")
        raise typer.Exit(2) from None
    settings = AssistanceSettings()  # a bad HOLDLINE_* variable: one line (services/cli.py)
    check_database_url(settings)
    outcome = asyncio.run(apply_roster(roster, settings=settings))
    console.print(
        f"cadres: {outcome['created']} created, {outcome['updated']} updated, "
        f"{outcome['unchanged']} unchanged"
    )
