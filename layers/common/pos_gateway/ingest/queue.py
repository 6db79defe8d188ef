"""The ingest queue between webhook ingest and crediting."""

from typing import Any

from aws_lambda_powertools import Logger

from pos_gateway.messages import CreditRequest

logger = Logger(child=True)


class IngestQueue:
    def __init__(self, queue_url: str, sqs_client: Any) -> None:
        self._queue_url = queue_url
        self._sqs = sqs_client

    def enqueue(self, request: CreditRequest) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=request.to_json())

    def enqueue_or_leave(self, request: CreditRequest) -> bool:
        """Enqueue; on failure, log and leave the stored raw event to the outbox sweeper."""
        try:
            self.enqueue(request)
        except Exception:
            # The raw row is committed and unprocessed: the outbox sweeper enqueues it later.
            logger.exception(
                "enqueue failed; left for the sweeper", extra={"raw_event_id": str(request.raw_event_id)}
            )
            return False
        return True
