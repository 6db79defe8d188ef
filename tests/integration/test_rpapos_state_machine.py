"""The RPApos sync state machine (statemachine/rpapos_sync.asl.json): checked statically, and run by
moto's ASL interpreter with its Lambda tasks answered by a scripted stand-in of the sync function
(the e2e tests run it with the real handler, database and fake RPApos)."""

import io
import json
import threading
import time
import uuid
import zipfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import template as cfn
from local.lambda_runtime import InvocationError
from local.stepfunctions import (
    MOTO_CONFIG,
    install_lambda_router,
    patch_start_execution_parameters,
    route_function,
    substitute,
    unroute_function,
    wait_for_execution,
)
from tests.helpers import REPO_ROOT

ASL = REPO_ROOT / "statemachine" / "rpapos_sync.asl.json"
STATE_MACHINE = "RpaposSyncStateMachine"
HISTORY_LIMIT = 25_000
TASK_RESOURCES = {
    "arn:aws:states:::lambda:invoke",
    "arn:aws:states:::lambda:invoke.waitForTaskToken",
    "arn:aws:states:::states:startExecution",
}
# What the tasks may be given: ids, the callback token, the caught error. Never records.
PAYLOAD_FIELDS = {"action", "tenant_id.$", "sync_run_id.$", "execution_arn.$", "task_token.$", "error.$"}
OUTCOME_FIELDS = {"state.$", "entity.$", "page.$", "parent.$", "tenant_id.$"}
SMALL = 1024  # bytes: every state's input and output


def definition() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ASL.read_text(encoding="utf-8"))
    return loaded


def states() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = definition()["States"]
    return found


def targets(state: dict[str, Any]) -> list[str]:
    found = [state[key] for key in ("Next", "Default") if key in state]
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [catcher["Next"] for catcher in state.get("Catch", [])]
    return found


def retries(state: dict[str, Any]) -> int:
    """The most retries a task can take: every retrier's attempts spent."""
    return sum(int(retrier.get("MaxAttempts", 3)) for retrier in state.get("Retry", []))


def worst_task_events(state: dict[str, Any]) -> int:
    """Entered and exited, and per attempt scheduled + started + succeeded or failed (a callback
    task adds its TaskSubmitted)."""
    submitted = 1 if state["Resource"].endswith(".waitForTaskToken") else 0
    return 2 + 3 * (1 + retries(state)) + submitted


# ---------------------------------------------------------------- static checks


def test_every_target_exists_and_every_state_is_reachable() -> None:
    document = definition()
    found = states()
    assert document["StartAt"] in found
    for name, state in found.items():
        for target in targets(state):
            assert target in found, f"{name} -> {target}"
    reached, pending = set(), [document["StartAt"]]
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending.extend(targets(found[name]))
    assert reached == set(found)
    ends = {name for name, state in found.items() if state["Type"] in ("Succeed", "Fail") or state.get("End")}
    assert ends == {"Completed", "Cancelled", "Continued", "Failed"}


def test_tasks_call_only_the_sync_function_and_the_state_machine_itself() -> None:
    template = cfn.load()
    substitutions = template.state_machines[STATE_MACHINE].substitutions
    assert substitutions == {"RpaposSyncFunctionArn": {"Fn::GetAtt": ["RpaposSyncFunction", "Arn"]}}
    assert template.functions["RpaposSyncFunction"].code_uri == REPO_ROOT / "functions" / "rpapos_sync"
    assert template.state_machines[STATE_MACHINE].definition_path == ASL
    for name, state in states().items():
        if state["Type"] != "Task":
            continue
        assert state["Resource"] in TASK_RESOURCES, name
        parameters = state["Parameters"]
        if state["Resource"].startswith("arn:aws:states:::lambda:"):
            assert parameters["FunctionName"] == "${RpaposSyncFunctionArn}", name
        else:  # continue-as-new: a new execution of this very state machine
            assert parameters["StateMachineArn.$"] == "$$.StateMachine.Id"
    # Every placeholder of the file has its substitution, and the other way round.
    assert substitute(ASL.read_text(encoding="utf-8"), {"RpaposSyncFunctionArn": "arn"})
    with pytest.raises(ValueError, match="RpaposSyncFunctionArn"):
        substitute(ASL.read_text(encoding="utf-8"), {})


def test_a_pause_waits_on_a_task_token_never_in_a_wait_loop() -> None:
    found = states()
    assert not [name for name, state in found.items() if state["Type"] == "Wait"]
    route = found["Route"]
    assert {"Variable": "$.outcome.state", "StringEquals": "paused", "Next": "Park"} in route["Choices"]
    park = found["Park"]
    assert park["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert park["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert (
        park["ResultPath"] is None
    )  # the answer (resume or cancel) is not state: the next Step reads the run
    assert park["Next"] == "Step"
    # Still parked after its timeout: parked again in a new execution (one lasts a year at most).
    assert {"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "ContinueAsNew"} in park["Catch"]


def test_transient_failures_are_retried_and_the_rest_fail_the_run() -> None:
    for name, state in states().items():
        if state["Type"] != "Task" or name == "ContinueAsNew":
            continue
        if name != "RecordFailure":
            matched = [error for retrier in state["Retry"] for error in retrier["ErrorEquals"]]
            assert "RetryLater" in matched, name
            assert "Lambda.ServiceException" in matched, name
            assert all(retrier.get("BackoffRate", 2.0) > 1 for retrier in state["Retry"]), name
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        assert state["Catch"][-1]["Next"] == ("Failed" if name == "RecordFailure" else "RecordFailure"), name
    assert states()["RecordFailure"]["Next"] == "Failed"


def test_one_execution_stays_under_the_history_limit_whatever_the_run_size() -> None:
    found = states()
    init_defaults = json.loads(
        found["Init"]["Parameters"]["run.$"].split("States.StringToJson('", 1)[1].split("')", 1)[0]
    )
    cap_rules = [
        rule for rule in found["Route"]["Choices"][0]["And"][1]["Or"] if "NumericGreaterThanEquals" in rule
    ]
    cap = cap_rules[0]["NumericGreaterThanEquals"]
    assert init_defaults["steps_per_execution"] == cap
    # Each loop: Step, Count (2), Route (2), and a Park when the step paused.
    per_step = worst_task_events(found["Step"]) + 2 + 2 + worst_task_events(found["Park"])
    nominal = 5 + 2 + 2
    once = (
        2  # ExecutionStarted, ExecutionSucceeded / Failed
        + 2  # Init
        + worst_task_events(found["Attach"])
        + 2  # Start
        + max(
            worst_task_events(found["ContinueAsNew"]) + 2,
            worst_task_events(found["Finalize"]) + 2,
            2 + worst_task_events(found["RecordFailure"]) + 1,  # UnexpectedOutcome, RecordFailure, Failed
        )
        + worst_task_events(found["RecordFailure"])  # a failing Finalize, say
    )
    assert per_step == 63
    assert cap * per_step + once < HISTORY_LIMIT, (cap, per_step, once)
    assert cap * nominal < HISTORY_LIMIT // 5  # a normal execution uses a fifth of it at most


def test_states_carry_ids_and_the_step_outcome_only() -> None:
    for name, state in states().items():
        if state.get("Resource", "").startswith("arn:aws:states:::lambda:"):
            payload = state["Parameters"]["Payload"]
            assert set(payload) <= PAYLOAD_FIELDS, name
            if "ResultSelector" in state:
                assert set(state["ResultSelector"]) <= OUTCOME_FIELDS, name
            else:
                assert state["ResultPath"] is None, name  # the answer is dropped
    count = states()["Count"]["Parameters"]
    assert set(count) == {
        "tenant_id.$",
        "sync_run_id.$",
        "generation.$",
        "steps_per_execution.$",
        "steps.$",
        "outcome.$",
    }


# ---------------------------------------------------------------- run by moto


@dataclass
class SyncFunction:
    """A scripted stand-in of functions/rpapos_sync: answers each action as told."""

    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    steps: deque[str | Exception] = field(default_factory=deque)
    park_resumes_itself: bool = False
    finalize_error: Exception | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    parked: threading.Event = field(default_factory=threading.Event)

    def __call__(self, event: dict[str, Any]) -> Any:
        self.calls.append(event)
        action = event["action"]
        if action == "attach":
            return {"tenant_id": self.tenant_id, "sync_run_id": event["sync_run_id"]}
        if action == "step":
            assert event["tenant_id"] == self.tenant_id
            state = self.steps.popleft()
            if isinstance(state, Exception):
                raise state
            page = len([call for call in self.calls if call["action"] == "step"])
            entity = None if state == "finished" else "plu"
            return {
                "tenant_id": self.tenant_id,
                "sync_run_id": event["sync_run_id"],
                "state": state,
                "entity": entity,
                "page": page,
                "parent": None,
            }
        if action == "park":
            self.tokens.append(event["task_token"])
            if self.park_resumes_itself:
                boto3.client("stepfunctions").send_task_success(taskToken=event["task_token"], output="{}")
            self.parked.set()
            return {"parked": not self.park_resumes_itself}
        if action == "finalize":
            if self.finalize_error is not None:
                raise self.finalize_error
            return {"completed": True}
        if action == "fail":
            return {"failed": True}
        raise AssertionError(f"unexpected action {action}")

    def actions(self) -> list[str]:
        return [call["action"] for call in self.calls]


def failure(error_type: str, message: str = "boom") -> InvocationError:
    """How the stack reports a handler's exception (its class name as errorType)."""
    return InvocationError(message, error_type=error_type, error_message=message)


@dataclass
class Machine:
    arn: str
    function: SyncFunction
    sfn: Any

    def start(self, run_id: str | None = None, **extra: Any) -> tuple[str, str]:
        run_id = run_id or str(uuid.uuid4())
        answer = self.sfn.start_execution(
            stateMachineArn=self.arn, name=run_id, input=json.dumps({"sync_run_id": run_id, **extra})
        )
        return run_id, answer["executionArn"]

    def finish(self, execution_arn: str, timeout: float = 30) -> dict[str, Any]:
        described = wait_for_execution(self.sfn, execution_arn, timeout)
        assert described["status"] != "RUNNING", "the execution did not end"
        return described

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000
        )["events"]
        return events

    def entered(self, execution_arn: str) -> list[str]:
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history(execution_arn)
            if "stateEnteredEventDetails" in event
        ]


def empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "")
    return buffer.getvalue()


def fast_retries(text: str) -> str:
    """The definition with every retry interval at 1 s: moto really sleeps."""
    document = json.loads(text)
    for state in document["States"].values():
        for retrier in state.get("Retry", []):
            retrier["IntervalSeconds"] = 1
            retrier.pop("JitterStrategy", None)
    return json.dumps(document)


@pytest.fixture
def machine() -> Iterator[Machine]:
    with mock_aws(config=MOTO_CONFIG):
        install_lambda_router()
        patch_start_execution_parameters()
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        function_arn = boto3.client("lambda").create_function(
            FunctionName="rpapos-sync",
            Runtime="python3.12",
            Role=role,
            Handler="app.lambda_handler",
            Code={"ZipFile": empty_zip()},
        )["FunctionArn"]
        function = SyncFunction()
        route_function("rpapos-sync", function)
        sfn = boto3.client("stepfunctions")
        text = substitute(ASL.read_text(encoding="utf-8"), {"RpaposSyncFunctionArn": function_arn})
        arn = sfn.create_state_machine(name="rpapos-sync", definition=fast_retries(text), roleArn=role)[
            "stateMachineArn"
        ]
        try:
            yield Machine(arn, function, sfn)
        finally:
            for execution in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                sfn.stop_execution(executionArn=execution["executionArn"])
            unroute_function("rpapos-sync")


