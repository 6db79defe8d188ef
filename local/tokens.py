"""Local stand-in for the API's JWT authorizer: a development signing key and its checks.

In the cloud, API Gateway validates tokens (issuer, audience, signature, expiry) and hands the
claims to the function in ``requestContext.authorizer.jwt``; the local gateway does the same
with PyJWT and a key made for this run, so the handlers see exactly the same event.
"""

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://auth.pos-gateway.local/"
AUDIENCE = "pos-gateway-local"


class Unauthorized(Exception):
    """No token, or one API Gateway's JWT authorizer would refuse."""


@dataclass(frozen=True)
class LocalIssuer:
    issuer: str = ISSUER
    audience: str = AUDIENCE
    _key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), repr=False
    )

    def token(self, claims: dict[str, Any], lifetime_seconds: int = 24 * 3600) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + lifetime_seconds,
            **claims,
        }
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": "local-1"})

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The claims of a valid ``Authorization: Bearer <jwt>`` header (raises Unauthorized)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(str(exc)) from exc
        return claims
