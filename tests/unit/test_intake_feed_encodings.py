"""Feeds in the charsets county data teams export (GBK, GB18030); yes/no cells (rules §8)."""

from __future__ import annotations

import json

import pytest

from services.intake.feeds import (
    CHARSETS,
    FeedFormat,
    FeedParser,
    LineSplitter,
    Parsed,
    charset_of,
    facts_of,
)

ID = "530102195003150018"
ID_2 = "11010519491231002X"
HEADER = "resident_id,recorded_on,diagnosis,chronic,serious\r\n"
# 糖尿病 is two bytes a character in GBK; 𠮷 four in GB18030; the quoted value holds a comma,
# a quote and a newline, so the record spans two lines
CSV = (
    HEADER
    + f"{ID},2026-10-01,糖尿病,true,false\r\n"
    + f'{ID_2},2026-10-01,"𠮷,""慢阻肺""\r\n复诊",是,否\r\n'
    + f"{ID},2026-10-02,尿毒症,否,是\r\n"
)


def parse(
    body: bytes,
    encoding: str = "gb18030",
    chunk: int = 0,
    fmt: FeedFormat = "csv",
    resume: int = 0,
) -> tuple[FeedParser, list[Parsed]]:
    parser = FeedParser("health", fmt, 4096, resume_after=resume, encoding=encoding)
    size = chunk or len(body) or 1
    out = [p for at in range(0, len(body), size) for p in parser.feed(body[at : at + size])]
    return parser, out + list(parser.finish())


def test_the_chinese_charsets_are_read_as_gb18030() -> None:
    assert {name: CHARSETS[name] for name in ("gbk", "gb2312", "gb18030")} == {
        "gbk": "gb18030", "gb2312": "gb18030", "gb18030": "gb18030"
    }  # fmt: skip
    assert CHARSETS["utf-8"] == "utf-8" and "latin-1" not in CHARSETS


@pytest.mark.parametrize(
    ("header", "charset"),
    [("text/csv", None), ("text/csv; charset=GBK", "gbk"), ('text/csv;charset="gb18030"',
     "gb18030"), ("text/csv; header=present; Charset = UTF-8", "utf-8")],
)  # fmt: skip
def test_the_charset_parameter_is_read_from_the_content_type(
    header: str, charset: str | None
) -> None:
    assert charset_of(header) == charset


@pytest.mark.parametrize("chunk", [0, 1, 2, 3, 5, 7])
def test_a_gb18030_csv_gives_its_rows_however_the_upload_is_cut(chunk: int) -> None:
    """Chunks cut inside a two- or four-byte character: each line is decoded once whole."""
    body = CSV.encode("gb18030")
    parser, parsed = parse(body, chunk=chunk)
    assert [(p.line, p.problems) for p in parsed] == [(2, []), (3, []), (5, [])]
    facts = [facts_of(p.row) for p in parsed if p.row is not None]
    assert [f["diagnosis"] for f in facts] == ["糖尿病", '𠮷,"慢阻肺"\r\n复诊', "尿毒症"]
    assert [(f["chronic"], f["serious"]) for f in facts] == [(True, False), (True, False),
                                                             (False, True)]  # fmt: skip
    assert parser.lines == 5


def test_the_line_count_and_digest_are_those_of_the_bytes_as_sent() -> None:
    """A resumed or replayed GBK upload is checked against the same digest as a UTF-8 one."""
    body = CSV.encode("gb18030")
    parser, _ = parse(body)
    splitter = LineSplitter(4096)
    list(splitter.feed(body))
    list(splitter.finish())
    assert (parser.lines, parser.digest()) == (splitter.line, splitter.digest())


def test_a_resumed_gbk_upload_skips_its_committed_lines() -> None:
    body = CSV.encode("gb18030")
    cut = body.index("尿毒症".encode("gb18030"))  # inside line 5: lines 1-4 arrived whole
    first = FeedParser("health", "csv", 4096, encoding="gb18030")
    assert [p.line for p in first.feed(body[:cut])] == [2, 3]
    assert first.lines == 4
    again, parsed = parse(body, resume=first.lines)
    assert [p.line for p in parsed] == [5] and parsed[0].problems == []
    assert again.prefix_digest == first.digest()


def test_a_gbk_upload_read_as_utf8_is_what_it_was_before() -> None:
    """Without the charset declared, GBK bytes are not UTF-8: each such line says so."""
    _, parsed = parse(CSV.encode("gb18030"), encoding="utf-8")
    assert [p.problems for p in parsed] == [[("line", "is not valid UTF-8")]] * 3


def test_bytes_that_are_not_gb18030_reject_their_line_alone() -> None:
    body = (HEADER + f"{ID},2026-10-01,糖尿病,是,否\r\n").encode("gbk")
    body += ID.encode() + b",2026-10-01,\x81\x20,true,false\r\n"  # a lead byte, then a space
    _, parsed = parse(body)
    assert [(p.line, p.problems) for p in parsed] == [
        (2, []), (3, [("line", "is not valid GB18030")])
    ]  # fmt: skip
    assert parsed[1].raw.endswith(b"\x81\x20,true,false")


def test_a_gb18030_byte_order_mark_is_skipped() -> None:
    _, parsed = parse("\ufeff".encode("gb18030") + CSV.encode("gb18030"))
    assert [p.problems for p in parsed] == [[], [], []]


def test_a_gbk_ndjson_line_is_read_too() -> None:
    row = {"resident_id": ID, "recorded_on": "2026-10-01", "diagnosis": "糖尿病", "serious": "是"}
    _, parsed = parse(json.dumps(row, ensure_ascii=False).encode("gbk") + b"\n", fmt="ndjson")
    assert parsed[0].problems == [] and parsed[0].row is not None
    assert facts_of(parsed[0].row)["diagnosis"] == "糖尿病"


@pytest.mark.parametrize(
    ("cell", "value"),
    [("是", True), (" 是 ", True), ("否", False), ("true", True), ("TRUE", True), ("1", True),
     ("yes", True), ("Y", True), ("false", False), ("0", False), ("no", False), ("n", False)],
)  # fmt: skip
def test_rules_8_yes_no_cells_are_read_as_risk_reads_them(cell: str, value: bool) -> None:
    body = f"resident_id,recorded_on,diagnosis,serious\n{ID},2026-10-01,肝癌,{cell}\n".encode()
    _, (parsed,) = parse(body, encoding="utf-8")
    assert parsed.problems == [] and parsed.row is not None
    assert facts_of(parsed.row)["serious"] is value


def test_a_yes_no_cell_that_is_neither_is_rejected_naming_the_field() -> None:
    body = f"resident_id,recorded_on,diagnosis,serious\n{ID},2026-10-01,肝癌,也许\n".encode()
    _, (parsed,) = parse(body, encoding="utf-8")
    assert [field for field, _ in parsed.problems] == ["serious"]
