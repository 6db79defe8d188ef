"""The SQS → Lambda event source mapping, emulated: long-poll, batch, invoke, delete.

Like the managed poller: up to ``MaximumConcurrency`` batches in flight, batches of at most
``BatchSize``; with ``ReportBatchItemFailures`` only the reported records stay on the queue,
otherwise a failed invocation leaves the whole batch. What stays becomes visible again after the
queue's visibility timeout, and SQS itself moves it to the dead-letter queue after
``maxReceiveCount`` receives.
"""

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.template import QueueSource

logger = logging.getLogger("local.event_source")


@dataclass
class SourceStats:
    batches: int = 0
    records: int = 0
    failed_records: int = 0
    failed_invocations: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, records: int, failed: int, invocation_failed: bool) -> None:
        with self._lock:
            self.batches += 1
            self.records += records
            self.failed_records += failed
            self.failed_invocations += int(invocation_failed)


class SqsEventSource:
    def __init__(
        self,
        source: QueueSource,
        queue_url: str,
        queue_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        sqs_client: Any,
        region: str = "us-east-1",
    ) -> None:
        self.source = source
        self.stats = SourceStats()
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._invoke = invoke
        self._sqs = sqs_client
        self._region = region
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, name=f"sqs-poller-{source.function}-{n}", daemon=True)
            for n in range(source.max_concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=self.source.batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if messages:
                    self._deliver(messages)
            except Exception:
                logger.exception("poller of %s failed; retrying", self.source.function)
                self._stopping.wait(1)

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(message) for message in messages]}
        try:
            response = self._invoke(event)
        except Exception:
            logger.exception("%s invocation failed; the batch stays on the queue", self.source.function)
            self.stats.add(len(messages), len(messages), invocation_failed=True)
            return
        failed = self._failed_ids(response)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(done[start : start + 10])
                ],
            )
        self.stats.add(len(messages), len(messages) - len(done), invocation_failed=False)

    def _failed_ids(self, response: Any) -> set[str]:
        if not self.source.report_batch_item_failures or not isinstance(response, dict):
            return set()
        return {str(item["itemIdentifier"]) for item in response.get("batchItemFailures", [])}

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody")
            or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }
