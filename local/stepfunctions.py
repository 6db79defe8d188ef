"""Step Functions for the local stack: moto executes the template's ASL, and its Lambda tasks run
the project's handlers in the stack's worker pools. Dev-only.

- moto's interpreter (``moto.stepfunctions.parser``) is switched on through the moto server's
  ``/moto-api/config`` endpoint, with the Docker-free Lambda backend.
- Every function of the template is created in that Lambda backend (a dummy zip and role), so its
  ARN exists and ``DefinitionSubstitutions`` resolve as in the cloud. The backend's ``invoke`` is
  routed to the stack's pools: a handler's exception comes back as a function error whose
  ``errorType`` is the exception's class name, as Lambda reports it, so Retry and Catch match.
- moto's executor calls Lambda (and Step Functions, for continue-as-new) with boto3 at
  ``http://localhost:{MOTO_PORT}``: MOTO_PORT is set in this process while a stack runs.
- Workaround: moto's ``arn:aws:states:::states:startExecution`` integration hands the ASL's
  parameter names (``StateMachineArn``, ``Input``, ``Name``) to boto3 unchanged, where the API
  says ``stateMachineArn``: botocore refuses them (KeyError 'StateMachineArn', the task fails with
  States.Runtime). The parameters are mapped onto the API's input shape first, as Step Functions
  does.

moto's state is per process: two stacks in one process share it (their names differ).
"""

import io
import json
import logging
import os
import threading
import time
import zipfile
from collections.abc import Callable
from typing import Any

import botocore.session
import requests
from botocore import xform_name
from moto.awslambda_simple.models import lambda_simple_backends
from moto.core.config import DefaultConfig, default_user_config
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)

from local.aws import ACCOUNT_ID, REGION, LocalAws
from local.lambda_runtime import InvocationError
from local.template import FunctionSpec, StateMachineSpec, resolve

logger = logging.getLogger("local.stepfunctions")

Invoke = Callable[[str, dict[str, Any]], Any]
Route = Callable[[dict[str, Any]], Any]

MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
_FUNCTION_NAME_LIMIT = 64

_lock = threading.Lock()
_routes: dict[str, Route] = {}  # moto function name -> the stack's invoke of its logical id
_active_ports: list[str] = []
_saved: dict[str, Any] = {}  # MOTO_PORT and moto's config before the first stack


