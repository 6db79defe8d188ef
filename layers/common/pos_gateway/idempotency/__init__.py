"""Idempotency on Postgres: a Powertools persistence layer and work done once per key."""

from pos_gateway.idempotency.once import Once, OnceRunner, OnceSpec, run_once
from pos_gateway.idempotency.persistence import DEFAULT_TTL, PostgresPersistenceLayer, delete_expired
from pos_gateway.idempotency.provider_keys import ProviderKeyPersistenceLayer, ProviderKeyRunners

__all__ = [
    "DEFAULT_TTL",
    "Once",
    "OnceRunner",
    "OnceSpec",
    "PostgresPersistenceLayer",
    "ProviderKeyPersistenceLayer",
    "ProviderKeyRunners",
    "delete_expired",
    "run_once",
]
