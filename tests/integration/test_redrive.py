"""DLQ redrive against moto's SQS: receive → send → delete, never a delete before the send."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pos_gateway.recovery import redrive

REGION = "us-east-1"


@dataclass(frozen=True)
class Queues:
    sqs: Any
    source: str
    dead_letters: str


@pytest.fixture
def queues() -> Iterator[Queues]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        dead_letters = sqs.create_queue(QueueName="ingest-dlq")["QueueUrl"]
        source = sqs.create_queue(QueueName="ingest")["QueueUrl"]
        yield Queues(sqs, source, dead_letters)


class FailingSends:
    """An SQS client whose send_message_batch refuses some entries (or raises); the rest is real."""

    def __init__(self, sqs: Any, refuse: set[str] | None = None, raise_error: bool = False) -> None:
        self._sqs = sqs
        self._refuse = refuse or set()
        self._raise = raise_error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message_batch(self, **request: Any) -> dict[str, Any]:
        if self._raise:
            raise ConnectionError("SQS unreachable")
        refused = [entry for entry in request["Entries"] if entry["MessageBody"] in self._refuse]
        accepted = [entry for entry in request["Entries"] if entry["MessageBody"] not in self._refuse]
        response: dict[str, Any] = (
            self._sqs.send_message_batch(QueueUrl=request["QueueUrl"], Entries=accepted)
            if accepted
            else {"Successful": []}
        )
        response["Failed"] = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in refused]
        return response


def bodies(sqs: Any, queue_url: str) -> list[str]:
    found: list[str] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
        "Messages", []
    ):
        found.extend(message["Body"] for message in batch)
    return sorted(found)


def park(queues: Queues, count: int) -> list[str]:
    sent = [f'{{"n": {n}}}' for n in range(count)]
    for body in sent:
        queues.sqs.send_message(
            QueueUrl=queues.dead_letters,
            MessageBody=body,
            MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}},
        )
    return sorted(sent)


def test_every_message_goes_back_to_the_source_queue_with_its_attributes(queues):
    parked = park(queues, 23)

    moved = redrive(
        queues.sqs, dead_letter_queue_url=queues.dead_letters, source_queue_url=queues.source, wait_seconds=0
    )

    assert moved == 23
    message = queues.sqs.receive_message(QueueUrl=queues.source, MessageAttributeNames=["All"])["Messages"][0]
    assert message["MessageAttributes"]["origin"]["StringValue"] == "test"
    queues.sqs.change_message_visibility(
        QueueUrl=queues.source, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    assert bodies(queues.sqs, queues.source) == parked
    assert bodies(queues.sqs, queues.dead_letters) == []


def test_at_most_max_messages_are_moved(queues):
    park(queues, 12)

    moved = redrive(
        queues.sqs,
        dead_letter_queue_url=queues.dead_letters,
        source_queue_url=queues.source,
        max_messages=5,
        wait_seconds=0,
    )

    assert moved == 5
    assert len(bodies(queues.sqs, queues.source)) == 5
    assert len(bodies(queues.sqs, queues.dead_letters)) == 7


def test_a_message_the_source_queue_refuses_stays_in_the_dead_letter_queue(queues):
    park(queues, 3)
    refused = '{"n": 1}'

    moved = redrive(
        FailingSends(queues.sqs, refuse={refused}),
        dead_letter_queue_url=queues.dead_letters,
        source_queue_url=queues.source,
        wait_seconds=0,
        visibility_timeout=0,  # visible again at once, so the test can look for it
    )

    assert moved == 2
    assert bodies(queues.sqs, queues.source) == ['{"n": 0}', '{"n": 2}']
    assert bodies(queues.sqs, queues.dead_letters) == [refused]


def test_nothing_is_deleted_when_the_send_fails(queues):
    parked = park(queues, 4)

    with pytest.raises(ConnectionError):
        redrive(
            FailingSends(queues.sqs, raise_error=True),
            dead_letter_queue_url=queues.dead_letters,
            source_queue_url=queues.source,
            wait_seconds=0,
            visibility_timeout=0,
        )

    assert bodies(queues.sqs, queues.dead_letters) == parked
    assert bodies(queues.sqs, queues.source) == []


def test_an_empty_dead_letter_queue_moves_nothing(queues):
    assert (
        redrive(
            queues.sqs,
            dead_letter_queue_url=queues.dead_letters,
            source_queue_url=queues.source,
            wait_seconds=0,
        )
        == 0
    )
