"""Feed parsing (rules §8): line splitting is chunk-proof; every department has a schema."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.feeds import SCHEMAS, FeedHeaderError, FeedParser, LineSplitter, facts_of
from shared.auth import DEPARTMENTS

ID = "530102195003150018"
EXAMPLES = {
    "medical_insurance": {"out_of_pocket_spending": 1200},
    "health": {"diagnosis": "尿毒症", "serious": True},
    "education": {"schooling_stage": "junior", "dropped_out": True},
    "housing": {"house_rating": "C"},
    "water": {"supply_interrupted_days": 12, "water_quality_safe": False},
    "human_resources": {"employment_status": "unemployed", "job_lost": True},
    "civil_affairs": {"assistance_status": "dibao", "monthly_amount": 815},
    "agriculture": {"project": "肉牛养殖", "failed": True, "loss_amount": 30000},
    "public_security": {"change": "death"},
    "disabled_persons_federation": {"disability_grade": 2},
    "emergency_management": {"event": "disaster", "disaster_subtype": "flood"},
}


def test_rules_8_every_department_has_a_schema() -> None:
    assert set(SCHEMAS) == set(DEPARTMENTS) == set(EXAMPLES)


@pytest.mark.parametrize("department", sorted(EXAMPLES))
def test_rules_8_a_typical_row_of_each_department_is_valid(department: str) -> None:
    parser = FeedParser(department, "ndjson", 4096)
    row = {"resident_id": ID, "recorded_on": "2026-10-01"} | EXAMPLES[department]
    (parsed,) = list(parser.feed(json.dumps(row).encode() + b"\n"))
    assert parsed.problems == [] and parsed.row is not None
    facts = facts_of(parsed.row)
    assert "resident_id" not in facts and set(EXAMPLES[department]) <= set(facts)


@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    cuts=st.lists(st.integers(0, 1000), max_size=10),
)
def test_lines_are_the_same_however_the_stream_is_chunked(
    lines: list[bytes], cuts: list[int]
) -> None:
    body = b"\n".join(lines)
    points = sorted({c % (len(body) + 1) for c in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    splitter = LineSplitter(max_line_bytes=1000)
    got = [line for chunk in chunks for _, line in splitter.feed(chunk)]
    got += [line for _, line in splitter.finish()]
    expected = body.split(b"\n") if body else []
    if expected and expected[-1] == b"":
        expected = expected[:-1]
    assert got == [e.rstrip(b"\r") for e in expected]


def test_a_line_over_the_limit_is_reported_without_being_held() -> None:
    splitter = LineSplitter(max_line_bytes=10)
    out = list(splitter.feed(b"short\n" + b"x" * 25))
    out += list(splitter.feed(b"y" * 25 + b"\nok\n"))
    assert out == [(1, b"short"), (2, None), (3, b"ok")]
    assert len(splitter._buf) == 0


def test_csv_header_must_match_the_department_schema() -> None:
    parser = FeedParser("housing", "csv", 4096)
    with pytest.raises(FeedHeaderError) as caught:
        list(parser.feed(b"resident_id,recorded_on,recorded_on,colour\n"))
    assert caught.value.problems == [
        ("colour", "unknown field"),
        ("recorded_on", "appears twice"),
        ("house_rating", "required column is missing"),
    ]


def test_csv_rows_validate_with_empty_cells_as_absent() -> None:
    parser = FeedParser("water", "csv", 4096)
    rows = list(
        parser.feed(
            b"resident_id,recorded_on,supply_interrupted_days,water_quality_safe\n"
            + f"{ID},2026-10-01,,false\n{ID},2026-10-01,-3,true\n".encode()
        )
    )
    assert rows[0].row is not None and facts_of(rows[0].row) == {
        "supply_interrupted_days": 0, "water_quality_safe": False
    }  # fmt: skip
    assert rows[1].line == 3 and rows[1].problems[0][0] == "supply_interrupted_days"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "is not a JSON object"),
        (b"[" * 5000 + b"]" * 5000, "is not valid JSON"),  # nesting deeper than any parser allows
        (b"\xff\xfe", "is not valid UTF-8"),
    ],
)
def test_a_line_that_is_not_a_json_object_is_rejected_alone(line: bytes, problem: str) -> None:
    parser = FeedParser("housing", "ndjson", 1 << 20)
    (parsed,) = list(parser.feed(line + b"\n"))
    assert parsed.row is None and parsed.problems[0][0] == "line"
    assert parsed.problems[0][1].startswith(problem)


def test_a_csv_field_over_the_csv_module_limit_is_rejected_alone() -> None:
    parser = FeedParser("housing", "csv", 1 << 20)
    huge = b'"' + b"x" * 200_000 + b'",1,2\n'
    rows = list(parser.feed(b"resident_id,recorded_on,house_rating\n" + huge))
    assert rows[0].problems[0][0] == "line" and "CSV" in rows[0].problems[0][1]
    with pytest.raises(FeedHeaderError):
        list(FeedParser("housing", "csv", 1 << 20).feed(b'"' + b"h" * 200_000 + b'"\n'))


@given(
    st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=20),
    st.integers(min_value=1, max_value=40),
)
def test_the_line_digest_does_not_depend_on_chunking(lines: list[bytes], size: int) -> None:
    """A retried upload arrives in other chunks; its digest of the same lines is the same."""
    stream = b"".join(line + b"\n" for line in lines)
    whole, chunked = LineSplitter(4096), LineSplitter(4096)
    list(whole.feed(stream))
    for start in range(0, len(stream), size):
        list(chunked.feed(stream[start : start + size]))
    assert whole.digest() == chunked.digest()
    other = LineSplitter(4096)
    list(other.feed(stream + b"x\n"))
    assert other.digest() != whole.digest()


def _rows(count: int) -> bytes:
    row = {"resident_id": ID, "recorded_on": "2026-10-01", "out_of_pocket_spending": 1}
    return b"".join(json.dumps(row | {"x": n} if n == 2 else row).encode() + b"\n"
                    for n in range(1, count + 1))  # fmt: skip


def test_a_resumed_parse_skips_the_committed_lines_and_checks_their_digest() -> None:
    """Lines up to the resume point are neither validated nor returned; the digest of exactly
    those lines is what the batch stored when it committed them."""
    first = FeedParser("medical_insurance", "ndjson", 4096)
    list(first.feed(_rows(3)))
    resumed = FeedParser("medical_insurance", "ndjson", 4096, resume_after=3)
    parsed = list(resumed.feed(_rows(6)))
    assert [p.line for p in parsed] == [4, 5, 6]
    assert resumed.prefix_digest == first.digest()
    assert resumed.lines == 6
    shorter = FeedParser("medical_insurance", "ndjson", 4096, resume_after=8)
    list(shorter.feed(_rows(6)))
    assert shorter.prefix_digest is None, "a file shorter than the committed part never matches"


def test_a_resumed_csv_parse_still_reads_its_header() -> None:
    csv_rows = (
        "resident_id,recorded_on,house_rating\n" + "".join(f"{ID},2026-09-30,{r}\n" for r in "ABCD")
    ).encode()
    parsed = list(FeedParser("housing", "csv", 4096, resume_after=3).feed(csv_rows))
    assert [(p.line, p.row is not None) for p in parsed] == [(4, True), (5, True)]


HEALTH_HEADER = b"resident_id,recorded_on,diagnosis\n"


def _health(body: bytes, chunk: int = 0, max_line_bytes: int = 4096) -> FeedParser:
    parser = FeedParser("health", "csv", max_line_bytes)
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    parser.parsed = [p for piece in pieces for p in parser.feed(piece)]  # type: ignore[attr-defined]
    parser.parsed += list(parser.finish())  # type: ignore[attr-defined]
    return parser


@pytest.mark.parametrize("chunk", [0, 1, 7])
def test_a_quoted_csv_value_keeps_its_newlines_and_the_record_its_first_line(chunk: int) -> None:
    """csv module semantics: a newline inside quotes is part of the value. The record is
    numbered by the line it starts on, and the lines after it keep their own numbers."""
    body = (
        HEALTH_HEADER
        + (
            f'{ID},2026-10-01,"acute leukemia\nrelapse, second admission"\n'
            f'{ID},2026-10-02,"a ""quoted"" word,\r\n\r\nand two lines"\r\n'
            f"{ID},2026-10-03,flu\n"
            f"{ID},2099-10-04,later\n"
        ).encode()
    )
    parser = _health(body, chunk)
    rows = parser.parsed  # type: ignore[attr-defined]
    assert [(p.line, p.row.diagnosis if p.row else p.problems) for p in rows] == [
        (2, "acute leukemia\nrelapse, second admission"),
        (4, 'a "quoted" word,\r\n\r\nand two lines'),
        (7, "flu"),
        (8, [("recorded_on", "date is in the future")]),
    ]
    assert parser.lines == 8
    assert rows[0].raw == f'{ID},2026-10-01,"acute leukemia\nrelapse, second admission"'.encode()


def test_quotes_inside_an_unquoted_value_are_plain_characters() -> None:
    """A quote opens a quoted value only as its first character (csv module semantics)."""
    body = HEALTH_HEADER + f'{ID},2026-10-01,5" wound\n{ID},2026-10-02,"ok"x"\n'.encode()
    rows = _health(body).parsed  # type: ignore[attr-defined]
    assert [(p.line, p.row.diagnosis if p.row else None) for p in rows] == [
        (2, '5" wound'), (3, 'okx"')
    ]  # fmt: skip


@given(
    values=st.lists(st.text(alphabet='ab ,"\n\r诊', min_size=1, max_size=12), max_size=6),
    size=st.integers(min_value=1, max_value=40),
    terminator=st.sampled_from(["\n", "\r\n"]),
)
def test_csv_records_are_the_csv_module_s_however_the_upload_is_cut(
    values: list[str], size: int, terminator: str
) -> None:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator=terminator)
    if terminator == "\n":  # a lone CR would be left unquoted: no CSV reader agrees on it
        values = [v.replace("\r", "") or "a" for v in values]
    for n, value in enumerate(values):
        writer.writerow([ID, f"2026-10-{n + 1:02d}", value])
    parser = _health(HEALTH_HEADER + out.getvalue().encode(), size)
    expected = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    got = [(p.row.recorded_on.day, p.row.diagnosis) for p in parser.parsed if p.row]  # type: ignore[attr-defined]
    assert got == [(int(d[-2:]), v.strip()) for _, d, v in expected if v.strip()]
    assert parser.lines == 1 + out.getvalue().count("\n")


def test_an_upload_that_ends_inside_quotes_is_rejected_not_cut() -> None:
    body = HEALTH_HEADER + f'{ID},2026-10-01,flu\n{ID},2026-10-02,"acute\nleukemia'.encode()
    rows = _health(body).parsed  # type: ignore[attr-defined]
    assert rows[0].row is not None
    assert (rows[1].line, rows[1].row, rows[1].problems[0][0]) == (3, None, "line")
    assert "never closed" in rows[1].problems[0][1]
    assert rows[1].raw.endswith(b"leukemia")
    with pytest.raises(FeedHeaderError):
        _health(b'resident_id,"recorded_on\n')


def test_a_record_over_the_line_limit_is_rejected_and_the_next_one_read() -> None:
    long_value = "\n".join(["x" * 30] * 5)
    body = HEALTH_HEADER + f'{ID},2026-10-01,"{long_value}"\n{ID},2026-10-02,flu\n'.encode()
    parser = _health(body, chunk=16, max_line_bytes=100)
    rows = parser.parsed  # type: ignore[attr-defined]
    assert [(p.line, p.problems) for p in rows] == [
        (2, [("line", "is longer than 100 bytes")]), (7, [])
    ]  # fmt: skip
    assert parser._lines._record == []


def test_a_commit_never_counts_the_first_lines_of_an_open_record() -> None:
    """What a batch stores as committed (lines, digest) ends before a record still open, so a
    resumed upload reads that record from its first line."""
    head = HEALTH_HEADER + f"{ID},2026-10-01,flu\n".encode()
    opened = f'{ID},2026-10-02,"acute\n'.encode()
    rest = f'leukemia"\n{ID},2026-10-03,cold\n'.encode()
    first = FeedParser("health", "csv", 4096)
    list(first.feed(head + opened))
    assert first.lines == 2
    committed = LineSplitter(4096)
    list(committed.feed(head))
    assert first.digest() == committed.digest()
    resumed = FeedParser("health", "csv", 4096, resume_after=first.lines)
    rows = list(resumed.feed(head + opened + rest)) + list(resumed.finish())
    assert resumed.prefix_digest == first.digest()
    assert [(p.line, p.row.diagnosis if p.row else None) for p in rows] == [
        (3, "acute\nleukemia"), (5, "cold")
    ]  # fmt: skip
    whole = LineSplitter(4096)
    list(whole.feed(head + opened + rest))
    assert resumed.digest() == whole.digest(), "a retry's replay check reads the same file"


@pytest.mark.parametrize(
    ("fmt", "body", "empty"),
    [("ndjson", b"", True), ("ndjson", b"\n\r\n  \n", True), ("csv", b"", True),
     ("csv", b"\n\n", True), ("csv", b"resident_id,recorded_on,house_rating\n", False),
     ("ndjson", b"{bad\n", False)],
)  # fmt: skip
def test_an_upload_without_a_line_is_empty(fmt: str, body: bytes, empty: bool) -> None:
    parser = FeedParser("housing", fmt, 4096)  # type: ignore[arg-type]
    list(parser.feed(body))
    list(parser.finish())
    assert parser.empty is empty


def test_a_number_or_a_date_in_json_is_not_true_false_or_a_timestamp() -> None:
    parser = FeedParser("medical_insurance", "ndjson", 4096)
    rows = [
        {"resident_id": ID, "recorded_on": "2026-10-01", "out_of_pocket_spending": True},
        {"resident_id": ID, "recorded_on": 0, "out_of_pocket_spending": 1},
    ]
    parsed = list(parser.feed(b"".join(json.dumps(r).encode() + b"\n" for r in rows)))
    assert [p.problems for p in parsed] == [
        [("out_of_pocket_spending", "must be a number, not true or false")],
        [("recorded_on", "must be a date written YYYY-MM-DD")],
    ]
