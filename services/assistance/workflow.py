"""The measure lifecycle (rules §6) as a pure state machine."""

from __future__ import annotations

from typing import Literal

MeasureStatus = Literal["planned", "in_progress", "completed", "cancelled"]
ACTIVE: tuple[MeasureStatus, ...] = ("planned", "in_progress", "completed")
UNDER_WAY: tuple[MeasureStatus, ...] = ("planned", "in_progress")
TRANSITIONS: dict[str, tuple[MeasureStatus, ...]] = {
    "planned": ("in_progress", "cancelled"),
    "in_progress": ("completed", "cancelled"),
    "completed": (),
    "cancelled": (),
}


def transition_problem(current: str, target: str) -> str | None:
    """Why `current` may not move to `target`, or None when it may."""
    if target not in TRANSITIONS:
        return f"{target} is not a measure status"
    if target not in TRANSITIONS.get(current, ()):
        allowed = ", ".join(TRANSITIONS.get(current, ())) or "nothing (final)"
        return f"a {current} measure may move to {allowed}, not {target}"
    return None


def end_on_elimination(status: str, outlives: bool) -> MeasureStatus | None:
    """rules §6.7/§7: on elimination, unfinished measures end unless they outlive it."""
    if outlives or status not in UNDER_WAY:
        return None
    return "completed" if status == "in_progress" else "cancelled"


def roll_back(status: str) -> tuple[MeasureStatus, str | None] | None:
    """rules §5.4: a rejected green channel cancels what was not given; given help stays on
    record as temporary assistance."""
    if status == "planned":
        return "cancelled", None
    if status == "in_progress":
        return "completed", "temporary_assistance"
    if status == "completed":
        return "completed", "temporary_assistance"
    return None
