"""Department feeds (rules §8): one row schema per department, parsed line by line."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from services.intake.fields import (
    HouseholdId,
    PastDate,
    RegionCode,
    ResidentId,
)
from shared.amounts import NOT_BOOLEAN, Amount
from shared.events import SchoolingStage

FeedFormat = Literal["ndjson", "csv"]
DisasterSubtype = Literal[
    "flood", "geological", "drought", "biological", "meteorological", "earthquake", "other"
]
MEDIA_TYPES: dict[str, FeedFormat] = {
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "text/csv": "csv",
}
# the charsets a feed may declare (Content-Type `; charset=`), and how it is read. County data
# teams export from Excel in GBK; GB18030 is a superset of GB2312 and GBK, so all three are
# read as GB18030. No other charset is guessed at: the upload is refused (415) naming it
CHARSETS = {
    "utf-8": "utf-8", "utf8": "utf-8", "gbk": "gb18030", "gb2312": "gb18030",
    "gb18030": "gb18030",
}  # fmt: skip
# a byte-order mark at the start of the upload, as spreadsheet exports write it
BOMS = {"utf-8": codecs.BOM_UTF8, "gb18030": "\ufeff".encode("gb18030")}
# identity columns travel in the envelope (hashed); the rest is the department's facts
IDENTITY = {"resident_id", "household_id", "village_code", "recorded_on"}
# Chinese yes and no, as county spreadsheets write them; pydantic reads the rest of what risk's
# feeds.py takes (true/false, 1/0, yes/no, y/n, any case)
YES_NO = {"是": "true", "否": "false"}


def _yes_no(value: object) -> object:
    if isinstance(value, str):
        return YES_NO.get(value.strip(), value)
    return value


# a department's yes/no fact (rules §8): `是`/`否` as well as pydantic's booleans
Flag = Annotated[bool, BeforeValidator(_yes_no)]


class FeedRow(BaseModel):
    """What every department row carries: whom it is about and when it was recorded."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    resident_id: ResidentId
    household_id: HouseholdId | None = Field(None, description="户编号, when the department has it")
    village_code: RegionCode | None = None
    recorded_on: PastDate = Field(description="记录日期")


class MedicalInsuranceRow(FeedRow):
    """医保: out-of-pocket medical spending and serious-illness claims."""

    out_of_pocket_spending: Amount = Field(description="政策范围内个人自付医疗费用")
    total_spending: Amount | None = Field(None, description="医疗总费用")
    serious_illness_claim: Flag = Field(False, description="大病保险理赔")


class HealthRow(FeedRow):
    """卫健: serious or chronic illness diagnoses."""

    diagnosis: str = Field(min_length=1, max_length=200, description="诊断")
    chronic: Flag = Field(False, description="慢性病")
    serious: Flag = Field(False, description="大病")


class EducationRow(FeedRow):
    """教育: dropouts and student aid."""

    schooling_stage: SchoolingStage = Field(description="在校学段")
    dropped_out: Flag = Field(False, description="辍学")
    student_aid: Amount = Field(0, description="学生资助金额")


class HousingRow(FeedRow):
    """住建: house safety rating (C and D are dangerous)."""

    house_rating: Literal["A", "B", "C", "D"] = Field(description="房屋安全等级")


class WaterRow(FeedRow):
    """水利: supply interruptions and water quality."""

    supply_interrupted_days: Annotated[int, Field(ge=0, le=366), NOT_BOOLEAN] = Field(
        0, description="停水天数"
    )
    water_quality_safe: Flag = Field(True, description="水质达标")


class HumanResourcesRow(FeedRow):
    """人社: job loss, employment status and pension."""

    employment_status: Literal["employed", "unemployed", "migrant", "retired", "none"]
    job_lost: Flag = Field(False, description="失业")
    monthly_pension: Amount = Field(0, description="养老金 (yuan/month)")


class CivilAffairsRow(FeedRow):
    """民政: minimum-living, extreme-poverty and temporary-assistance status."""

    assistance_status: Literal["dibao", "tekun", "temporary_assistance", "none"]
    monthly_amount: Amount = Field(0, description="月救助金额")


class AgricultureRow(FeedRow):
    """农业农村: failed farming or business projects."""

    project: str = Field(min_length=1, max_length=200, description="产业项目")
    failed: Flag = Field(description="项目失败")
    loss_amount: Amount = Field(0, description="损失金额")


