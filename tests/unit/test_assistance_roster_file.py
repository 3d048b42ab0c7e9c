"""Roster files for `holdline cadres load`: all or nothing, each problem with line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.assistance.cli import RosterFileError, read_roster

HEADER = "cadre_id,name,rank,township_code,village_codes,webhook,robot,sms,email,active\n"


def test_csv_roster_with_channels_villages_and_active_flag(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(
        HEADER
        + "a,甲,general,530102001,,,,13800000000,,\n"
        + "b,乙,village,530102001,530102001002;530102001001,,https://robot/x,,b@x.cn,false\n",
        encoding="utf-8",
    )
    a, b = read_roster(path)
    assert (a.rank, a.contacts, a.active) == ("general", {"sms": "13800000000"}, True)
    assert b.village_codes == ["530102001001", "530102001002"]
    assert b.contacts == {"robot": "https://robot/x", "email": "b@x.cn"}
    assert b.active is False


def test_json_roster(tmp_path: Path) -> None:
    path = tmp_path / "roster.json"
    cadre = {"cadre_id": "c", "name": "丙", "rank": "county_leader", "township_code": "530102001"}
    path.write_text(json.dumps([cadre]), encoding="utf-8")
    assert [c.cadre_id for c in read_roster(path)] == ["c"]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("a,甲,boss,530102001,,,,,,", "line 2: rank"),
        ("a,甲,general,5301,,,,,,", "line 2: township_code"),
        ("a,甲,general,530102001,530102002001,,,,,", "outside township 530102001"),
        ("a,甲,general,530102001,,ftp://x,,,,", "webhook must be an http(s) URL"),
        ("a,甲,general,530102001,,,,12345,,", "sms must be an 11-digit mobile"),
        ("a,甲,general,530102001,,,,,,\na,甲,general,530102001,,,,,,", "line 3: cadre_id"),
    ],
)
def test_bad_rows_name_line_and_field(tmp_path: Path, row: str, problem: str) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + row + "\n", encoding="utf-8")
    with pytest.raises(RosterFileError) as caught:
        read_roster(path)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("roster.json", b'[{"cadre_id": "a",}]', "line 1: not JSON (Expecting property name"),
        ("roster.csv", b"\xff\xfecadre_id", "file: not UTF-8 text (byte 0: invalid start byte)"),
        ("roster.csv", b"", "file: no cadres in it"),
        ("roster.csv", HEADER.encode(), "file: no cadres in it"),
        ("roster.json", b"[]", "file: no cadres in it"),
    ],
)
def test_a_file_that_is_not_a_roster_is_one_problem_not_a_crash(
    tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RosterFileError) as caught:
        read_roster(path)
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(problem)


CADRE = "c1,Z,general,530102001,530102001001"
SHORT_HEADER = "cadre_id,name,rank,township_code,village_codes,active\n"


def _one(tmp_path: Path, fmt: str, active: object) -> Path:
    """A roster of one cadre whose `active` is `active`, as CSV or JSON."""
    if fmt == "csv":
        path = tmp_path / "roster.csv"
        path.write_text(f"{SHORT_HEADER}{CADRE},{active}\n", encoding="utf-8")
    else:
        path = tmp_path / "roster.json"
        cadre = dict(zip(SHORT_HEADER.strip().split(",")[:4], CADRE.split(",")[:4], strict=True))
        path.write_text(json.dumps([cadre | {"active": active}]), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize(
    ("word", "active"),
    [
        *[(w, False) for w in ("off", "OFF", "n", "no", "0", "false", "F", " Off ")],
        *[(w, True) for w in ("on", "yes", "Y", "1", "true", "T")],
    ],
)
def test_active_takes_the_same_words_in_csv_and_json(
    tmp_path: Path, fmt: str, word: str, active: bool
) -> None:
    [cadre] = read_roster(_one(tmp_path, fmt, word))
    assert cadre.active is active


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("word", ["maybe", "nein", "active", "2", "-"])
def test_any_other_active_word_is_a_problem_naming_line_and_column(
    tmp_path: Path, fmt: str, word: str
) -> None:
    with pytest.raises(RosterFileError) as caught:
        read_roster(_one(tmp_path, fmt, word))
    line = 2 if fmt == "csv" else 1
    assert caught.value.problems == [
        f"line {line}: active: {word!r} is not one of true/t/yes/y/on/1 (active)"
        " or false/f/no/n/off/0 (inactive)"
    ]


def test_an_empty_active_cell_leaves_the_cadre_active(tmp_path: Path) -> None:
    [cadre] = read_roster(_one(tmp_path, "csv", ""))
    assert cadre.active is True


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (  # a comma inside the villages: the second village went nowhere
            f"{SHORT_HEADER.replace(',active', '')}{CADRE},530102001002\n",
            "line 2: has 6 values; the header (line 1) has 5",
        ),
        (
            "cadre_id,name,rank,township_code\nc9,Z,general\n",
            "line 2: has 3 values; the header (line 1) has 4",
        ),
        (
            "cadre_id,name,rank,township_code\n\nc9,Z,general,530102001,x\n",
            "line 3: has 5 values; the header (line 1) has 4",
        ),
        (
            "cadre_id,name,rank,township_code,cadre_id\nc7,Z,general,530102001,c8\n",
            "line 1: cadre_id: appears twice in the header",
        ),
        (
            "cadre_id,name,rank,township_code,\nc7,Z,general,530102001,lost\n",
            "line 2: a value in a column the header gives no name",
        ),
    ],
)
def test_a_row_that_does_not_fit_the_header_is_a_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RosterFileError) as caught:
        read_roster(path)
    assert caught.value.problems == [problem]


def test_line_numbers_count_values_that_span_lines(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    rows = ['a,"甲\n乙",general,530102001,,yes', "b,乙,general,530102001,,maybe"]
    path.write_text(SHORT_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(RosterFileError) as caught:
        read_roster(path)
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 4"]


def test_cadres_load_checks_the_whole_file_before_importing_anything(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from services.cli import app

    database = tmp_path / "assistance.sqlite3"
    path = tmp_path / "roster.csv"
    path.write_text(f"{SHORT_HEADER}{CADRE},yes\nc2,Z,general,530102001,,off,x\n")
    env = {"HOLDLINE_ASSISTANCE_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    result = CliRunner().invoke(app, ["cadres", "load", str(path)], env=env)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        "line 3: has 7 values; the header (line 1) has 6",
        "nothing was imported",
    ]
    assert not database.exists()
