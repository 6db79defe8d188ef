"""Square webhook signatures, exactly as Square computes them.

``x-square-hmacsha256-signature`` is base64(HMAC-SHA256(signature key, notification URL + raw
body)). The URL must be the subscription's exact notification URL, and the body the exact bytes
received: any re-serialization breaks the signature.
"""

import base64
import hashlib
import hmac


def compute_signature(signature_key: str, notification_url: str, body: bytes) -> str:
    digest = hmac.new(
        signature_key.encode("utf-8"), notification_url.encode("utf-8") + body, hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_signature(signature_key: str, notification_url: str, body: bytes, signature: str | None) -> bool:
    if not signature or not signature_key:
        return False
    expected = compute_signature(signature_key, notification_url, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8", "replace"))