class PublicSecurityRow(FeedRow):
    """公安: deaths, births, household splits and moves."""

    change: Literal["death", "birth", "split", "move_in", "move_out"]
    new_household_id: HouseholdId | None = Field(None, description="分户或迁入后的户编号")


class DisabledPersonsRow(FeedRow):
    """残联: new or changed disability."""

    disability_grade: Annotated[int, Field(ge=1, le=4), NOT_BOOLEAN] = Field(
        description="残疾等级 (1 most severe)"
    )
    change: Literal["new", "changed", "revoked"] = "new"


class EmergencyManagementRow(FeedRow):
    """应急: disasters and accidents, affected households."""

    event: Literal["disaster", "accident"]
    disaster_subtype: DisasterSubtype | None = Field(None, description="rules §3.4 灾害类型")
    loss_amount: Amount = Field(0, description="损失金额")


SCHEMAS: dict[str, type[FeedRow]] = {
    "medical_insurance": MedicalInsuranceRow,
    "health": HealthRow,
    "education": EducationRow,
    "housing": HousingRow,
    "water": WaterRow,
    "human_resources": HumanResourcesRow,
    "civil_affairs": CivilAffairsRow,
    "agriculture": AgricultureRow,
    "public_security": PublicSecurityRow,
    "disabled_persons_federation": DisabledPersonsRow,
    "emergency_management": EmergencyManagementRow,
}


UNCLOSED = "has a quoted value that is never closed (the upload ends inside it)"


class FeedHeaderError(ValueError):
    """A CSV header the department's schema cannot read; the whole upload is refused."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {p}" for f, p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Parsed:
    """One data line: the valid row, or the problems that rejected it."""

    line: int
    raw: bytes
    row: FeedRow | None
    problems: list[tuple[str, str]]


def charset_of(content_type: str) -> str | None:
    """The `charset` parameter of a Content-Type header, lower case, or None."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip().lower()
    return None


def problems_of(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, problem) pairs in the stable error shape of the API."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in err["loc"]) or "row"
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append((field, "unknown field" if err["type"] == "extra_forbidden" else message))
    return out


# csv module semantics (its default dialect): a quote opens a quoted value only as a value's
# first character; inside, "" is a quote and a newline is part of the value; after the closing
# quote the value goes on unquoted up to the next comma, where quotes are plain characters.
# A line matches _CLOSED when a record that starts with it ends with it (no quoted value left
# open); _CLOSED_AFTER is the same for a line that starts inside a quoted value. Possessive
# quantifiers: every alternative is decided by its first character, nothing is tried twice.
_VALUE = rb'(?:"(?:[^"]|"")*+"[^,]*+|[^,"][^,]*+|)'
_CLOSED = re.compile(rb"(?:" + _VALUE + rb",)*+" + _VALUE)
_CLOSED_AFTER = re.compile(rb'(?:[^"]|"")*+"[^,]*+(?:,' + _VALUE + rb")*+")


