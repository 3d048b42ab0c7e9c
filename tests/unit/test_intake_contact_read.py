"""rules §9: a submission's contact as officials read it: the phone decrypted, IDs only masked."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from services.demo import demo_declarations
from services.intake import handlers
from services.intake.contact import contact_of
from services.intake.pii import Vault
from services.intake.schemas import DeclarationCreate
from shared.clock import FrozenClock

VAULT = Vault("unit-test-secret")
BODY = demo_declarations(1, seed=11)[0] | {"description": "父亲住院", "medical_spending": 30000}


def _stored() -> dict[str, object]:
    prepared = handlers.prepare_declaration(
        declaration=DeclarationCreate.model_validate(BODY), idempotency_key=None, vault=VAULT,
        signals_topic="signals", clock=FrozenClock(datetime(2026, 3, 1, tzinfo=UTC)),
    )  # fmt: skip
    stored: dict[str, object] = prepared.row["body"]
    return stored


def test_a_declaration_gives_the_phone_in_clear_and_the_resident_id_masked() -> None:
    contact = contact_of("declaration", _stored(), VAULT)
    assert contact["phone"] == BODY["phone"]
    assert contact["declarant_name"] == BODY["declarant_name"]
    assert contact["description"] == "父亲住院"
    assert contact["amounts"]["medical_spending"] == 30000
    text = json.dumps(contact, ensure_ascii=False)
    assert BODY["declarant_id"][:17] not in text
    assert "ciphertext" not in text and "hash" not in text


def test_a_phone_stored_under_another_secret_is_null_and_logged_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        contact = contact_of("declaration", _stored(), Vault("another-secret"))
    assert (
        contact["phone"] is None
        and contact["phone_masked"] == BODY["phone"][:3] + "****" + (BODY["phone"][-4:])
    )
    assert caplog.records and BODY["phone"] not in caplog.text
