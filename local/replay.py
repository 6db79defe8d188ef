"""Replays webhook bodies through HTTP with real Square signatures."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from pos_gateway.providers.square import compute_signature

SIGNATURE_HEADER = "x-square-hmacsha256-signature"


@dataclass(frozen=True)
class Delivery:
    name: str
    status_code: int
    outcome: str  # accepted / duplicate / quarantined, or the error code of a 4xx


def signed_delivery(url: str, body: bytes, signature_key: str, timeout: float = 10) -> requests.Response:
    return requests.post(
        url,
        data=body,
        headers={
            "content-type": "application/json",
            SIGNATURE_HEADER: compute_signature(signature_key, url, body),
        },
        timeout=timeout,
    )


def fresh_body(path: Path) -> bytes:
    """The event as Square would send it now: created_at refreshed, everything else unchanged."""
    event = json.loads(path.read_text(encoding="utf-8"))
    event["created_at"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(event, separators=(",", ":")).encode("utf-8")


def replay(notification_url: str, signature_key: str, paths: list[Path]) -> list[Delivery]:
    deliveries = []
    for path in sorted(paths):
        response = signed_delivery(notification_url, fresh_body(path), signature_key)
        payload = response.json()
        outcome = payload.get("status") or payload.get("error", {}).get("code", "unknown")
        deliveries.append(Delivery(path.name, response.status_code, outcome))
    return deliveries


CLOVER_AUTH_HEADER = "X-Clover-Auth"


def clover_delivery(url: str, body: bytes, auth_code: str, timeout: float = 10) -> requests.Response:
    """POST a notification as Clover does: the app's auth code in X-Clover-Auth."""
    return requests.post(
        url,
        data=body,
        headers={"content-type": "application/json", CLOVER_AUTH_HEADER: auth_code},
        timeout=timeout,
    )
