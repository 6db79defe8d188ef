"""The tasks of the RPApos sync state machine (statemachine/rpapos_sync.asl.json), over the engine.

Each task takes a small input (the action, the run's ids and what the action needs) and answers
a small outcome: states carry ids and cursors, never records.

- ``attach``: the execution's first task. Finds the run's tenant when the input does not name it
  (executions are started with the run's id) and records the execution on the run.
- ``step``: one page (``sync.advance``); its outcome says what comes next.
- ``park``: stores the callback token of the paused run's waiting task. When the run is no
  longer paused (resumed or cancelled in between), nobody else holds the token: the task
  answers it itself (SendTaskSuccess), so the execution does not wait.
- ``finalize`` / ``fail``: end the run completed / failed (``fail`` with the error a Catch
  recorded; nothing to do when the run has ended already).

Failures keep the names the definition matches on: what passes with time (RPApos, the database,
Secrets Manager or the product images bucket unavailable) is raised as ``RetryLater``, whatever
the subclass (Retry with backoff); anything else as it is (Catch, then ``fail``).

Runs with ``include_images`` store the images in PRODUCT_IMAGES_BUCKET (S3; moto's locally,
through AWS_ENDPOINT_URL).
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from pos_gateway.aws_secrets import database_credentials, secret_json
from pos_gateway.crypto import cipher_from_secret
from pos_gateway.db import ConnectionFactory, DatabaseUnavailable, queries, tenant_transaction
from pos_gateway.providers.errors import RetryLater
from pos_gateway.rpapos import sync
from pos_gateway.rpapos.images import S3ImageStore
from pos_gateway.rpapos.rest import tenant_base_url
from pos_gateway.rpapos.soap import DEFAULT_ENDPOINT, RpaposSoapClient
from pos_gateway.rpapos.sync import SyncDeps, SyncRunNotFound
from pos_gateway.settings import RpaposSyncSettings

_SQL = queries.load(__file__, "tasks.sql")
logger = Logger(child=True)

Action = Literal["attach", "step", "park", "finalize", "fail"]
DATABASE_RETRY_AFTER_SECONDS = 5
STEP_FUNCTIONS_RETRY_AFTER_SECONDS = 5
SECRETS_RETRY_AFTER_SECONDS = 5


class TaskError(BaseModel):
    """What a Catch records (``$.error``): the error's name and its cause (for a Lambda task,
    the function's error as JSON: errorType, errorMessage, stackTrace)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    error: str = Field(default="States.TaskFailed", alias="Error")
    cause: str | None = Field(default=None, alias="Cause")

    def describe(self) -> str:
        """``<error>: <message>``: the function's errorMessage when the cause carries one."""
        message = self.cause or ""
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            message = str(parsed["errorMessage"])
        return f"{self.error}: {message}" if message else self.error


class TaskInput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Action
    sync_run_id: UUID
    tenant_id: UUID | None = None  # None: the run's own (looked up)
    execution_arn: str | None = Field(default=None, min_length=1, max_length=2048)
    task_token: str | None = Field(default=None, min_length=1, max_length=8192, repr=False)
    error: TaskError | None = None


@contextmanager
def transient_as_retry_later() -> Iterator[None]:
    """Whatever passes with time leaves as ``RetryLater`` itself: the name the Retry matches."""
    try:
        yield
    except RetryLater as exc:
        if type(exc) is RetryLater:
            raise
        raise RetryLater(f"{type(exc).__name__}: {exc}", exc.retry_after_seconds) from exc
    except DatabaseUnavailable as exc:
        raise RetryLater(f"the database is unavailable: {exc}", DATABASE_RETRY_AFTER_SECONDS) from exc
    except GetParameterError as exc:  # Secrets Manager throttled or unreachable (the secrets are there)
        raise RetryLater(f"a secret could not be read: {exc}", SECRETS_RETRY_AFTER_SECONDS) from exc


