"""Recovery without I/O: the error text noted on a raw event, the sweeper's settings."""

import pytest
from pydantic import BaseModel, ValidationError

from pos_gateway.recovery.failures import MAX_ERROR_LENGTH, error_summary
from pos_gateway.recovery.sweeper import SweepReport
from pos_gateway.settings import SweeperSettings


class _Amount(BaseModel):
    amount: int


def test_the_summary_is_the_type_and_the_first_line_only():
    error = RuntimeError(
        "duplicate key value violates unique constraint\nDETAIL: Key (email)=(a@b.c) exists."
    )

    assert error_summary(error) == "RuntimeError: duplicate key value violates unique constraint"


def test_a_validation_error_keeps_the_input_out():
    with pytest.raises(ValidationError) as excinfo:
        _Amount.model_validate({"amount": "alice@example.com"})

    summary = error_summary(excinfo.value)

    assert summary == "ValidationError: 1 validation error for _Amount"


@pytest.mark.parametrize(
    "message",
    [
        "connection failed: password=hunter2 host=db",
        "token: abc.def.ghi refused",
        "api_key=AKIA123 rejected",
        "signature_key = s3cr3t",
    ],
)
def test_secrets_in_a_message_are_masked(message):
    summary = error_summary(ValueError(message))

    assert not any(secret in summary for secret in ("hunter2", "abc.def.ghi", "AKIA123", "s3cr3t"))
    assert "***" in summary


def test_a_long_message_is_cut_and_an_empty_one_is_the_type():
    assert len(error_summary(ValueError("x" * 5000))) == MAX_ERROR_LENGTH
    assert error_summary(KeyError()) == "KeyError"


def test_sweeper_settings_have_the_documented_defaults(monkeypatch):
    monkeypatch.setenv("DB_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db")
    monkeypatch.setenv("INGEST_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/ingest")

    settings = SweeperSettings.from_env()

    assert (settings.grace_seconds, settings.max_sweeps, settings.batch_size, settings.max_batches) == (
        120,
        5,
        100,
        10,
    )
    monkeypatch.setenv("SWEEPER_BATCH_SIZE", "5000")
    with pytest.raises(ValidationError):
        SweeperSettings.from_env()


def test_the_report_speaks_camel_case():
    assert SweepReport(requeued=2, parked=1, enqueue_failures=3, batches=1).model_dump(by_alias=True) == {
        "requeued": 2,
        "parked": 1,
        "enqueueFailures": 3,
        "batches": 1,
    }
