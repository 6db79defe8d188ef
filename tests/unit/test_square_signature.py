"""Square webhook signatures: base64(HMAC-SHA256(key, notification URL + raw body))."""

import base64
import hashlib
import hmac

import pytest

from pos_gateway.providers.square import compute_signature, is_valid_signature

KEY = "sq-known-key"
URL = "https://example.com/webhooks/square"
BODY = b'{"merchant_id":"M1","type":"payment.created"}'
# Frozen once from hmac/hashlib/base64; guards against the verifier and the test drifting together.
KNOWN_SIGNATURE = "Zy8Zsub5ck/Aow4zsDGgz6TC1nH9I6eqIabek8XQj78="


def independent_signature(key: str, url: str, body: bytes) -> str:
    mac = hmac.new(key.encode("utf-8"), (url + body.decode("utf-8")).encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def test_signature_matches_an_independently_computed_vector():
    assert independent_signature(KEY, URL, BODY) == KNOWN_SIGNATURE
    assert compute_signature(KEY, URL, BODY) == KNOWN_SIGNATURE
    assert is_valid_signature(KEY, URL, BODY, KNOWN_SIGNATURE)


def test_signature_covers_non_ascii_bodies_byte_for_byte():
    body = '{"note":"café ☕"}'.encode()
    assert compute_signature(KEY, URL, body) == independent_signature(KEY, URL, body)


@pytest.mark.parametrize(
    "body",
    [
        BODY.replace(b"M1", b"M2"),
        BODY + b" ",
        BODY.replace(b":", b": "),  # re-serialized JSON with the same meaning
        b"",
    ],
    ids=["changed-value", "trailing-space", "reserialized", "empty"],
)
def test_rejects_a_changed_body(body):
    assert not is_valid_signature(KEY, URL, body, KNOWN_SIGNATURE)


@pytest.mark.parametrize(
    "url",
    [
        URL + "/",
        URL.replace("https://", "http://"),
        URL.upper(),
        URL + "?x=1",
        "",
    ],
    ids=["trailing-slash", "http", "case", "query", "empty"],
)
def test_rejects_a_signature_made_for_another_url(url):
    assert not is_valid_signature(KEY, url, BODY, KNOWN_SIGNATURE)


def test_rejects_a_wrong_key():
    assert not is_valid_signature("another-key", URL, BODY, KNOWN_SIGNATURE)
    assert not is_valid_signature(KEY, URL, BODY, independent_signature("another-key", URL, BODY))


@pytest.mark.parametrize("header", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_rejects_a_missing_or_empty_header(header):
    assert not is_valid_signature(KEY, URL, BODY, header)


@pytest.mark.parametrize(
    "header",
    [
        KNOWN_SIGNATURE[:-1],
        KNOWN_SIGNATURE.lower(),
        base64.b64encode(b"\x00" * 32).decode(),
        "sha256=" + KNOWN_SIGNATURE,
        "ünïcödé",
        KNOWN_SIGNATURE + KNOWN_SIGNATURE,
    ],
    ids=["truncated", "lowercased", "zeros", "prefixed", "non-ascii", "doubled"],
)
def test_rejects_near_misses_without_raising(header):
    assert not is_valid_signature(KEY, URL, BODY, header)


def test_an_empty_signature_key_never_validates():
    # A misconfigured (empty) key must not turn into "anyone who signs with '' gets in".
    assert not is_valid_signature("", URL, BODY, independent_signature("", URL, BODY))
