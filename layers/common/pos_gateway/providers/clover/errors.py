"""What can go wrong talking to Clover, as the crediting pipeline needs to tell it apart."""

from pos_gateway.providers.errors import RetryLater


class CloverError(Exception):
    """Base of every Clover failure. Messages never contain a token."""


class ProviderBusy(CloverError, RetryLater):
    """Clover rate-limited us (429), failed (5xx) or did not answer in time.

    Not a reason to sleep: the SQS handler makes the message visible again after
    ``retry_after_seconds``.
    """

    def __init__(self, message: str, retry_after_seconds: int, *, rate_limited: bool = False) -> None:
        RetryLater.__init__(self, message, retry_after_seconds)
        # True for a 429: Clover limits per token (one merchant); otherwise Clover itself is unwell.
        self.rate_limited = rate_limited


class CloverUnauthorized(CloverError):
    """Clover refused the merchant's access token (401): the connection needs a new token."""


class CloverNotFound(CloverError):
    """The object does not exist for this merchant (404)."""


class CloverApiError(CloverError):
    """Any other refusal or an unreadable answer."""


class CloverConnectionUnusable(CloverError):
    """No usable Clover connection for the merchant (missing, disconnected or token expired)."""