class LineSplitter:
    """Cuts a byte stream into numbered lines without ever holding more than one line.

    With `csv_records`, a line that ends inside a quoted CSV value goes on with the next line
    (csv module semantics): the record is given whole, its lines joined by their newlines and
    numbered by the line it starts on, once its last line has arrived. A record is bounded by
    `max_line_bytes` as a line is; a line over the limit ends the record it is part of.
    """

    def __init__(self, max_line_bytes: int, csv_records: bool = False) -> None:
        self._max = max_line_bytes
        self._buf = bytearray()
        self._skipping = False
        self.line = 0
        # SHA-256 of the lines emitted so far, each with its newline (an over-long line
        # counts as a marker): what a resumed upload's first lines are checked against
        self._digest = hashlib.sha256()
        self._csv = csv_records
        # a CSV record whose quoted value is still open: its lines so far (none once it is
        # over the limit), its first line, its size, and the line count and digest before it
        self._open = False
        self._record: list[bytes] = []
        self._start = 0
        self._size = 0
        self._before: tuple[int, Any] = (0, None)
        self.unclosed = False  # the stream ended inside a quoted value (finish gave that record)

    @property
    def ended(self) -> int:
        """Lines up to the end of the last line or record emitted (a record still open is not
        counted: a resumed upload starts again at its first line)."""
        return self._before[0] if self._open else self.line

    def digest(self) -> str:
        """Hex SHA-256 of the lines emitted so far (up to `ended`)."""
        return (self._before[1] if self._open else self._digest).hexdigest()

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes | None]]:
        """Complete lines in `chunk` (None for a line over the limit)."""
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            emitted = self._emit(chunk[start:end])
            if emitted is not None:
                yield emitted
            start = end + 1
        rest = chunk[start:]
        if self._skipping:
            return
        if len(self._buf) + len(rest) > self._max:
            # drop the long line as it arrives: memory stays bounded by max_line_bytes
            self._buf.clear()
            self._skipping = True
        else:
            self._buf += rest

    def finish(self) -> Iterator[tuple[int, bytes | None]]:
        """The last line when the stream does not end with a newline, and a CSV record whose
        quoted value was never closed (`unclosed`)."""
        if self._buf or self._skipping:
            emitted = self._emit(b"")
            if emitted is not None:
                yield emitted
        if self._open:
            self.unclosed = True
            yield self._close()

    def _emit(self, piece: bytes) -> tuple[int, bytes | None] | None:
        self.line += 1
        if self._skipping or len(self._buf) + len(piece) > self._max:
            self._skipping = False
            self._buf.clear()
            self._digest.update(b"\x00too long\n")
            if self._open:
                self._record.clear()
                return self._close()
            return self.line, None
        if self._buf:
            self._buf += piece
            piece = bytes(self._buf)
            self._buf.clear()
        if not self._open and (not self._csv or b'"' not in piece or _CLOSED.fullmatch(piece)):
            self._digest.update(piece)
            self._digest.update(b"\n")
            return self.line, piece.rstrip(b"\r")
        return self._record_line(piece)

    def _record_line(self, piece: bytes) -> tuple[int, bytes | None] | None:
        """A CSV line that opens a record (a quoted value goes on past it) or continues one."""
        if not self._open:
            self._before = (self.line - 1, self._digest.copy())
            self._open, self._start, self._size = True, self.line, len(piece)
            self._record.append(piece)
            self._digest.update(piece)
            self._digest.update(b"\n")
            return None
        self._digest.update(piece)
        self._digest.update(b"\n")
        self._size += 1 + len(piece)
        if self._size > self._max:
            self._record.clear()  # over the limit: only the quotes are followed from here
        elif self._record:
            self._record.append(piece)
        if _CLOSED_AFTER.fullmatch(piece) is None:
            return None
        return self._close()

    def _close(self) -> tuple[int, bytes | None]:
        """The open record, whole (None when it went over the limit)."""
        raw = b"\n".join(self._record).rstrip(b"\r") if self._record else None
        start = self._start
        self._open, self._record, self._size = False, [], 0
        return start, raw


