"""AES-256-GCM credential envelopes: bound to row and column, tamper-evident, rotatable."""

import base64
import os

import pytest

from pos_gateway.crypto import CredentialCipher, DecryptionError, cipher_from_secret

K1 = os.urandom(32)
K2 = os.urandom(32)
WHERE = {"table": "pos.pos_connections", "column": "access_token_enc", "row_id": "row-1"}


def cipher(keys: dict[str, bytes] | None = None, current: str = "k1") -> CredentialCipher:
    return CredentialCipher(keys=keys or {"k1": K1}, current_key_id=current)


def sealed(plaintext: str = "sq0atp-secret-token", **where: str) -> str:
    return cipher().encrypt(plaintext, **{**WHERE, **where})


@pytest.mark.parametrize("plaintext", ["sq0atp-secret-token", "", "ünïcödé ☕", "x" * 10_000])
def test_round_trip(plaintext):
    envelope = cipher().encrypt(plaintext, **WHERE)
    assert cipher().decrypt(envelope, **WHERE) == plaintext


def test_envelope_format_and_fresh_nonce():
    first, second = sealed(), sealed()
    assert first != second  # a new nonce every time
    version, key_id, *_ = first.split(".")
    assert (version, key_id) == ("v1", "k1")
    assert "sq0atp" not in first


@pytest.mark.parametrize(
    "moved_to",
    [
        {"row_id": "row-2"},
        {"column": "refresh_token_enc"},
        {"table": "rpapos.rpapos_connection"},
        {"row_id": "row-1 "},
        {"table": "pos.pos_connections.access_token_enc", "column": "row", "row_id": "1"},
    ],
    ids=["other-row", "other-column", "other-table", "near-row", "shifted-parts"],
)
def test_a_moved_ciphertext_does_not_open(moved_to):
    envelope = sealed()
    with pytest.raises(DecryptionError):
        cipher().decrypt(envelope, **{**WHERE, **moved_to})


def flip(text: str, index: int) -> str:
    """Flip one bit of the decoded bytes (editing base64 text may only touch padding bits)."""
    data = bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    data[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


@pytest.mark.parametrize("part", [2, 3], ids=["nonce", "ciphertext"])
@pytest.mark.parametrize("position", [0, -1, 5])
def test_tampering_fails(part, position):
    parts = sealed().split(".")
    parts[part] = flip(parts[part], position)
    with pytest.raises(DecryptionError):
        cipher().decrypt(".".join(parts), **WHERE)


@pytest.mark.parametrize(
    "envelope_of",
    [
        lambda e: e[:-4],
        lambda e: e.rsplit(".", 1)[0],
        lambda e: e + ".extra",
        lambda e: "v2" + e[2:],
        lambda e: "",
        lambda e: e.replace(".", "", 1),
        lambda e: e.rsplit(".", 1)[0] + ".!!notbase64!!",
    ],
    ids=["truncated", "missing-part", "extra-part", "other-version", "empty", "joined", "bad-base64"],
)
def test_malformed_envelopes_fail_cleanly(envelope_of):
    with pytest.raises(DecryptionError):
        cipher().decrypt(envelope_of(sealed()), **WHERE)


def test_unknown_key_id_fails():
    envelope = sealed()
    with pytest.raises(DecryptionError, match="key id"):
        cipher({"k2": K2}, "k2").decrypt(envelope, **WHERE)


def test_a_key_id_swapped_to_another_loaded_key_fails():
    version, _, nonce, body = sealed().split(".")
    both = cipher({"k1": K1, "k2": K2}, "k1")
    with pytest.raises(DecryptionError):
        both.decrypt(".".join([version, "k2", nonce, body]), **WHERE)


def test_rotation_keeps_old_envelopes_open_and_seals_with_the_current_key():
    old_envelope = cipher({"k1": K1}, "k1").encrypt("old-token", **WHERE)
    rotated = cipher({"k1": K1, "k2": K2}, "k2")
    assert rotated.decrypt(old_envelope, **WHERE) == "old-token"

    new_envelope = rotated.encrypt("new-token", **WHERE)
    assert new_envelope.split(".")[1] == "k2"
    assert rotated.decrypt(new_envelope, **WHERE) == "new-token"
    # A reader that only has the retired key cannot open what the new key sealed.
    with pytest.raises(DecryptionError):
        cipher({"k1": K1}, "k1").decrypt(new_envelope, **WHERE)


@pytest.mark.parametrize(
    ("keys", "current"),
    [
        ({"k1": K1}, "k2"),
        ({"k1": os.urandom(16)}, "k1"),
        ({"k1": os.urandom(33)}, "k1"),
        ({"k.1": K1}, "k.1"),
        ({"k1": K1, "bad": b""}, "k1"),
    ],
    ids=["current-not-loaded", "aes-128-key", "long-key", "dot-in-id", "empty-extra-key"],
)
def test_cipher_refuses_bad_key_material(keys, current):
    with pytest.raises(ValueError, match="key"):
        CredentialCipher(keys=keys, current_key_id=current)


def test_keys_do_not_leak_through_repr():
    assert K1.hex() not in repr(cipher())
    assert repr(K1) not in repr(cipher())


def test_a_cipher_is_built_from_its_secret() -> None:
    import base64 as b64

    from pos_gateway.crypto import cipher_from_secret

    old, new = bytes(range(32)), bytes(range(1, 33))
    secret = {
        "currentKeyId": "k2",
        "keys": {"k1": b64.b64encode(old).decode(), "k2": b64.b64encode(new).decode()},
    }

    cipher = cipher_from_secret(secret)
    sealed = cipher.encrypt("token", table="t", column="c", row_id="1")

    assert sealed.split(".")[1] == "k2"
    assert cipher.decrypt(sealed, table="t", column="c", row_id="1") == "token"


def test_a_secret_without_keys_is_refused() -> None:
    with pytest.raises(ValueError, match="no keys"):
        cipher_from_secret({"currentKeyId": "k1", "keys": {}})


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()
