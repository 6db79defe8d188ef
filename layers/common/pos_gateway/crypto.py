"""AES-256-GCM envelopes for credentials at rest, bound to their row and column.

Format: ``v1.<key id>.<base64url nonce>.<base64url ciphertext+tag>``. The associated data is
``<table>.<column>.<row id>``, so a ciphertext copied to another row or column fails to open.
Several keys may be loaded at once; new envelopes use the current one (rotation).
"""

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


class DecryptionError(Exception):
    """The envelope is malformed, its key is unknown, or it was tampered with or moved."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class CredentialCipher:
    keys: Mapping[str, bytes] = field(repr=False)
    current_key_id: str

    def __post_init__(self) -> None:
        if self.current_key_id not in self.keys:
            raise ValueError("current key id is not among the keys")
        for key_id, key in self.keys.items():
            if len(key) != 32 or "." in key_id:
                raise ValueError(f"key {key_id!r} must be 32 bytes and its id must not contain '.'")

    @staticmethod
    def associated_data(table: str, column: str, row_id: str) -> bytes:
        return f"{table}.{column}.{row_id}".encode()

    def encrypt(self, plaintext: str, *, table: str, column: str, row_id: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.current_key_id]).encrypt(
            nonce, plaintext.encode("utf-8"), self.associated_data(table, column, row_id)
        )
        return ".".join([_VERSION, self.current_key_id, _b64(nonce), _b64(sealed)])

    def decrypt(self, envelope: str, *, table: str, column: str, row_id: str) -> str:
        try:
            version, key_id, nonce, sealed = envelope.split(".")
        except ValueError:
            raise DecryptionError("malformed envelope") from None
        if version != _VERSION or key_id not in self.keys:
            raise DecryptionError(f"unknown envelope version or key id {key_id!r}")
        try:
            plaintext = AESGCM(self.keys[key_id]).decrypt(
                _unb64(nonce), _unb64(sealed), self.associated_data(table, column, row_id)
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("envelope does not open for this row and column") from exc
        return plaintext.decode("utf-8")


def cipher_from_secret(secret: Mapping[str, object]) -> CredentialCipher:
    """Build the cipher from its Secrets Manager secret.

    Shape: ``{"currentKeyId": "k2", "keys": {"k1": "<base64 32 bytes>", "k2": "..."}}``; older keys
    stay listed until every envelope sealed with them has been re-sealed.
    """
    keys = secret.get("keys")
    if not isinstance(keys, Mapping) or not keys:
        raise ValueError("encryption secret has no keys")
    return CredentialCipher(
        keys={str(key_id): base64.b64decode(str(key)) for key_id, key in keys.items()},
        current_key_id=str(secret.get("currentKeyId", "")),
    )
