"""Resident IDs at rest (rules §9): a keyed hash for matching, Fernet ciphertext for display."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.fernet import Fernet

from shared.identity import mask_resident_id


@dataclass(frozen=True)
class ProtectedId:
    """A resident ID as intake keeps it: never in clear."""

    hash: str
    masked: str
    ciphertext: str


class Vault:
    """Hashes, masks and encrypts resident IDs with keys derived from the service secret."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        # keyed once, copied per value: the same digest as shared.identity.keyed_hash, cheaper
        self._hmac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        # a distinct key from the hash key, so one leaked derivation does not reveal the other
        digest = hashlib.sha256(b"holdline-intake-fernet:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def hash(self, resident_id: str) -> str:
        """The keyed hash used for matching a person across channels."""
        mac = self._hmac.copy()
        mac.update(resident_id.encode())
        return mac.hexdigest()

    def protect(self, resident_id: str) -> ProtectedId:
        """Hash, mask and encrypt one resident ID."""
        return ProtectedId(
            self.hash(resident_id), mask_resident_id(resident_id), self.encrypt(resident_id)
        )

    def encrypt(self, text: str) -> str:
        """Fernet ciphertext (authenticated) of any sensitive text."""
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Clear text of a ciphertext made by encrypt()."""
        return self._fernet.decrypt(token.encode()).decode()


def household_key(id_hash: str) -> str:
    """The household id used when a channel names a person but not a household."""
    return f"hh-{id_hash[:20]}"