@dataclass(frozen=True)
class SyncTasks:
    deps: Callable[[], SyncDeps]  # fresh per task: the cipher follows key rotation
    sfn_client: Any

    def run(self, task: TaskInput) -> dict[str, Any]:
        handlers: dict[Action, Callable[[TaskInput, SyncDeps], dict[str, Any]]] = {
            "attach": self.attach,
            "step": self.step,
            "park": self.park,
            "finalize": self.finalize,
            "fail": self.fail,
        }
        with transient_as_retry_later():
            return handlers[task.action](task, self.deps())

    def attach(self, task: TaskInput, deps: SyncDeps) -> dict[str, Any]:
        # Always the run's own tenant: a wrong one in the input would hide the run from every task.
        tenant_id = self._run_tenant(task.sync_run_id, deps)
        if tenant_id is None:
            raise SyncRunNotFound(f"no sync run {task.sync_run_id}")
        if task.tenant_id is not None and task.tenant_id != tenant_id:
            logger.warning(
                "the execution named another tenant than the run's", extra={"named": str(task.tenant_id)}
            )
        if task.execution_arn is not None:
            sync.attach_execution(tenant_id, task.sync_run_id, task.execution_arn, deps=deps)
        return {"tenant_id": str(tenant_id), "sync_run_id": str(task.sync_run_id)}

    def step(self, task: TaskInput, deps: SyncDeps) -> dict[str, Any]:
        tenant_id = self._known_tenant(task, deps)
        return sync.advance(tenant_id, task.sync_run_id, deps=deps).as_json()

    def park(self, task: TaskInput, deps: SyncDeps) -> dict[str, Any]:
        if task.task_token is None:
            raise ValueError("park needs the task's callback token (task_token)")
        tenant_id = self._known_tenant(task, deps)
        if sync.park(tenant_id, task.sync_run_id, task.task_token, deps=deps) == "parked":
            return {"parked": True}
        try:
            self.sfn_client.send_task_success(
                taskToken=task.task_token, output=json.dumps({"sync_run_id": str(task.sync_run_id)})
            )
        except (BotoCoreError, ClientError) as exc:
            raise RetryLater(f"SendTaskSuccess failed: {exc}", STEP_FUNCTIONS_RETRY_AFTER_SECONDS) from exc
        return {"parked": False}

    def finalize(self, task: TaskInput, deps: SyncDeps) -> dict[str, Any]:
        tenant_id = self._known_tenant(task, deps)
        return {"completed": sync.finalize(tenant_id, task.sync_run_id, deps=deps)}

    def fail(self, task: TaskInput, deps: SyncDeps) -> dict[str, Any]:
        tenant_id = self._tenant(task, deps)
        if tenant_id is None:
            return {"failed": False}  # no such run: nothing to record
        error = task.error or TaskError()
        try:
            failed = sync.fail(tenant_id, task.sync_run_id, error.describe(), deps=deps)
        except SyncRunNotFound:
            failed = False
        return {"failed": failed}

    def _known_tenant(self, task: TaskInput, deps: SyncDeps) -> UUID:
        tenant_id = self._tenant(task, deps)
        if tenant_id is None:
            raise SyncRunNotFound(f"no sync run {task.sync_run_id}")
        return tenant_id

    @classmethod
    def _tenant(cls, task: TaskInput, deps: SyncDeps) -> UUID | None:
        return task.tenant_id if task.tenant_id is not None else cls._run_tenant(task.sync_run_id, deps)

    @staticmethod
    def _run_tenant(run_id: UUID, deps: SyncDeps) -> UUID | None:
        connection = deps.connections.get()
        with tenant_transaction(connection, None):
            row = connection.execute(_SQL.run_tenant.sql, {"sync_run_id": run_id}).fetchone()
        return None if row is None or row["tenant_id"] is None else UUID(str(row["tenant_id"]))


def sync_deps_from_settings(settings: RpaposSyncSettings) -> Callable[[], SyncDeps]:
    """The engine's collaborators, as configured; the cipher re-read with the secrets' max age."""
    connections = ConnectionFactory(
        database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds)
    )
    endpoint = settings.rpapos_soap_endpoint or DEFAULT_ENDPOINT
    image_store = (
        S3ImageStore(settings.product_images_bucket, s3_client()) if settings.product_images_bucket else None
    )
    template = settings.rpapos_base_url_template

    def base_url(subdomain: str) -> str:
        tenant_base_url(subdomain)  # refuses anything but one DNS label
        return template.replace("{subdomain}", subdomain.strip().lower())

    def soap_client(*, token: str | None, estacion_trabajo: int | None) -> RpaposSoapClient:
        return RpaposSoapClient(
            endpoint,
            token=token,
            estacion_trabajo=estacion_trabajo,
            operation_timeout=settings.rpapos_soap_timeout_seconds,
        )

    def deps() -> SyncDeps:
        keys = secret_json(settings.encryption_keys_secret_arn, settings.secret_max_age_seconds)
        return SyncDeps(
            connections=connections,
            cipher=cipher_from_secret(keys),
            soap_client=soap_client,
            base_url=base_url,
            page_size=settings.page_size,
            image_store=image_store,
            image_page_size=settings.image_page_size,
            image_step_seconds=settings.image_step_seconds,
        )

    return deps


def s3_client() -> Any:
    """The images' S3 client: bounded waits (botocore retries throttling and 5xx itself); what
    still fails is the store's RetryLater, and the state machine retries the step."""
    config = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("s3", config=config)


def sync_tasks_from_settings(settings: RpaposSyncSettings, sfn_client: Any) -> SyncTasks:
    return SyncTasks(sync_deps_from_settings(settings), sfn_client)