class LocalStepFunctions:
    def __init__(self, aws: LocalAws, stack_name: str, invoke: Invoke) -> None:
        self._aws = aws
        self._stack_name = stack_name
        self._invoke = invoke
        self._port = aws.endpoint_url.rsplit(":", 1)[1]
        self._function_names: list[str] = []
        self.state_machines: dict[str, str] = {}  # logical id -> ARN
        self._enabled = False

    # -- lifecycle -------------------------------------------------------------------------
    def enable(self) -> None:
        """Turn on moto's ASL interpreter and route its Lambda calls here; before any function exists."""
        with _lock:
            if not _active_ports:
                _saved["MOTO_PORT"] = os.environ.get("MOTO_PORT")
                _saved["config"] = {key: default_user_config.get(key) for key in MOTO_CONFIG}
                install_lambda_router()
                patch_start_execution_parameters()
            _active_ports.append(self._port)
            os.environ["MOTO_PORT"] = self._port
        response = requests.post(f"{self._aws.endpoint_url}/moto-api/config", json=MOTO_CONFIG, timeout=10)
        response.raise_for_status()
        self._enabled = True

    def stop(self) -> None:
        """Stop this stack's running executions (before its pools close) and undo what enable did."""
        if not self._enabled:
            return
        self._enabled = False
        sfn = self._aws.client("stepfunctions")
        for arn in self.state_machines.values():
            for execution in _running(sfn, arn):
                try:
                    sfn.stop_execution(executionArn=execution, cause="the local stack stopped")
                except Exception:
                    logger.exception("could not stop %s", execution)
        for name in self._function_names:
            unroute_function(name)
        with _lock:
            _active_ports.remove(self._port)
            if _active_ports:
                os.environ["MOTO_PORT"] = _active_ports[-1]
                return
            previous = _saved.pop("MOTO_PORT", None)
            if previous is None:
                os.environ.pop("MOTO_PORT", None)
            else:
                os.environ["MOTO_PORT"] = previous
            saved = _saved.pop("config", {})
            default_user_config.update({key: value for key, value in saved.items() if value is not None})  # type: ignore[typeddict-item]

    # -- provisioning -------------------------------------------------------------------------
    def create_functions(self, functions: dict[str, FunctionSpec]) -> dict[str, str]:
        """Create the template's functions in moto's Lambda; returns what Refs and GetAtts resolve to."""
        lambda_client = self._aws.client("lambda")
        role = self._role()
        # Listed rather than looked up one by one: a name in a request path lands in the server's
        # access log, and the default stack name is also the local roles' password.
        existing = {
            function["FunctionName"]
            for page in lambda_client.get_paginator("list_functions").paginate()
            for function in page["Functions"]
        }
        references: dict[str, str] = {}
        for logical_id in functions:
            name = f"{self._stack_name}-{logical_id}"[:_FUNCTION_NAME_LIMIT]
            if name in existing:  # a stack of the same name ran before in this process
                lambda_client.delete_function(FunctionName=name)
            arn: str = lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="app.lambda_handler",
                Code={"ZipFile": _dummy_zip()},
            )["FunctionArn"]
            references[logical_id] = name
            references[f"{logical_id}.Arn"] = arn
            route_function(name, _route(self._invoke, logical_id))
            self._function_names.append(name)
        return references

    def create_state_machines(
        self, specs: dict[str, StateMachineSpec], references: dict[str, str]
    ) -> dict[str, str]:
        """Create each state machine from its ASL file, substitutions resolved; returns Refs and GetAtts."""
        sfn = self._aws.client("stepfunctions")
        role = self._role()
        resolved: dict[str, str] = {}
        for spec in specs.values():
            name = resolve(spec.name, references) if spec.name else f"{self._stack_name}-{spec.logical_id}"
            definition = substitute(
                spec.definition_path.read_text(encoding="utf-8"),
                {key: resolve(value, references) for key, value in spec.substitutions.items()},
            )
            _delete_state_machine_if_any(sfn, name)
            arn: str = sfn.create_state_machine(name=name, definition=definition, roleArn=role)[
                "stateMachineArn"
            ]
            self.state_machines[spec.logical_id] = arn
            resolved[spec.logical_id] = arn
            resolved[f"{spec.logical_id}.Name"] = name
            resolved[f"{spec.logical_id}.Arn"] = arn
        return resolved

    def _role(self) -> str:
        iam = self._aws.client("iam")
        name = f"{self._stack_name}-local-execution"[:64]
        try:
            arn: str = iam.get_role(RoleName=name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        return arn


def substitute(definition: str, values: dict[str, str]) -> str:
    """``DefinitionSubstitutions``: every ``${Key}`` replaced; one left over is an error, as in the cloud."""
    for key, value in values.items():
        definition = definition.replace("${" + key + "}", value)
    if "${" in definition:
        start = definition.index("${")
        raise ValueError(f"no substitution for {definition[start : definition.index('}', start) + 1]}")
    return definition


def wait_for_execution(sfn: Any, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
    """The execution's description once it has ended (or when the timeout is up)."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


# -- moto's Lambda: invoke routed to the stack's pools ---------------------------------------------


def route_function(name: str, route: Route) -> None:
    """Invocations of moto's function ``name`` call ``route(event)``; an ``InvocationError`` it
    raises is answered as the function's error (its ``error_type`` as errorType)."""
    with _lock:
        _routes[name] = route


def unroute_function(name: str) -> None:
    with _lock:
        _routes.pop(name, None)


def _route(invoke: Invoke, logical_id: str) -> Route:
    return lambda event: invoke(logical_id, event)


def install_lambda_router() -> None:
    """Route moto's (Docker-free) Lambda invoke to the functions given to ``route_function``; the
    others keep moto's answer. Idempotent; again after a moto reset (a new backend)."""
    backend = lambda_simple_backends[ACCOUNT_ID][REGION]
    if getattr(backend, "_local_stack_router", False):
        return
    fallback = backend.invoke

    def invoke(
        function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> str | bytes | None:
        name = backend.get_function(function_name, qualifier).function_name
        with _lock:
            route = _routes.get(name)
        if route is None:
            return fallback(function_name, qualifier, body, headers, response_headers)
        event = json.loads(body) if body else {}
        if _header(headers, "X-Amz-Invocation-Type") == "Event":
            threading.Thread(target=_invoke_async, args=(route, name, event), daemon=True).start()
            return b""
        try:
            result = route(event)
        except InvocationError as exc:
            return _function_error(response_headers, exc.error_type, exc.error_message)
        except Exception as exc:  # the stack itself (a pool closed, say): still the function's error
            logger.exception("invocation of %s failed", name)
            return _function_error(response_headers, type(exc).__name__, str(exc))
        return json.dumps(result).encode()

    backend.invoke = invoke  # type: ignore[method-assign]
    backend._local_stack_router = True  # type: ignore[attr-defined]


def _function_error(response_headers: Any, error_type: str, message: str) -> bytes:
    response_headers["x-amz-function-error"] = "Unhandled"
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _invoke_async(route: Route, name: str, event: dict[str, Any]) -> None:
    try:
        route(event)
    except Exception:
        logger.exception("asynchronous invocation of %s failed", name)


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


# -- moto's states:startExecution integration: parameters named as the API names them -------------


def patch_start_execution_parameters() -> None:
    """Map moto's states:startExecution parameters onto the API's names (see the module's docstring)."""
    if getattr(StateTaskServiceSfn, "_local_stack_boto_names", False):
        return
    model = botocore.session.get_session().get_service_model("stepfunctions")
    operations = {xform_name(name): model.operation_model(name) for name in model.operation_names}
    original = StateTaskServiceSfn._normalise_parameters

    def normalise(
        self: StateTaskServiceSfn,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        original(self, parameters, boto_service_name, service_action_name)
        operation = operations.get(service_action_name or self._get_boto_service_action())
        if operation is not None and operation.input_shape is not None:
            self._to_boto_request(parameters, operation.input_shape)

    StateTaskServiceSfn._normalise_parameters = normalise  # type: ignore[method-assign]
    StateTaskServiceSfn._local_stack_boto_names = True  # type: ignore[attr-defined]


# -- helpers ---------------------------------------------------------------------------------------


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# the local stack runs the function's CodeUri, not this\n")
    return buffer.getvalue()


def _delete_state_machine_if_any(sfn: Any, name: str) -> None:
    arn = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        return
    sfn.delete_state_machine(stateMachineArn=arn)


def _running(sfn: Any, state_machine_arn: str) -> list[str]:
    paginator = sfn.get_paginator("list_executions")
    return [
        execution["executionArn"]
        for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING")
        for execution in page["executions"]
    ]