def test_moto_accepts_the_definition_as_written(machine: Machine) -> None:
    described = machine.sfn.describe_state_machine(stateMachineArn=machine.arn)
    assert json.loads(described["definition"])["StartAt"] == "Init"
    with pytest.raises(ClientError, match="ASLParserException"):
        machine.sfn.create_state_machine(
            name="broken",
            definition=json.dumps({"StartAt": "Nowhere", "States": {}}),
            roleArn=described["roleArn"],
        )


def test_pages_until_finished_then_finalized(machine: Machine) -> None:
    # Given a run of three pages
    machine.function.steps.extend(["more", "more", "finished"])

    # When its execution runs
    run_id, execution = machine.start()

    # Then every page is a Step, the run is finalized and the execution succeeds
    assert machine.finish(execution)["status"] == "SUCCEEDED"
    assert machine.function.actions() == ["attach", "step", "step", "step", "finalize"]
    attach = machine.function.calls[0]
    assert attach == {
        "action": "attach",
        "sync_run_id": run_id,
        "tenant_id": None,
        "execution_arn": execution,
    }
    assert all(call["tenant_id"] == machine.function.tenant_id for call in machine.function.calls[1:])
    assert machine.entered(execution)[-1] == "Completed"


def test_every_state_carries_a_few_hundred_bytes(machine: Machine) -> None:
    machine.function.steps.extend(["more"] * 5 + ["finished"])
    _, execution = machine.start()
    assert machine.finish(execution)["status"] == "SUCCEEDED"
    sizes = [
        len(details.get("input") or details.get("output") or "")
        for event in machine.history(execution)
        for key, details in event.items()
        if key in ("stateEnteredEventDetails", "stateExitedEventDetails")
    ]
    assert sizes
    assert max(sizes) < SMALL


def test_a_paused_run_parks_on_its_token_until_resumed(machine: Machine) -> None:
    # Given a run that pauses after its first page
    machine.function.steps.extend(["more", "paused", "finished"])
    _, execution = machine.start()

    # When it parks
    assert machine.function.parked.wait(10)
    time.sleep(1.0)
    parked_events = len(machine.history(execution))
    time.sleep(1.5)

    # Then it waits without a single event (no polling) until its token is answered
    assert machine.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    assert len(machine.history(execution)) == parked_events
    assert [event["type"] for event in machine.history(execution)][-1] == "TaskSubmitted"
    machine.sfn.send_task_success(taskToken=machine.function.tokens[0], output=json.dumps({"resumed": True}))

    # and then carries on with the next Step
    assert machine.finish(execution)["status"] == "SUCCEEDED"
    assert machine.function.actions() == ["attach", "step", "step", "park", "step", "finalize"]


def test_a_run_resumed_before_its_token_was_stored_does_not_wait(machine: Machine) -> None:
    # Given a run paused and resumed again before its waiting task stored the token: park
    # answers the token itself
    machine.function.steps.extend(["paused", "finished"])
    machine.function.park_resumes_itself = True
    _, execution = machine.start()

    assert machine.finish(execution, timeout=10)["status"] == "SUCCEEDED"
    assert machine.function.actions() == ["attach", "step", "park", "step", "finalize"]


def test_a_cancelled_run_ends_without_finalize(machine: Machine) -> None:
    machine.function.steps.extend(["more", "cancelled"])
    _, execution = machine.start()
    assert machine.finish(execution)["status"] == "SUCCEEDED"
    assert machine.function.actions() == ["attach", "step", "step"]
    assert machine.entered(execution)[-1] == "Cancelled"


