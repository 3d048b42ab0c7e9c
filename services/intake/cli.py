"""`holdline feed load`: stream a department file to intake with a progress bar."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from services.intake.feeds import SCHEMAS

feed_app = typer.Typer(help="Department data-comparison feeds (rules §8).", no_args_is_help=True)
console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error line is never broken inside a path
MEDIA = {".ndjson": "application/x-ndjson", ".jsonl": "application/x-ndjson", ".csv": "text/csv"}
CHUNK = 256 * 1024
MAX_TIMEOUT = 24 * 3600.0


@feed_app.callback()
def _group() -> None:
    """Department data-comparison feeds (rules §8)."""


def _chunks(path: Path, progress: Progress, task: Any, started: float) -> Iterator[bytes]:
    lines = 0  # newlines sent so far: header and blank lines too, as intake counts lines
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            lines += chunk.count(b"\n")
            rate = lines / max(time.perf_counter() - started, 1e-6)
            progress.update(task, advance=len(chunk), lines=lines, rate=rate)
            yield chunk


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK * 4):
            digest.update(chunk)
    return digest.hexdigest()


REJECTED_ROWS = 3  # exit status: the batch was received, some of its rows were rejected


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(message, style="red", markup=False, highlight=False)
    return typer.Exit(code)


def _url_problem(url: str) -> str | None:
    """Why `url` cannot be intake's base URL, or None."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"{url!r} is not a URL ({exc})"
    if parsed.scheme not in ("http", "https"):
        return f"{url!r} is not an http:// or https:// URL (e.g. http://127.0.0.1:8001)"
    if not parsed.host:
        return f"{url!r} names no host (e.g. http://127.0.0.1:8001)"
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        return f"{url!r}: {parsed.port} is not a port (1-65535)"
    if parsed.query or parsed.fragment:
        return f"{url!r}: a base URL has no ?query or #fragment"
    return None


def _header_problem(value: str) -> str | None:
    """Why `value` cannot be sent as an HTTP header value (printable ASCII only), or None."""
    for at, char in enumerate(value, start=1):
        if not " " <= char <= "~":
            return f"character {at} ({char!r}) is not printable ASCII, which an HTTP header needs"
    return None


def _option_problem(
    ctx: typer.Context, url: str, timeout: float, headers: dict[str, str | None]
) -> str | None:
    """The first option that cannot work, as `--option: problem`, or None."""
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        return (
            f"--timeout: must be more than 0 and at most {MAX_TIMEOUT:.0f} seconds, not {timeout:g}"
        )
    if problem := _url_problem(url):
        return f"--url: {problem}"
    for name, value in headers.items():
        if value and (problem := _header_problem(value)):
            option = f"--{name.replace('_', '-')}"
            source = ctx.get_parameter_source(name)
            if source is not None and source.name == "ENVIRONMENT":
                option += " (HOLDLINE_FEED_API_KEY)"
            return f"{option}: {problem}"
    return None


def _problem_text(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:500]
    if isinstance(body, dict) and "errors" in body:
        return "; ".join(f"{e['field']}: {e['problem']}" for e in body["errors"])
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return json.dumps(body, ensure_ascii=False)[:500]