class FeedParser:
    """Turns a department's upload, chunk by chunk, into validated rows (rules §8, §9)."""

    def __init__(
        self,
        department: str,
        fmt: FeedFormat,
        max_line_bytes: int,
        resume_after: int = 0,
        encoding: str = "utf-8",
    ) -> None:
        self.schema = SCHEMAS[department]
        self.format = fmt
        # lines are cut, counted and hashed as bytes, then each is decoded on its own: no byte
        # of a multi-byte GB18030 character is a newline, a quote or a comma (lead 0x81-0xFE,
        # then 0x40-0xFE or 0x30-0x39), so a line ends where it would in UTF-8, a character cut
        # across chunks is joined before it is decoded, and line numbers, the size limits and
        # the digest of a resumed or replayed upload are those of the bytes as sent
        self.encoding = encoding
        self._bom = BOMS[encoding]
        self._invalid = f"is not valid {encoding.upper()}"
        self.header: list[str] | None = None
        self.header_line: str | None = None
        self._lines = LineSplitter(max_line_bytes, csv_records=fmt == "csv")
        self._max = max_line_bytes
        self.empty = True  # no line with anything but blanks yet (no header for a CSV)
        # lines an earlier attempt of the same batch committed: read (and hashed), not parsed
        self._resume_after = resume_after
        self.prefix_digest: str | None = None if resume_after else self._lines.digest()

    @property
    def lines(self) -> int:
        """Lines read so far (header and blank lines included), up to the end of the last
        record given: a CSV record still open is not counted yet."""
        return self._lines.ended

    def digest(self) -> str:
        """Hex SHA-256 of the lines read so far."""
        return self._lines.digest()

    def feed(self, chunk: bytes) -> Iterator[Parsed]:
        """Rows completed by this chunk."""
        for line, raw in self._lines.feed(chunk):
            parsed = self._parse(line, raw)
            if parsed is not None:
                yield parsed

    def finish(self) -> Iterator[Parsed]:
        """The last row, if the upload did not end with a newline (or inside a quoted value)."""
        for line, raw in self._lines.finish():
            parsed = self._parse(line, raw)
            if parsed is not None:
                yield parsed

    def _parse(self, line: int, raw: bytes | None) -> Parsed | None:
        # `line` is where the line or record starts; the splitter is at its last line
        if self._lines.line == self._resume_after:
            self.prefix_digest = self._lines.digest()
        if self._lines.line <= self._resume_after:
            self.empty = False
            if raw is None or not (self.format == "csv" and self.header is None):
                return None
        if raw is None:
            return Parsed(line, b"", None, [("line", f"is longer than {self._max} bytes")])
        if line == 1 and raw.startswith(self._bom):
            raw = raw[len(self._bom) :]  # a byte-order mark, as spreadsheet exports write it
        if not raw.strip():
            return None
        self.empty = False
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError:
            return Parsed(line, raw, None, [("line", self._invalid)])
        if self._lines.unclosed:
            # the upload ended inside a quoted value: what came after its quote is not a value
            if self.header is None and self.format == "csv":
                raise FeedHeaderError([("header", UNCLOSED)])
            return Parsed(line, raw, None, [("line", UNCLOSED)])
        if self.format == "csv" and self.header is None:
            self._read_header(text)
            return None
        if self.format == "ndjson":
            # pydantic reads JSON bytes as UTF-8 only; any other charset goes in decoded
            return self._parse_json(line, raw, raw if self.encoding == "utf-8" else text, text)
        fields, problem = self._csv_fields(text)
        if problem:
            return Parsed(line, raw, None, [("line", problem)])
        try:
            return Parsed(line, raw, self.schema.model_validate(fields), [])
        except ValidationError as exc:
            return Parsed(line, raw, None, problems_of(exc))

    def _parse_json(self, line: int, raw: bytes, json_text: bytes | str, text: str) -> Parsed:
        try:
            # pydantic parses and validates in one pass, without a Python dict in between
            return Parsed(line, raw, self.schema.model_validate_json(json_text), [])
        except ValidationError as exc:
            kinds = {e["type"] for e in exc.errors(include_url=False, include_input=False)}
            if kinds & {"json_invalid", "model_type", "model_attributes_type"}:
                return Parsed(line, raw, None, [("line", self._json_problem(text))])
            return Parsed(line, raw, None, problems_of(exc))

    @staticmethod
    def _json_problem(text: str) -> str:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return f"is not valid JSON ({exc.msg} at column {exc.colno})"
        except (ValueError, RecursionError):
            return "is not valid JSON"
        return "is not a JSON object"

    def _csv_fields(self, text: str) -> tuple[dict[str, Any], str | None]:
        assert self.header is not None
        try:
            values = next(csv.reader([text]), [])
        except csv.Error as exc:
            return {}, f"is not valid CSV ({exc})"
        if len(values) != len(self.header):
            return {}, f"has {len(values)} values; the header has {len(self.header)}"
        # an empty cell means "not given": the schema's default or its "required" error applies
        return {k: v for k, v in zip(self.header, values, strict=True) if v.strip()}, None

    def _read_header(self, text: str) -> None:
        try:
            header = [h.strip() for h in next(csv.reader([text]), [])]
        except csv.Error as exc:
            raise FeedHeaderError([("header", f"is not valid CSV ({exc})")]) from None
        known = self.schema.model_fields
        problems = [(h or "header", "unknown field") for h in header if h not in known]
        twice = sorted({h for h in header if header.count(h) > 1})
        problems += [(h, "appears twice") for h in twice]
        problems += [
            (name, "required column is missing")
            for name, info in known.items()
            if info.is_required() and name not in header
        ]
        if problems:
            raise FeedHeaderError(problems)
        self.header = header
        self.header_line = text


def facts_of(row: FeedRow) -> dict[str, Any]:
    """The department's facts of a valid row, without identity columns."""
    return row.model_dump(mode="json", exclude=IDENTITY)
