"""`holdline cadres`: bulk import of the cadre roster (rules §6.8-6.9)."""

from __future__ import annotations

import asyncio
import csv
import io
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
from shared.migrations import upgrade
from shared.service import Runtime, validation_problem
from shared.settings_errors import check_database_url

cadres_app = typer.Typer(help="The cadre roster: bulk import.")
console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error line is never broken inside a path
SERVICE_DIR = Path(__file__).parent


class RosterFileError(Exception):
    """The file cannot be imported; every problem is listed with its line and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# the words `active` may be, in a CSV cell or a JSON string, whatever their case (JSON may also
# say true/false, 1/0); an empty CSV cell leaves the cadre active
TRUE_WORDS = ("true", "t", "yes", "y", "on", "1")
FALSE_WORDS = ("false", "f", "no", "n", "off", "0")
ACTIVE_WORDS = dict.fromkeys(TRUE_WORDS, True) | dict.fromkeys(FALSE_WORDS, False)


def _csv_row(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row: villages separated by `;`, one column per contact channel."""
    villages = (row.get("village_codes") or "").replace(";", " ").split()
    contacts = {c: row[c].strip() for c in CHANNELS if (row.get(c) or "").strip()}
    record: dict[str, Any] = {k: v for k, v in row.items() if k not in (*CHANNELS, "village_codes")}
    if not (record.get("active") or "").strip():
        record.pop("active", None)  # not given: active
    return record | {"village_codes": villages, "contacts": contacts}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _csv_records(text: str) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """(line, record) for every CSV row, and the problems of the file's shape: a column twice in
    the header, a row with more or fewer values than the header has names."""
    reader = csv.reader(io.StringIO(text))
    records: list[tuple[int, dict[str, Any]]] = []
    problems: list[str] = []
    header: list[str] | None = None
    header_line = 0
    try:
        while True:
            line = reader.line_num + 1  # a quoted value may span lines: where the row starts
            row = next(reader, None)
            if row is None:
                break
            if not row:  # a blank line
                continue
            if header is None:
                header, header_line = [name.strip() for name in row], line
                twice = sorted({name for name in header if name and header.count(name) > 1})
                if twice:  # which value would be the column's?
                    return [], [
                        f"line {line}: {name}: appears twice in the header" for name in twice
                    ]
                continue
            if len(row) != len(header):
                values, names = _plural(len(row), "value"), len(header)
                problems.append(
                    f"line {line}: has {values}; the header (line {header_line}) has {names}"
                )
                continue
            if any(value.strip() for name, value in zip(header, row, strict=True) if not name):
                problems.append(f"line {line}: a value in a column the header gives no name")
                continue
            cells = {name: value for name, value in zip(header, row, strict=True) if name}
            records.append((line, _csv_row(cells)))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not CSV ({exc})")
    return records, problems


def _active_problem(record: Any) -> str | None:
    """Turn a word in `active` into true/false; the problem when it is not one of ACTIVE_WORDS."""
    if not isinstance(record, dict) or not isinstance(record.get("active"), str):
        return None
    word = record["active"].strip().lower()
    if word in ACTIVE_WORDS:
        record["active"] = ACTIVE_WORDS[word]
        return None
    given = record.pop("active")
    active, inactive = "/".join(TRUE_WORDS), "/".join(FALSE_WORDS)
    return f"active: {given!r} is not one of {active} (active) or {inactive} (inactive)"


def read_roster(path: Path) -> list[CadreIn]:
    """Parse a roster file (.csv with a header, or .json: a list of cadres); all or nothing."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RosterFileError([f"file: not UTF-8 text (byte {exc.start}: {exc.reason})"]) from None
    problems: list[str] = []
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
        records, problems = _csv_records(text)
    if not records and not problems:
        raise RosterFileError(
            ["file: no cadres in it (a CSV roster is a header line and a line a cadre)"]
        )
    roster: list[CadreIn] = []
    seen: set[str] = set()
    for line, record in records:
        bad_active = _active_problem(record)
        if bad_active:
            problems.append(f"line {line}: {bad_active}")
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
