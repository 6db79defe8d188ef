"""Reads template.yaml: routes, event sources, schedules, queues and environment the stack emulates."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that turns short-form intrinsics (!Ref, !Sub, ...) into their long form."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    authorizer: str | None = None  # the HttpApi JWT authorizer guarding the route, if any

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class QueueSource:
    function: str
    queue: str  # logical id of the AWS::SQS::Queue
    batch_size: int
    max_concurrency: int
    report_batch_item_failures: bool


_RATE = re.compile(r"^rate\(\s*(?P<value>[1-9][0-9]*)\s+(?P<unit>minutes?|hours?|days?)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int | None:
    """Seconds between runs of an EventBridge ``rate(...)`` expression; None for ``cron(...)``."""
    if expression.startswith("cron("):
        return None
    match = _RATE.match(expression.strip())
    if match is None:
        raise ValueError(f"not an EventBridge schedule expression: {expression!r}")
    value, unit = int(match["value"]), match["unit"]
    if (value == 1) != (not unit.endswith("s")):
        # EventBridge refuses "rate(1 minutes)" and "rate(5 minute)".
        raise ValueError(f"{expression!r}: use the singular unit for 1 and the plural otherwise")
    return value * _UNIT_SECONDS[unit.rstrip("s")]


@dataclass(frozen=True)
class ScheduleSource:
    """A ``Schedule`` (EventBridge rule) or ``ScheduleV2`` (EventBridge Scheduler) event."""

    function: str
    name: str  # the event's key under the function's Events
    expression: str
    enabled: bool

    @property
    def rate_seconds(self) -> int | None:
        return rate_seconds(self.expression)


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    code_uri: Path
    handler: str
    timeout: int
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    visibility_timeout: int
    dead_letter_queue: str | None
    max_receive_count: int | None


@dataclass(frozen=True)
class SecretSpec:
    logical_id: str
    name: Any  # the Name property (possibly an intrinsic), or None
    db_username: str | None  # set for database logins (RDS-style secrets)


@dataclass(frozen=True)
class BucketSpec:
    """An ``AWS::S3::Bucket``: created empty locally (its encryption and access settings are the
    cloud's business)."""

    logical_id: str
    name: Any  # the BucketName property (possibly an intrinsic), or None: the stack names it


@dataclass(frozen=True)
class StateMachineSpec:
    """An ``AWS::Serverless::StateMachine`` with its ASL file and ``${...}`` substitutions."""

    logical_id: str
    name: Any  # the Name property (possibly an intrinsic), or None
    definition_path: Path
    substitutions: dict[str, Any] = field(default_factory=dict)  # values may be intrinsics


@dataclass(frozen=True)
class Template:
    functions: dict[str, FunctionSpec]
    routes: list[Route]
    queue_sources: list[QueueSource]
    queues: dict[str, QueueSpec]
    secrets: dict[str, SecretSpec]
    parameters: dict[str, Any]
    schedules: list[ScheduleSource] = field(default_factory=list)
    state_machines: dict[str, StateMachineSpec] = field(default_factory=dict)
    buckets: dict[str, BucketSpec] = field(default_factory=dict)


def load(path: Path = TEMPLATE) -> Template:
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    globals_ = document.get("Globals", {}).get("Function", {})
    resources: dict[str, Any] = document["Resources"]
    functions: dict[str, FunctionSpec] = {}
    routes: list[Route] = []
    sources: list[QueueSource] = []
    schedules: list[ScheduleSource] = []
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        environment = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        functions[name] = FunctionSpec(
            name=name,
            code_uri=path.parent / props["CodeUri"],
            handler=props.get("Handler", globals_.get("Handler", "")),
            timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
            environment=environment,
        )
        for event_name, event in props.get("Events", {}).items():
            event_props = event.get("Properties", {})
            if event["Type"] == "HttpApi":
                authorizer = (event_props.get("Auth") or {}).get("Authorizer")
                if authorizer == "NONE":
                    authorizer = None
                routes.append(Route(event_props["Method"].upper(), event_props["Path"], name, authorizer))
            elif event["Type"] == "SQS":
                sources.append(_queue_source(name, event_props, document))
            elif event["Type"] in ("Schedule", "ScheduleV2"):
                schedules.append(_schedule_source(name, event_name, event_props))
    queues = {
        name: _queue_spec(name, resource["Properties"])
        for name, resource in resources.items()
        if resource["Type"] == "AWS::SQS::Queue"
    }
    secrets = {
        name: _secret_spec(name, resource["Properties"])
        for name, resource in resources.items()
        if resource["Type"] == "AWS::SecretsManager::Secret"
    }
    state_machines = {
        name: _state_machine_spec(name, resource["Properties"], path.parent)
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    }
    buckets = {
        name: BucketSpec(name, (resource.get("Properties") or {}).get("BucketName"))
        for name, resource in resources.items()
        if resource["Type"] == "AWS::S3::Bucket"
    }
    return Template(
        functions,
        routes,
        sources,
        queues,
        secrets,
        document.get("Parameters", {}),
        schedules,
        state_machines,
        buckets=buckets,
    )


def _queue_source(function: str, props: dict[str, Any], document: dict[str, Any]) -> QueueSource:
    return QueueSource(
        function=function,
        queue=_logical_id(props["Queue"]),
        batch_size=int(props.get("BatchSize", 10)),
        max_concurrency=int(_plain(props.get("ScalingConfig", {}).get("MaximumConcurrency", 2), document)),
        report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
    )


def _schedule_source(function: str, name: str, props: dict[str, Any]) -> ScheduleSource:
    # Schedule: Schedule + Enabled (or State); ScheduleV2: ScheduleExpression + State.
    expression = str(props.get("Schedule") or props.get("ScheduleExpression") or "")
    enabled = props.get("Enabled", True) is not False and props.get("State", "ENABLED") != "DISABLED"
    rate_seconds(expression)  # a malformed expression fails when the template is read
    return ScheduleSource(function=function, name=name, expression=expression, enabled=enabled)


def _queue_spec(name: str, props: dict[str, Any]) -> QueueSpec:
    redrive = props.get("RedrivePolicy") or {}
    return QueueSpec(
        name=name,
        visibility_timeout=int(props.get("VisibilityTimeout", 30)),
        dead_letter_queue=_logical_id(redrive["deadLetterTargetArn"]) if redrive else None,
        max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
    )


def _secret_spec(name: str, props: dict[str, Any]) -> SecretSpec:
    template = props.get("GenerateSecretString", {}).get("SecretStringTemplate", "")
    text = template.get("Fn::Sub", "") if isinstance(template, dict) else str(template)
    username = re.search(r'"username":\s*"([a-z_]+)"', text)
    return SecretSpec(name, props.get("Name"), username.group(1) if username else None)


def _state_machine_spec(name: str, props: dict[str, Any], root: Path) -> StateMachineSpec:
    if "DefinitionUri" not in props or not isinstance(props["DefinitionUri"], str):
        raise ValueError(f"{name}: the local stack runs state machines from a local DefinitionUri file")
    return StateMachineSpec(
        logical_id=name,
        name=props.get("Name"),
        definition_path=root / props["DefinitionUri"],
        substitutions=dict(props.get("DefinitionSubstitutions") or {}),
    )


def _logical_id(value: Any) -> str:
    """The resource a Ref / GetAtt points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    raise ValueError(f"expected a Ref or GetAtt, got {value!r}")


def _plain(value: Any, document: dict[str, Any]) -> Any:
    """A literal, or a Ref to a parameter resolved to its default."""
    if isinstance(value, dict) and "Ref" in value:
        return document["Parameters"][value["Ref"]]["Default"]
    return value


def resolve(value: Any, references: dict[str, str]) -> str:
    """Resolve an environment value: literals, Refs and simple !Sub against local references."""
    if isinstance(value, str | int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and "Ref" in value:
        return references[value["Ref"]]
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text: str = value["Fn::Sub"]
        for key, replacement in references.items():
            text = text.replace("${" + key + "}", replacement)
        return text
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return references[".".join(value["Fn::GetAtt"])]
    raise ValueError(f"cannot resolve {value!r} locally")
