"""The ingest queue between webhook ingest and crediting."""

from typing import Any

from pos_gateway.messages import CreditRequest


class IngestQueue:
    def __init__(self, queue_url: str, sqs_client: Any) -> None:
        self._queue_url = queue_url
        self._sqs = sqs_client

    def enqueue(self, request: CreditRequest) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=request.to_json())
