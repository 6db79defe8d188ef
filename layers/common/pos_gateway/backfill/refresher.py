"""Square OAuth token refresh: access tokens expiring soon are renewed and sealed again.

Square access tokens live 30 days; with the code flow, ObtainToken(grant_type=refresh_token)
returns a new access token and the same refresh token. Both are sealed again with the current
key (AES-GCM bound to their row and column), so the refresh also completes a key rotation.

A refusal from Square (401 or another 4xx: revoked, bad client credentials) takes the
connection out of service as ``token_expired`` with the reason in ``last_error``. A transient
failure (429, 5xx, timeout) only records the error while the token still works, so the next
daily run tries again; once the token has run out it is ``token_expired`` as well.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from pos_gateway.backfill.repository import DueToken, OutOfService, TokenStore
from pos_gateway.crypto import CredentialCipher, DecryptionError
from pos_gateway.providers.square.api import ObtainedToken, SquareApi, SquareApiError

logger = Logger(child=True)

CONNECTIONS_TABLE = "pos.pos_connections"
ACCESS_TOKEN_COLUMN = "access_token_enc"  # noqa: S105 (a column name)
REFRESH_TOKEN_COLUMN = "refresh_token_enc"  # noqa: S105 (a column name)


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """The Square application's OAuth credentials (secret ``{"clientId", "clientSecret"}``)."""

    client_id: str
    client_secret: str = field(repr=False)

    @classmethod
    def from_secret(cls, secret: Mapping[str, object]) -> "OAuthClient":
        client_id, client_secret = secret.get("clientId"), secret.get("clientSecret")
        if (
            not isinstance(client_id, str)
            or not client_id
            or not isinstance(client_secret, str)
            or not client_secret
        ):
            raise ValueError("the Square OAuth secret needs non-empty clientId and clientSecret")
        return cls(client_id, client_secret)


class RefreshReport(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    due: int = 0
    refreshed: int = 0
    failed: int = 0
    token_expired: int = Field(default=0, alias="tokenExpired")
    superseded: int = 0  # the connection's token changed meanwhile (reconnected): left as it is
    stopped_early: bool = Field(default=False, alias="stoppedEarly")


@dataclass
class _Tally:
    due: int = 0
    refreshed: int = 0
    failed: int = 0
    token_expired: int = 0
    superseded: int = 0
    stopped_early: bool = False


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    window: timedelta
    max_connections: int
    reserve_milliseconds: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


def _no_deadline() -> int:
    return 2**31


class TokenRefresher:
    def __init__(
        self,
        store: TokenStore,
        api: SquareApi,
        cipher: Callable[[], CredentialCipher],
        oauth: Callable[[], OAuthClient],
        policy: RefreshPolicy,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._api = api
        self._cipher = cipher
        self._oauth = oauth
        self._policy = policy
        self._clock = clock

    def refresh_due(self, time_left_ms: Callable[[], int] = _no_deadline) -> RefreshReport:
        tally = _Tally()
        due = self._store.due(self._clock() + self._policy.window, self._policy.max_connections)
        tally.due = len(due)
        if due:
            cipher, oauth = self._cipher(), self._oauth()
            for token in due:
                if time_left_ms() < self._policy.reserve_milliseconds:
                    tally.stopped_early = True
                    logger.warning("refresh stopped: the invocation's time is nearly up")
                    break
                self._refresh(token, cipher, oauth, tally)
        report = RefreshReport(**tally.__dict__)
        logger.info("token refresh done", extra=report.model_dump())
        return report

    def _refresh(self, token: DueToken, cipher: CredentialCipher, oauth: OAuthClient, tally: _Tally) -> None:
        row_id = str(token.connection_id)
        log = {"connection_id": row_id, "token_expires_at": token.token_expires_at.isoformat()}
        try:
            refresh_token = cipher.decrypt(
                token.refresh_token_enc, table=CONNECTIONS_TABLE, column=REFRESH_TOKEN_COLUMN, row_id=row_id
            )
        except DecryptionError:
            logger.error("refresh token does not decrypt; connection set to error", extra=log)
            self._fail(token, tally, "refresh token does not decrypt with the loaded keys", "error")
            return
        try:
            obtained = self._api.refresh_access_token(
                client_id=oauth.client_id, client_secret=oauth.client_secret, refresh_token=refresh_token
            )
        except SquareApiError as exc:
            out_of_service = not exc.retryable or token.token_expires_at <= self._clock()
            logger.warning(
                "token refresh failed",
                extra={**log, "error": str(exc), "out_of_service": out_of_service},
            )
            self._fail(
                token, tally, f"token refresh failed: {exc}", "token_expired" if out_of_service else None
            )
            return
        if self._store_refreshed(token, cipher, obtained, refresh_token):
            tally.refreshed += 1
            logger.info("token refreshed", extra={**log, "new_expires_at": obtained.expires_at.isoformat()})
        else:
            tally.superseded += 1
            logger.warning("connection changed during the refresh; its new tokens are kept", extra=log)

    def _store_refreshed(
        self, token: DueToken, cipher: CredentialCipher, obtained: ObtainedToken, refresh_token: str
    ) -> bool:
        row_id = str(token.connection_id)
        return self._store.store_refreshed(
            token.connection_id,
            previous_access_token_enc=token.access_token_enc,
            access_token_enc=cipher.encrypt(
                obtained.access_token, table=CONNECTIONS_TABLE, column=ACCESS_TOKEN_COLUMN, row_id=row_id
            ),
            # The code flow returns the same refresh token; sealed again with the current key.
            refresh_token_enc=cipher.encrypt(
                obtained.refresh_token or refresh_token,
                table=CONNECTIONS_TABLE,
                column=REFRESH_TOKEN_COLUMN,
                row_id=row_id,
            ),
            token_expires_at=obtained.expires_at,
        )

    def _fail(self, token: DueToken, tally: _Tally, error: str, status: OutOfService | None) -> None:
        tally.failed += 1
        if status == "token_expired":
            tally.token_expired += 1
        self._store.record_failure(token.connection_id, error=error, status=status)
