"""`holdline dlq`: the records several consumer groups dead-lettered from one message are one
message, replayed once (consumers dedupe by event id)."""

from __future__ import annotations

from shared.dlq import DeadLetter, Mark, Selection, _select, dead_messages
from tests.support import declaration_event

TOPIC = "holdline.assistance.v1"


def letter(
    offset: int,
    value: bytes,
    consumer: str,
    *,
    original: tuple[int, int] | None = (0, 7),
    replayed: bool = False,
    mark: Mark | None = None,
) -> DeadLetter:
    headers = {"consumer": consumer, "original_topic": TOPIC, "attempts": "3"}
    if original is not None:
        headers |= {"original_partition": str(original[0]), "original_offset": str(original[1])}
    return DeadLetter(
        partition=0, offset=offset, key=b"hh-1", value=value, headers=headers,
        replayed=replayed, timestamp_ms=offset, mark=mark,
    )  # fmt: skip


def test_one_message_failed_by_two_groups_is_one_message_with_both_groups() -> None:
    event = declaration_event("hh-1").to_bytes()
    other = declaration_event("hh-2").to_bytes()
    letters = [letter(0, event, "risk-assistance"), letter(1, event, "notify"),
               letter(2, other, "notify", original=(0, 8))]  # fmt: skip
    first, second = dead_messages(letters)
    assert [x.offset for x in first.letters] == [0, 1]
    assert first.consumers == ("notify", "risk-assistance")
    assert [x.offset for x in second.letters] == [2]


def test_bytes_that_are_no_event_group_by_their_original_position() -> None:
    letters = [letter(0, b"\xff", "risk"), letter(1, b"\xff", "notify"),
               letter(2, b"\xff", "risk", original=(1, 7)),
               # a record from before the position headers stands alone
               letter(3, b"\xff", "risk", original=None),
               letter(4, b"\xff", "notify", original=None)]  # fmt: skip
    assert [[x.offset for x in m.letters] for m in dead_messages(letters)] == [
        [0, 1], [2], [3], [4],
    ]  # fmt: skip


def test_a_whole_replay_sends_each_waiting_message_once_and_marks_all_its_records() -> None:
    event = declaration_event("hh-1").to_bytes()
    done = declaration_event("hh-2").to_bytes()
    letters = [letter(0, event, "risk-assistance"), letter(1, event, "notify"),
               letter(2, done, "notify", original=(0, 9), replayed=True)]  # fmt: skip
    chosen, already = _select(letters, Selection(), "x.dlq")
    assert [[x.offset for x in m.waiting] for m in chosen] == [[0, 1]] and already == []


def test_a_message_failed_again_after_a_replay_waits_once_more() -> None:
    event = declaration_event("hh-1").to_bytes()
    letters = [letter(0, event, "risk-assistance", replayed=True),
               letter(1, event, "notify", replayed=True),
               # the replayed copy sat at another offset of the topic
               letter(2, event, "risk-assistance", original=(0, 30))]  # fmt: skip
    [message] = dead_messages(letters)
    assert not message.handled and [x.offset for x in message.waiting] == [2]


def test_selecting_one_record_selects_its_message() -> None:
    event = declaration_event("hh-1").to_bytes()
    discarded = Mark(action="discarded", reason="r", by="ops", timestamp_ms=5)
    letters = [letter(0, event, "risk-assistance"), letter(1, event, "notify"),
               letter(2, b"\xff", "risk", original=(0, 8), mark=discarded)]  # fmt: skip
    chosen, already = _select(letters, Selection.parse(["0:1", "0:2"], []), "x.dlq")
    assert [[x.offset for x in m.waiting] for m in chosen] == [[0, 1]]
    assert [m.first.offset for m in already] == [2] and already[0].discarded
