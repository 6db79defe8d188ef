"""The local stack: everything `make run` starts, also usable from tests as a context manager."""

import json
import logging
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

import psycopg
from psycopg.rows import dict_row

from local import demo, seed
from local import template as cfn
from local.aws import ACCOUNT_ID, REGION, LocalAws
from local.database import Cluster, Database, create_database, embedded_cluster, external_cluster, migrate
from local.event_source import SqsEventSource
from local.fake_clover import FakeClover
from local.fake_rpapos import TENANT_PREFIX, FakeRpapos
from local.fake_square import FakeSquare, encryption_secret_value, oauth_secret_value, register_connections
from local.gateway import LocalGateway
from local.lambda_runtime import FunctionPool
from local.scheduler import LocalScheduler
from local.stepfunctions import LocalStepFunctions, wait_for_execution
from local.tokens import LocalIssuer

logger = logging.getLogger("local.stack")

ROOT = Path(__file__).resolve().parent.parent
SQUARE_SECRET = "SquareWebhookSecret"
CLOVER_SECRET = "CloverWebhookSecret"
ENCRYPTION_SECRET = "EncryptionKeysSecret"
SQUARE_OAUTH_SECRET = "SquareOAuthSecret"
INGEST_QUEUE = "IngestQueue"
RPAPOS_SYNC_STATE_MACHINE = "RpaposSyncStateMachine"


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    port: int = 3000  # 0 picks a free port
    state_dir: Path = ROOT / ".local"
    database_url: str | None = None  # None: embedded PostgreSQL under state_dir
    dbname: str = "pos_gateway"
    reset_database: bool = True
    load_demo_data: bool = True
    stack_name: str = "pos-gateway-local"
    # The template's 180 s suits Lambda; locally a failed message comes back sooner.
    visibility_timeout: int | None = 5
    ingest_concurrency: int = 2
    # Caps every function's workers and queue pollers (None: the template's concurrency). Fewer
    # worker processes start faster; tests that need no parallelism use 1.
    max_concurrency: int | None = None
    extra_environment: dict[str, str] = field(default_factory=dict)
    # The template's schedules run on timers (first run one period after the start); off, they
    # run only through LocalStack.run_schedule. The scale multiplies every rate (0.01: 1 min → 0.6 s).
    schedule_timers: bool = True
    schedule_rate_scale: float = 1.0


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.template = cfn.load()
        self.signature_key = secrets.token_urlsafe(24)
        self.clover_auth_code = secrets.token_urlsafe(24)
        self.cipher = seed.dev_cipher()
        self.issuer = LocalIssuer()
        self.demo: demo.Demo | None = None
        self.rpapos: demo.RpaposDemo | None = None  # demo.connect_rpapos, once the stack serves
        self.fake_square = FakeSquare(config.host)
        self.fake_clover = FakeClover(config.host)
        # No tenant: tests and demos add theirs (fake_rpapos.add_tenant) with a connection row.
        self.fake_rpapos = FakeRpapos(config.host)
        self.state_machines: dict[str, str] = {}  # logical id -> ARN
        self.queues: dict[str, tuple[str, str]] = {}
        self.sources: list[SqsEventSource] = []
        self.scheduler: LocalScheduler | None = None
        self._pools: dict[str, FunctionPool] = {}
        self._aws: LocalAws | None = None
        self._stepfunctions: LocalStepFunctions | None = None
        self._gateway: LocalGateway | None = None
        self._cluster: Cluster | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Self:
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self._cluster = cluster = (
            external_cluster(config.database_url)
            if config.database_url
            else embedded_cluster(config.state_dir / "pgdata")
        )
        create_database(cluster, config.dbname, recreate=config.reset_database)
        migrate(cluster, config.dbname)
        self.fake_square.start()
        self.fake_clover.start()
        self.fake_rpapos.start()
        if config.load_demo_data:
            with self.owner_connection() as conn:
                self.demo = demo.load(conn, self.cipher)
                register_connections(conn, self.cipher, self.fake_square)
            for tenant in self.demo.tenants:
                if tenant.clover_token:
                    self.fake_clover.grant_token(tenant.merchant_id, tenant.clover_token)
            self.fake_clover.put_payment(demo.CLOVER_MERCHANT, demo.CLOVER_PAYMENT)

        self._aws = LocalAws.start(config.host)
        # Before any Lambda function is created: the Docker-free backend holds them.
        self._stepfunctions = LocalStepFunctions(self._aws, config.stack_name, self._invoke)
        self._stepfunctions.enable()
        self._gateway = LocalGateway(
            self.template.routes, self._invoke, config.host, config.port, authorizer=self.issuer
        )
        references = self._provision_aws()
        for spec in self.template.functions.values():
            self._pools[spec.name] = FunctionPool(
                spec,
                self._function_environment(spec, references),
                self._concurrency(spec.name),
                config.state_dir / "logs",
            )
        for pool in self._pools.values():
            # Every worker process imports at once; on a small machine that takes a while.
            pool.wait_until_warm(timeout=120)
        sqs = self._aws.client("sqs")
        for source in self.template.queue_sources:
            url, arn = self.queues[source.queue]
            pool = self._pools[source.function]
            # As many pollers as workers: a batch never waits for a worker while its messages time out.
            pollers = replace(source, max_concurrency=self._concurrency(source.function))
            self.sources.append(SqsEventSource(pollers, url, arn, pool.invoke, sqs, REGION))
        self.scheduler = LocalScheduler(
            self.template.schedules,
            self._invoke,
            stack_name=config.stack_name,
            account=ACCOUNT_ID,
            region=REGION,
            rate_scale=config.schedule_rate_scale,
            timers=config.schedule_timers,
        )
        self._gateway.start()
        for event_source in self.sources:
            event_source.start()
        self.scheduler.start()
        self._write_description()
        return self

    def stop(self) -> None:
        if self.scheduler:
            self.scheduler.stop()
        for event_source in self.sources:
            event_source.stop()
        if self._gateway:
            self._gateway.stop()
        if self._stepfunctions:
            self._stepfunctions.stop()  # running executions end before the pools they call
        for pool in self._pools.values():
            pool.close()
        if self._aws:
            self._aws.stop()
        self.fake_rpapos.stop()
        self.fake_clover.stop()
        self.fake_square.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what the stack offers ---------------------------------------------------------
    @property
    def cluster(self) -> Cluster:
        return _started(self._cluster)

    @property
    def aws(self) -> LocalAws:
        return _started(self._aws)

    @property
    def api_url(self) -> str:
        return _started(self._gateway).url

    @property
    def square_notification_url(self) -> str:
        return f"{self.api_url}/webhooks/square"

    @property
    def clover_webhook_url(self) -> str:
        return f"{self.api_url}/webhooks/clover"

    @property
    def tenants(self) -> list[demo.DemoTenant]:
        return self.demo.tenants if self.demo else []

    def token(self, **claims: Any) -> str:
        """A JWT the local API's authorizer accepts, as the identity provider would issue it."""
        return self.issuer.token(claims)

    def operator_token(self) -> str | None:
        if self.demo is None:
            return None
        cafe = self.demo.tenant("Blue Bottle Cafe")
        return self.token(sub=str(self.demo.operator_id), role="pos_operator", tenant_id=str(cafe.id))

    def client_token(self) -> str | None:
        if self.demo is None:
            return None
        cafe = self.demo.tenant("Blue Bottle Cafe")
        return self.token(sub=str(self.demo.client_id), role="client", tenant_id=str(cafe.id))

    def admin_token(self) -> str | None:
        return self.token(sub=str(self.demo.admin_id), role="admin") if self.demo else None

    @property
    def database_url(self) -> str:
        return psycopg.conninfo.make_conninfo(self.cluster.admin_url, dbname=self.config.dbname)

    def owner_connection(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row)

    def sqs_client(self) -> Any:
        return self.aws.client("sqs")

    def queue_depth(self, logical_id: str) -> int:
        attributes = self.sqs_client().get_queue_attributes(
            QueueUrl=self.queues[logical_id][0],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def stepfunctions_client(self) -> Any:
        return self.aws.client("stepfunctions")

    @property
    def rpapos_sync_state_machine_arn(self) -> str:
        return self.state_machines[RPAPOS_SYNC_STATE_MACHINE]

    def wait_for_execution(self, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
        """The execution's description once it has ended (or when the timeout is up)."""
        return wait_for_execution(self.stepfunctions_client(), execution_arn, timeout)

    def run_schedule(self, function: str, name: str | None = None) -> Any:
        """Invoke a scheduled function now with an EventBridge scheduled event; returns its result."""
        return _started(self.scheduler).run(function, name)

    def wait_until_drained(self, timeout: float = 60) -> bool:
        """True once every source queue is empty and no routed raw event awaits processing.

        Parked events (the sweeper gave up on them) are left to operators and do not count.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queues_empty = all(self.queue_depth(s.queue) == 0 for s in self.template.queue_sources)
            if queues_empty and self._unprocessed_events() == 0:
                return True
            time.sleep(0.2)
        return False

    def describe(self) -> dict[str, Any]:
        return {
            "api_url": self.api_url,
            "database_url": self.database_url,
            "admin_token": self.admin_token(),
            "operator_token": self.operator_token(),
            "client_token": self.client_token(),
            "fake_square_url": self.fake_square.base_url,
            "fake_clover_url": self.fake_clover.base_url,
            "fake_rpapos_url": self.fake_rpapos.base_url,
            "fake_rpapos_soap_url": self.fake_rpapos.soap_url,
            "aws_endpoint_url": self._aws.endpoint_url if self._aws else None,
            "aws_region": REGION,
            "queues": {name: url for name, (url, _) in self.queues.items()},
            "ingest_queue_url": self._queue_url(INGEST_QUEUE),
            "dead_letter_queue_url": self._queue_url(self.template.queues[INGEST_QUEUE].dead_letter_queue),
            "state_machines": dict(self.state_machines),
            "rpapos_sync_state_machine_arn": self.state_machines.get(RPAPOS_SYNC_STATE_MACHINE),
            "logs_dir": str(self.config.state_dir / "logs"),
            "tenants": [self._describe_tenant(tenant) for tenant in self.tenants],
            "rpapos": self.rpapos.describe() if self.rpapos else None,
            "field": self.demo.field.describe(self.api_url) if self.demo else None,
        }

    def write_description(self) -> None:
        """(Re)write ``stack.json`` from what the stack holds now."""
        self._write_description()

    # -- internals -------------------------------------------------------------------------
    def _describe_tenant(self, tenant: demo.DemoTenant) -> dict[str, Any]:
        described: dict[str, Any] = {"id": str(tenant.id), "name": tenant.name}
        if tenant.provider == "square":
            described["square"] = {
                "merchant_id": tenant.merchant_id,
                "signature_key": self.signature_key,
                "notification_url": self.square_notification_url,
            }
        else:
            described["clover"] = {
                "merchant_id": tenant.merchant_id,
                "auth_code": self.clover_auth_code,
                "webhook_url": self.clover_webhook_url,
            }
        return described

    def _invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self._pools[function].invoke(event)

    def _queue_url(self, logical_id: str | None) -> str | None:
        return self.queues[logical_id][0] if logical_id in self.queues else None

    def _concurrency(self, function: str) -> int:
        """Workers of a function: its queue's MaximumConcurrency; one if only schedules invoke it."""
        template, cap = self.template, self.config.max_concurrency
        from_queues = [s.max_concurrency for s in template.queue_sources if s.function == function]
        scheduled_only = any(s.function == function for s in template.schedules) and not any(
            r.function == function for r in template.routes
        )
        wanted = max(from_queues) if from_queues else 1 if scheduled_only else self.config.ingest_concurrency
        return wanted if cap is None else max(1, min(wanted, cap))

    def _unprocessed_events(self) -> int:
        with self.owner_connection() as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM pos.pos_webhook_events_raw"
                " WHERE processed = false AND tenant_id IS NOT NULL AND parked_at IS NULL"
            ).fetchone()
        return int(row["n"]) if row else 0

    def _provision_aws(self) -> dict[str, str]:
        """Create the template's queues, secrets, buckets, functions (moto Lambda) and state
        machines; returns what Refs and GetAtts resolve to locally."""
        references = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": self.config.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        for name, parameter in self.template.parameters.items():
            if "Default" in parameter:
                references[name] = str(parameter["Default"])
        # Parameter overrides, as `sam deploy --parameter-overrides` would give them.
        references["SquareApiBaseUrl"] = self.fake_square.base_url
        references["CloverApiBaseUrl"] = self.fake_clover.base_url
        references["JwtIssuer"] = self.issuer.issuer
        references["JwtAudience"] = self.issuer.audience
        references["RpaposBaseUrlTemplate"] = self.fake_rpapos.base_url + TENANT_PREFIX + "{subdomain}"
        references["RpaposSoapUrl"] = self.fake_rpapos.soap_url
        self.queues = self.aws.create_queues(
            self.template.queues, self.config.stack_name, self.config.visibility_timeout
        )
        for name, (url, arn) in self.queues.items():
            references[name] = url
            references[f"{name}.Arn"] = arn
        for spec in self.template.secrets.values():
            references[spec.logical_id] = self.aws.create_secret(spec, self._secret_value(spec), references)
        for bucket in self.template.buckets.values():
            references[bucket.logical_id], references[f"{bucket.logical_id}.Arn"] = self.aws.create_bucket(
                bucket, references
            )
        stepfunctions = _started(self._stepfunctions)
        references.update(stepfunctions.create_functions(self.template.functions))
        references.update(stepfunctions.create_state_machines(self.template.state_machines, references))
        self.state_machines = dict(stepfunctions.state_machines)
        return references

    def _secret_value(self, spec: cfn.SecretSpec) -> dict[str, Any]:
        if spec.db_username:
            return Database(self.cluster, self.config.dbname).secret(spec.db_username)
        if spec.logical_id == SQUARE_SECRET:
            return {"signatureKey": self.signature_key, "notificationUrl": self.square_notification_url}
        if spec.logical_id == CLOVER_SECRET:
            return {"authCode": self.clover_auth_code}
        if spec.logical_id == ENCRYPTION_SECRET:
            return encryption_secret_value(self.cipher)
        if spec.logical_id == SQUARE_OAUTH_SECRET:
            return oauth_secret_value(self.fake_square)
        raise ValueError(f"no local value for secret {spec.logical_id}")

    def _function_environment(self, spec: cfn.FunctionSpec, references: dict[str, str]) -> dict[str, str]:
        environment = {name: cfn.resolve(value, references) for name, value in spec.environment.items()}
        return {
            **environment,
            **self.aws.environment(),
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            # No X-Ray daemon locally.
            "POWERTOOLS_TRACE_DISABLED": "true",
            **self.config.extra_environment,
        }

    def _write_description(self) -> None:
        path = self.config.state_dir / "stack.json"
        path.write_text(json.dumps(self.describe(), indent=2) + "\n", encoding="utf-8")


def _started[T](value: T | None) -> T:
    if value is None:
        raise RuntimeError("the local stack is not started")
    return value
