"""Secrets must never reach a log line: the suite's captured output is scanned after every test.

A leak is a value the tests know to be secret (passwords, signing keys, encryption keys, POS
tokens), or anything shaped like a bearer token, found in any captured stdout, stderr or log
section. Tests register their own secret values with ``remember_secret``.
"""

import re
from collections.abc import Iterable

# A JWT (header.payload.signature, base64url); our tokens and any other bearer token.
_TOKEN_SHAPES = (
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"postgres(?:ql)?://[^:/\s]+:[^@\s]+@"),  # a connection URL carrying a password
)
_SECRETS: set[str] = set()
MIN_SECRET_LENGTH = 8  # shorter values would match by accident


def remember_secret(*values: str) -> None:
    for value in values:
        if len(value) >= MIN_SECRET_LENGTH:
            _SECRETS.add(value)


def leaks(text: str, secrets: Iterable[str] | None = None) -> list[str]:
    """What in ``text`` is a secret, named without repeating it."""
    found = [f"token-shaped value ({shape.pattern[:20]}...)" for shape in _TOKEN_SHAPES if shape.search(text)]
    for secret in _SECRETS if secrets is None else secrets:
        if secret in text:
            found.append(f"registered secret {secret[:3]}…({len(secret)} chars)")
    return found
