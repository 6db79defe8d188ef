"""Failures that are nobody's fault and pass: the work is retried later, not parked."""


class RetryLater(Exception):
    """Try this again after ``retry_after_seconds``; the SQS handler sets the message's visibility."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