@feed_app.command()
def load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="NDJSON (.ndjson/.jsonl) or CSV (.csv) file")],
    department: Annotated[str, typer.Option(help=f"one of: {', '.join(SCHEMAS)}")],
    url: Annotated[str, typer.Option(help="intake base URL")] = "http://127.0.0.1:8001",
    api_key: Annotated[
        str | None,
        typer.Option(envvar="HOLDLINE_FEED_API_KEY", help="department key (dev: dev-<dept>-key)"),
    ] = None,
    content_type: Annotated[
        str | None, typer.Option(help="override: application/x-ndjson or text/csv")
    ] = None,
    show_errors: Annotated[int, typer.Option(min=0, max=1000, help="errors to print")] = 20,
    timeout: Annotated[
        float, typer.Option(help="seconds to wait for intake to answer (above 0, at most a day)")
    ] = 600,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            help="the batch's key (default: from the file's SHA-256): the same command run "
            "again replays a finished batch or resumes an interrupted one"
        ),
    ] = None,
) -> None:
    """Stream FILE to POST /v1/feeds/{department} and print the batch report.

    Exit status 0 when every row was accepted, 3 when intake received the batch but rejected
    some rows (the accepted ones are stored; the report lists the errors), 1 when the feed was
    refused or could not be sent, 2 for a bad option."""
    headers_given = {
        "api_key": api_key,
        "content_type": content_type,
        "idempotency_key": idempotency_key,
    }
    if problem := _option_problem(ctx, url, timeout, headers_given):
        raise _fail(problem, code=2)
    if department not in SCHEMAS:
        raise _fail(f"department: {department!r} is not one of {', '.join(SCHEMAS)}")
    if not file.is_file():
        raise _fail(f"file: {file} does not exist or is not a file")
    media = content_type or MEDIA.get(file.suffix.lower())
    if media is None:
        raise _fail(f"file: cannot tell the format of {file.name}; use .ndjson, .jsonl or .csv")
    key = api_key or f"dev-{department}-key"
    try:
        batch_key = idempotency_key or f"sha256-{_file_digest(file)[:40]}"
    except OSError as exc:
        raise _fail(f"file: cannot read {file}: {exc}") from None
    headers = {"X-API-Key": key, "Content-Type": media, "Idempotency-Key": batch_key}
    size = file.stat().st_size
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[lines]:,} lines · {task.fields[rate]:,.0f} lines/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )
    base = url.rstrip("/")
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=10)) as http:
            with progress:
                task = progress.add_task(file.name, total=size, lines=0, rate=0)
                started = time.perf_counter()
                answer = http.post(
                    f"{base}/v1/feeds/{department}",
                    content=_chunks(file, progress, task, started),
                    headers=headers,
                )
                elapsed = time.perf_counter() - started
            if answer.status_code not in (200, 202):
                raise _fail(
                    f"intake refused the feed ({answer.status_code}): {_problem_text(answer)}"
                )
            batch = answer.json() | {"replayed": answer.status_code == 200}
            report = http.get(
                f"{base}{batch['status_url']}",
                params={"limit": max(show_errors, 1)},
                headers={"X-API-Key": key},
            ).json()
    except httpx.HTTPError as exc:
        raise _fail(f"url: cannot talk to intake at {base}: {exc}") from None
    except OSError as exc:
        raise _fail(f"file: cannot read {file}: {exc}") from None
    _print_report(batch, report, elapsed, show_errors)
    if batch["rejected"]:
        # received, but not whole: a department's script must not take it for a clean load
        raise typer.Exit(REJECTED_ROWS)


def _print_report(
    batch: dict[str, Any], report: dict[str, Any], elapsed: float, shown: int
) -> None:
    # intake's `lines` counts every line of the file, a CSV header and blank lines included;
    # rows are the records it judged, each accepted or rejected: the two are shown apart
    rows = batch["accepted"] + batch["rejected"]
    table = Table(title="feed batch")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("batch", batch["batch_id"])
    if batch.get("replayed"):
        table.add_row("note", "already received: this is the batch's report")
    elif batch.get("resumed_after_line"):
        table.add_row("note", f"resumed after line {batch['resumed_after_line']:,}")
    table.add_row("department", batch["department"])
    table.add_row("lines (intake's count)", f"{batch['lines']:,}")
    table.add_row("rows (accepted + rejected)", f"{rows:,}")
    if batch["lines"] > rows:
        table.add_row("other lines (header, blank, quoted newline)", f"{batch['lines'] - rows:,}")
    table.add_row("accepted", f"{batch['accepted']:,}")
    table.add_row("rejected", f"{batch['rejected']:,}")
    table.add_row("seconds", f"{elapsed:.1f}")
    table.add_row("rows/s", f"{rows / max(elapsed, 1e-6):,.0f}")
    console.print(table)
    errors = report.get("errors", [])[:shown]
    if errors:
        listing = Table(title=f"first {len(errors)} of {report.get('error_count', 0)} row errors")
        for column in ("line", "field", "problem"):
            listing.add_column(column)
        for e in errors:
            listing.add_row(str(e["line"]), e["field"], e["problem"])
        console.print(listing)
        console.print(f"rejected rows: GET {batch['status_url']}/rejected")
    # rules §8.2: what risk made of each accepted row, from risk's API with the same key
    console.print(
        f"per-row results (risk): GET /v1/feeds/{batch['department']}/batches/"
        f"{batch['batch_id']}/results"
    )
