"""`holdline serve` sets the garbage collector for serving: startup objects frozen, young
objects collected every `gc_gen0_threshold` allocations; garbage cycles are still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from services import cli
from shared.service import tune_gc
from shared.settings import ServiceSettings


@pytest.fixture
def restored_gc() -> Iterator[tuple[int, int, int]]:
    """Whatever a test does to the collector is undone: the suite runs in one process."""
    before = gc.get_threshold()
    yield before
    gc.unfreeze()
    gc.set_threshold(*before)


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_startup_objects_are_frozen_and_young_ones_collected_less_often(
    restored_gc: tuple[int, int, int],
) -> None:
    tune_gc(50_000)
    assert gc.get_freeze_count() > 10_000, "the imported modules' objects are out of sight"
    assert gc.get_threshold() == (50_000, restored_gc[1], restored_gc[2])
    # a garbage cycle made while serving is still freed by a collection
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None


def test_zero_keeps_pythons_threshold(restored_gc: tuple[int, int, int]) -> None:
    tune_gc(0)
    assert gc.get_threshold() == restored_gc


def test_a_negative_threshold_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="gc_gen0_threshold"):
        ServiceSettings(gc_gen0_threshold=-1)


def test_serve_sets_the_collector_from_the_services_settings(
    restored_gc: tuple[int, int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Any] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: served.append(gc.get_threshold()))
    monkeypatch.setenv("HOLDLINE_INTAKE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/i.db")
    monkeypatch.setenv("HOLDLINE_INTAKE_GC_GEN0_THRESHOLD", "12345")
    result = CliRunner().invoke(cli.app, ["serve", "intake"])
    assert result.exit_code == 0, result.output
    assert served == [(12345, restored_gc[1], restored_gc[2])], "set before the server starts"
