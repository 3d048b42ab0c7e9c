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
