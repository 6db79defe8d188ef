"""AWS for the local stack: a moto server on loopback, reached through AWS_ENDPOINT_URL.

Handlers use plain boto3; the endpoint variable (honoured by every boto3 client) is the only
difference from the cloud, and it lives in the environment, not in the code.
"""

import json
import re
import socket
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from local.template import BucketSpec, QueueSpec, SecretSpec, resolve

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's account


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalAws:
    endpoint_url: str
    server: ThreadedMotoServer

    @classmethod
    def start(cls, host: str = "127.0.0.1") -> "LocalAws":
        port = free_port(host)
        server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        server.start()
        return cls(f"http://{host}:{port}", server)

    def stop(self) -> None:
        self.server.stop()

    def environment(self) -> dict[str, str]:
        """What a process needs to talk to this moto server with boto3."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }

    def client(self, service: str) -> Any:
        env = self.environment()
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    def create_queues(
        self, specs: dict[str, QueueSpec], prefix: str, visibility_timeout: int | None = None
    ) -> dict[str, tuple[str, str]]:
        """Create the template's queues (dead-letter queues first); returns id → (url, arn)."""
        sqs = self.client("sqs")
        created: dict[str, tuple[str, str]] = {}
        for spec in sorted(specs.values(), key=lambda s: s.dead_letter_queue is not None):
            attributes = {"VisibilityTimeout": str(visibility_timeout or spec.visibility_timeout)}
            if spec.dead_letter_queue:
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": created[spec.dead_letter_queue][1],
                        "maxReceiveCount": spec.max_receive_count,
                    }
                )
            url = sqs.create_queue(QueueName=f"{prefix}-{spec.name}", Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            created[spec.name] = (url, arn)
        return created

    def create_secret(self, spec: SecretSpec, value: dict[str, Any], references: dict[str, str]) -> str:
        name = (
            resolve(spec.name, references)
            if spec.name
            else f"{references['AWS::StackName']}/{spec.logical_id}"
        )
        arn: str = self.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))[
            "ARN"
        ]
        return arn

    def create_bucket(self, spec: BucketSpec, references: dict[str, str]) -> tuple[str, str]:
        """Create the template's bucket; returns (name, ARN). Unnamed: ``{stack}-{logical id}``
        made a valid bucket name (lower case, no underscore, at most 63 characters), as
        CloudFormation would make one up."""
        if spec.name:
            name = resolve(spec.name, references)
        else:
            made_up = f"{references['AWS::StackName']}-{spec.logical_id}".lower()
            name = re.sub(r"[^a-z0-9-]+", "-", made_up)[:63].strip("-")
        self.client("s3").create_bucket(Bucket=name)
        return name, f"arn:aws:s3:::{name}"