def test_a_transient_failure_is_retried(machine: Machine) -> None:
    # Given RPApos unavailable once (the handler raises RetryLater), then a Lambda service error
    machine.function.steps.extend(
        [failure("RetryLater", "RpaposUnavailable: 503"), failure("Lambda.ServiceException"), "finished"]
    )
    _, execution = machine.start()

    # Then the same step is tried again and the run completes
    assert machine.finish(execution)["status"] == "SUCCEEDED"
    assert machine.function.actions() == ["attach", "step", "step", "step", "finalize"]


@pytest.mark.parametrize("error_type", ["SyncFailed", "BadCredentials", "ValidationError"])
def test_any_other_failure_fails_the_run_with_its_error(machine: Machine, error_type: str) -> None:
    # Given a step failing in a way retrying cannot mend
    machine.function.steps.extend(["more", failure(error_type, "RPApos refused the login")])
    run_id, execution = machine.start()

    # Then the run is failed with the error, once, and the execution fails
    described = machine.finish(execution)
    assert described["status"] == "FAILED"
    assert described["error"] == "RpaposSyncFailed"
    assert machine.function.actions() == ["attach", "step", "step", "fail"]
    fail = machine.function.calls[-1]
    assert fail["sync_run_id"] == run_id
    assert fail["tenant_id"] == machine.function.tenant_id
    assert fail["error"]["Error"] == error_type
    assert json.loads(fail["error"]["Cause"])["errorMessage"] == "RPApos refused the login"


def test_a_run_not_finished_at_finalize_is_failed(machine: Machine) -> None:
    machine.function.steps.extend(["finished"])
    machine.function.finalize_error = failure("RunNotFinished", "the run is not at its end")
    _, execution = machine.start()
    assert machine.finish(execution)["status"] == "FAILED"
    assert machine.function.actions() == ["attach", "step", "finalize", "fail"]


def test_an_unknown_outcome_fails_the_run(machine: Machine) -> None:
    machine.function.steps.extend(["sideways"])
    _, execution = machine.start()
    assert machine.finish(execution)["status"] == "FAILED"
    assert machine.function.calls[-1]["error"] == {
        "Error": "UnexpectedOutcome",
        "Cause": "the step answered state sideways",
    }


def test_a_step_that_finds_the_run_failed_ends_the_execution_failed(machine: Machine) -> None:
    machine.function.steps.extend(["failed"])
    _, execution = machine.start()
    assert machine.finish(execution)["status"] == "FAILED"
    assert machine.function.actions() == ["attach", "step"]


def test_a_long_run_continues_in_new_executions_named_after_it(machine: Machine) -> None:
    # Given a run of seven pages and two steps per execution
    machine.function.steps.extend(["more"] * 6 + ["finished"])
    run_id, first = machine.start(steps_per_execution=2)

    # Then it goes on in executions {run}-1, {run}-2, {run}-3, each ending as the next starts
    names = [f"{run_id}-{generation}" for generation in (1, 2, 3)]
    arns = [first.replace(f":{run_id}", f":{name}") for name in names]
    assert machine.finish(first)["status"] == "SUCCEEDED"
    for arn in arns:
        assert machine.finish(arn)["status"] == "SUCCEEDED"
    assert machine.entered(first)[-1] == "Continued"
    assert machine.entered(arns[-1])[-1] == "Completed"
    started = [
        json.loads(machine.sfn.describe_execution(executionArn=arn)["input"]) for arn in arns
    ]  # the run's ids and the generation, nothing else
    assert [entry["generation"] for entry in started] == [1, 2, 3]
    assert {entry["sync_run_id"] for entry in started} == {run_id}
    assert {entry["tenant_id"] for entry in started} == {machine.function.tenant_id}
    assert {entry["steps_per_execution"] for entry in started} == {2}
    assert started[0]["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] == first
    # Every execution records itself on the run (attach), then takes its steps.
    assert machine.function.actions().count("attach") == 4
    assert machine.function.actions().count("step") == 7
