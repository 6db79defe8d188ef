"""Dead-letter queue redrive: messages go back to their source queue, receive → send → delete.

A message is deleted from the dead-letter queue only after its copy was accepted by the source
queue; one whose send failed stays and becomes visible again after the visibility timeout. The
worst case is therefore a duplicate (crediting is idempotent), never a loss.
"""

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(child=True)

SQS_BATCH_LIMIT = 10
# Attribute fields send_message_batch accepts (receive_message also returns empty list fields).
_ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


def redrive(
    sqs_client: Any,
    *,
    dead_letter_queue_url: str,
    source_queue_url: str,
    max_messages: int | None = None,
    wait_seconds: int = 1,
    visibility_timeout: int = 30,
) -> int:
    """Move messages until the dead-letter queue looks empty (or ``max_messages``); returns how many."""
    moved = 0
    while max_messages is None or moved < max_messages:
        wanted = SQS_BATCH_LIMIT if max_messages is None else min(SQS_BATCH_LIMIT, max_messages - moved)
        messages = sqs_client.receive_message(
            QueueUrl=dead_letter_queue_url,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        sent = _send(sqs_client, source_queue_url, messages)
        if sent:
            _delete(sqs_client, dead_letter_queue_url, sent)
        moved += len(sent)
        if len(sent) < len(messages):
            logger.warning(
                "some messages were not redriven; they stay in the dead-letter queue",
                extra={"failed": len(messages) - len(sent)},
            )
            break
    logger.info("redrive done", extra={"moved": moved})
    return moved


def _send(sqs_client: Any, queue_url: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages the source queue accepted."""
    entries = []
    for n, message in enumerate(messages):
        entry: dict[str, Any] = {"Id": str(n), "MessageBody": message["Body"]}
        attributes = {
            name: {key: value for key, value in attribute.items() if key in _ATTRIBUTE_FIELDS}
            for name, attribute in message.get("MessageAttributes", {}).items()
        }
        if attributes:
            entry["MessageAttributes"] = attributes
        entries.append(entry)
    response = sqs_client.send_message_batch(QueueUrl=queue_url, Entries=entries)
    return [messages[int(entry["Id"])] for entry in response.get("Successful", [])]


def _delete(sqs_client: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    response = sqs_client.delete_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
    )
    if response.get("Failed"):
        # Already sent: the message will be redriven again later, a duplicate crediting absorbs.
        logger.warning("deleting redriven messages failed", extra={"failed": len(response["Failed"])})
