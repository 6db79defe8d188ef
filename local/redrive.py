"""`make redrive`: move the running local stack's dead-letter messages back to the ingest queue.

Reads `.local/stack.json` (written by `make run`) for the moto endpoint and the queue URLs.
"""

import argparse
import json
import sys
from pathlib import Path

import boto3

from pos_gateway.recovery import redrive

STACK_FILE = Path(__file__).resolve().parent.parent / ".local" / "stack.json"


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if not args.stack_file.exists():
        print(f"{args.stack_file} not found: start the local stack first (make run)", file=sys.stderr)
        return 1
    stack = json.loads(args.stack_file.read_text(encoding="utf-8"))
    sqs = boto3.client(
        "sqs",
        endpoint_url=stack["aws_endpoint_url"],
        region_name=stack.get("aws_region", "us-east-1"),
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto accepts any credentials
    )
    dead_letter_queue, source = stack["dead_letter_queue_url"], stack["ingest_queue_url"]
    moved = redrive(
        sqs, dead_letter_queue_url=dead_letter_queue, source_queue_url=source, max_messages=args.max
    )
    print(f"moved {moved} message(s) from {dead_letter_queue} back to {source}")
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make redrive", description=__doc__)
    parser.add_argument("--stack-file", type=Path, default=STACK_FILE, help="the running stack's description")
    parser.add_argument("--max", type=int, default=None, help="move at most this many messages")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
