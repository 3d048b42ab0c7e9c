"""Risk use cases for signals: evaluate the household, open or merge its case, green channel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.risk.config import RiskSettings
from services.risk.signal_batch import Origin, SignalBatch
from services.risk.signals import (
    Signal,
    from_cadre_report,
    from_declaration,
    from_feed,
    from_feed_record,
    from_registry,
)
from shared.db import UnitOfWork
from shared.events import (
    CadreReportSubmitted,
    DeclarationSubmitted,
    Envelope,
    FeedRecordReceived,
    FeedRecordsReceived,
    Payload,
    RegistryRecordReceived,
    new_event,
)

# rules §4 channels 1-3 and the registry (§1): how each signal type reads
SIGNAL_READERS: dict[str, Callable[[Any], Signal]] = {
    "DeclarationSubmitted": from_declaration,
    "CadreReportSubmitted": from_cadre_report,
    "FeedRecordReceived": from_feed,
    "RegistryRecordReceived": from_registry,
}


async def publish(
    uow: UnitOfWork, payload: Payload, *, household_id: str, correlation_id: str, topic: str
) -> None:
    """Record an outgoing cases event on the outbox (published after commit)."""
    envelope = new_event(
        payload,
        household_id=household_id,
        source="risk",
        correlation_id=correlation_id,
        clock=uow.clock,
    )
    await uow.record(envelope, topic)


async def process_signals(
    *, uow: UnitOfWork, items: list[tuple[Origin, Signal]], settings: RiskSettings
) -> None:
    """rules §4: evaluate each signal's household in order; reads and writes in bulk."""
    if not items:
        return
    batch = SignalBatch(uow, settings)
    await batch.load({origin.household_id for origin, _ in items})
    for origin, signal in items:
        batch.process(origin, signal)
    await batch.flush(settings.topic("cases"))


async def process_signal(
    *, uow: UnitOfWork, event: Envelope[Any], signal: Signal, settings: RiskSettings
) -> None:
    """One signal (a batch of one)."""
    await process_signals(uow=uow, items=[(Origin.of(event), signal)], settings=settings)


def signals_of(event: Envelope[Any]) -> list[tuple[Origin, Signal]]:
    """The signals an event carries: one, or one per record of a feed slice."""
    if isinstance(event.payload, FeedRecordsReceived):
        slice_ = event.payload
        return [
            (Origin.of_record(event, record), from_feed_record(slice_, record))
            for record in slice_.records
        ]
    if event.event_type in SIGNAL_READERS:
        return [(Origin.of(event), SIGNAL_READERS[event.event_type](event.payload))]
    return []


async def on_signal_batch(
    *, uow: UnitOfWork, events: list[Envelope[Any]], settings: RiskSettings
) -> None:
    """A consumed batch of signals of any type, in order, in one transaction."""
    items = [item for event in events for item in signals_of(event)]
    await process_signals(uow=uow, items=items, settings=settings)


async def on_feed_slice(
    *, uow: UnitOfWork, event: Envelope[FeedRecordsReceived], settings: RiskSettings
) -> None:
    """rules §4 channel 3, §8: a slice of a department feed, its records in order."""
    await process_signals(uow=uow, items=signals_of(event), settings=settings)


async def on_declaration(
    *, uow: UnitOfWork, event: Envelope[DeclarationSubmitted], settings: RiskSettings
) -> None:
    """rules §4 channel 1: a self-declaration opens a case (the clock starts) or merges."""
    await process_signal(
        uow=uow, event=event, signal=from_declaration(event.payload), settings=settings
    )


async def on_cadre_report(
    *, uow: UnitOfWork, event: Envelope[CadreReportSubmitted], settings: RiskSettings
) -> None:
    """rules §4 channel 2: a cadre report, with members, income and guarantees."""
    await process_signal(
        uow=uow, event=event, signal=from_cadre_report(event.payload), settings=settings
    )


async def on_feed_record(
    *, uow: UnitOfWork, event: Envelope[FeedRecordReceived], settings: RiskSettings
) -> None:
    """rules §4 channel 3, §8: one department feed record."""
    await process_signal(uow=uow, event=event, signal=from_feed(event.payload), settings=settings)


async def on_registry_record(
    *, uow: UnitOfWork, event: Envelope[RegistryRecordReceived], settings: RiskSettings
) -> None:
    """rules §1: the registry sets the household's members, baseline and income."""
    await process_signal(
        uow=uow, event=event, signal=from_registry(event.payload), settings=settings
    )
