"""The RPApos sync tasks' edges, without I/O: their inputs (and the sample events), the error a
Catch records, and failures named as the state machine's Retry expects."""

import json
import uuid
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import ValidationError

from pos_gateway.db import DatabaseUnavailable
from pos_gateway.providers.errors import RetryLater
from pos_gateway.rpapos.errors import BadCredentials, RpaposUnavailable
from pos_gateway.rpapos.tasks import TaskError, TaskInput, transient_as_retry_later
from pos_gateway.settings import RpaposSchedulerSettings, RpaposSyncSettings

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize("name", ["attach", "step", "park", "finalize", "fail"])
def test_the_sample_task_inputs_are_task_inputs(name: str) -> None:
    task = TaskInput.model_validate_json((EVENTS / "rpapos_sync" / f"{name}.json").read_bytes())
    assert task.action == name


def test_the_sample_execution_input_names_a_run() -> None:
    execution_input = json.loads((EVENTS / "rpapos_sync" / "execution_input.json").read_text())
    assert uuid.UUID(execution_input["sync_run_id"])


def test_a_task_input_is_small_and_checked() -> None:
    run = str(uuid.uuid4())
    with pytest.raises(ValidationError):
        TaskInput.model_validate({"action": "delete", "sync_run_id": run})
    with pytest.raises(ValidationError):
        TaskInput.model_validate({"action": "step", "sync_run_id": "not-a-uuid"})
    # What else a state carries is ignored; the token never shows in a repr.
    task = TaskInput.model_validate(
        {"action": "park", "sync_run_id": run, "task_token": "secret", "steps": 3}
    )
    assert "secret" not in repr(task)


def test_a_caught_lambda_error_reads_as_its_name_and_message() -> None:
    cause = json.dumps(
        {"errorType": "BadCredentials", "errorMessage": "RPApos refused the login", "stackTrace": []}
    )
    assert TaskError.model_validate({"Error": "BadCredentials", "Cause": cause}).describe() == (
        "BadCredentials: RPApos refused the login"
    )
    # A cause that is not a function's error (a Pass state's, a service's) is kept as it is.
    assert TaskError.model_validate({"Error": "UnexpectedOutcome", "Cause": "state sideways"}).describe() == (
        "UnexpectedOutcome: state sideways"
    )
    assert TaskError.model_validate({"Error": "States.Timeout"}).describe() == "States.Timeout"
    assert TaskError().describe() == "States.TaskFailed"


@pytest.mark.parametrize(
    "error",
    [
        RpaposUnavailable("RPApos answered 503", 60),
        DatabaseUnavailable("connection refused"),
        GetParameterError("Rate exceeded"),
        RetryLater("x", 5),
    ],
    ids=["rpapos", "database", "secrets", "itself"],
)
def test_what_passes_with_time_leaves_as_retry_later_itself(error: Exception) -> None:
    with pytest.raises(RetryLater) as caught, transient_as_retry_later():
        raise error
    assert type(caught.value) is RetryLater  # Lambda reports errorType "RetryLater": the Retry's name
    assert caught.value.retry_after_seconds > 0


def test_the_rest_leaves_as_it_is() -> None:
    with pytest.raises(BadCredentials), transient_as_retry_later():
        raise BadCredentials("RPApos refused the login")


def test_the_settings_read_the_templates_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_SECRET_ARN", "arn:db")
    monkeypatch.setenv("ENCRYPTION_KEYS_SECRET_ARN", "arn:keys")
    monkeypatch.setenv("RPAPOS_BASE_URL_TEMPLATE", "http://127.0.0.1:8080/t/{subdomain}")
    monkeypatch.setenv("RPAPOS_SOAP_ENDPOINT", "")
    monkeypatch.setenv("RPAPOS_PAGE_SIZE", "4")
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:s")
    sync = RpaposSyncSettings.from_env()
    assert sync.rpapos_base_url_template == "http://127.0.0.1:8080/t/{subdomain}"
    assert sync.rpapos_soap_endpoint is None
    assert sync.page_size == 4
    assert RpaposSchedulerSettings.from_env().max_runs == 50
    monkeypatch.setenv("RPAPOS_BASE_URL_TEMPLATE", "https://fixed.2rpa.com")
    with pytest.raises(ValidationError):
        RpaposSyncSettings.from_env()
