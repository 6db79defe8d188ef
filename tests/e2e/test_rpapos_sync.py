"""End to end through the local stack: RPApos sync runs executed by moto from the real ASL, every
task answered by functions/rpapos_sync in its worker process, against the fake RPApos (real HTTP
and SOAP) and the stack's database; the scheduler function on its schedule's event."""

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import pytest

from local import seed
from local.database import Cluster, Database
from local.fake_rpapos import Catalog
from local.stack import LocalStack
from pos_gateway.db import tenant_transaction
from pos_gateway.rpapos import runs
from pos_gateway.rpapos.contract import EntityType
from pos_gateway.rpapos.planner import Mode, SyncRequest
from pos_gateway.rpapos.soap import RpaposSoapClient
from tests.helpers import e2e_stack_config, one, unique
from tests.rpapos_support import PAGE_SIZE, PASSWORD, USER, small_volume

pytestmark = pytest.mark.e2e

Conn = psycopg.Connection[Any]
VOLUME = small_volume(documents=3)
CATALOG_RUN = SyncRequest(mode=Mode.CATALOG)
CONNECTION_TABLE = "rpapos.rpapos_connection"
SCHEDULER = "RpaposSchedulerFunction"
RUN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Shop:
    tenant_id: uuid.UUID
    connection_id: uuid.UUID
    subdomain: str


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = e2e_stack_config(cluster, tmp_path_factory.mktemp("stack"), "rpapos_sync")
    with LocalStack(replace(config, extra_environment={"RPAPOS_PAGE_SIZE": str(PAGE_SIZE)})) as running:
        yield running


@pytest.fixture(scope="module")
def admin(stack: LocalStack) -> Iterator[Conn]:
    """The admin API's role: runs are started, paused, resumed and cancelled with it."""
    with Database(stack.cluster, stack.config.dbname).connect_as("pos_gateway_admin") as conn:
        yield conn


@pytest.fixture
def rpapos(stack: LocalStack) -> Iterator[LocalStack]:
    stack.fake_rpapos.clear_faults()
    yield stack
    stack.fake_rpapos.clear_faults()


# ---------------------------------------------------------------- helpers


def connect_shop(stack: LocalStack, *, sync_interval_minutes: int | None = None) -> Shop:
    """A tenant with an RPApos connection (as the DB owner, the password and the device token
    sealed by the stack's cipher) to a fresh tenant of the fake RPApos, its device registered."""
    subdomain = unique("shop-").lower()
    stack.fake_rpapos.add_tenant(subdomain, USER, PASSWORD, volume=VOLUME)
    device = RpaposSoapClient(stack.fake_rpapos.soap_url, operation_timeout=5.0)
    token = device.register_device(USER, PASSWORD, subdomain, "pos-gateway").token
    connection_id = uuid.uuid4()

    def sealed(column: str, plaintext: str) -> str:
        return stack.cipher.encrypt(
            plaintext, table=CONNECTION_TABLE, column=column, row_id=str(connection_id)
        )

    with stack.owner_connection() as owner:
        tenant_id = seed.create_tenant(owner, unique("Restaurante "))
        owner.execute(
            "INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted,"
            " soap_token_encrypted, estacion_trabajo, timezone, sync_interval_minutes)"
            " VALUES (%s, %s, %s, %s, %s, %s, 1, 'UTC', %s)",
            (
                connection_id,
                tenant_id,
                subdomain,
                USER,
                sealed("password_encrypted", PASSWORD),
                sealed("soap_token_encrypted", token),
                sync_interval_minutes,
            ),
        )
    return Shop(tenant_id, connection_id, subdomain)


def start_run(
    admin: Conn, shop: Shop, request: SyncRequest = CATALOG_RUN, *, paused: bool = False
) -> uuid.UUID:
    with tenant_transaction(admin, shop.tenant_id):
        run = runs.start_run(admin, shop.tenant_id, shop.connection_id, request, None)
        if paused:
            runs.pause_run(admin, run.id)
    return run.id


def start_execution(stack: LocalStack, run_id: uuid.UUID, **extra: Any) -> str:
    """As the admin API starts a run: named after it, its id as the input."""
    answer = stack.stepfunctions_client().start_execution(
        stateMachineArn=stack.rpapos_sync_state_machine_arn,
        name=str(run_id),
        input=json.dumps({"sync_run_id": str(run_id), **extra}),
    )
    arn: str = answer["executionArn"]
    return arn


def run_row(stack: LocalStack, run_id: uuid.UUID) -> dict[str, Any]:
    with stack.owner_connection() as owner:
        return dict(
            one(
                owner.execute(
                    "SELECT *, entity_types::text[] AS plan FROM rpapos.rpapos_sync_run WHERE id = %s",
                    (run_id,),
                ).fetchone()
            )
        )


def connection_row(stack: LocalStack, shop: Shop) -> dict[str, Any]:
    with stack.owner_connection() as owner:
        return dict(
            one(
                owner.execute(
                    "SELECT * FROM rpapos.rpapos_connection WHERE id = %s", (shop.connection_id,)
                ).fetchone()
            )
        )


def runs_of(stack: LocalStack, shop: Shop) -> list[dict[str, Any]]:
    with stack.owner_connection() as owner:
        return [
            dict(row)
            for row in owner.execute(
                "SELECT id, mode, status, execution_arn FROM rpapos.rpapos_sync_run"
                " WHERE connection_id = %s ORDER BY started_at",
                (shop.connection_id,),
            ).fetchall()
        ]


def wait_until[T](probe: Callable[[], T | None], timeout: float = 30.0, what: str = "the condition") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def finished(stack: LocalStack, execution_arn: str) -> dict[str, Any]:
    described = stack.wait_for_execution(execution_arn, RUN_TIMEOUT)
    assert described["status"] != "RUNNING", f"{execution_arn} still running"
    return described


def history(stack: LocalStack, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = stack.stepfunctions_client().get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return events


def state_data_sizes(events: list[dict[str, Any]]) -> list[int]:
    return [
        len(details.get("input") or details.get("output") or "")
        for event in events
        for key, details in event.items()
        if key in ("stateEnteredEventDetails", "stateExitedEventDetails")
    ]


def executions_of(stack: LocalStack, run_id: uuid.UUID) -> list[dict[str, Any]]:
    """The run's executions: ``{run}``, then ``{run}-1``, ``{run}-2``... by generation."""
    sfn = stack.stepfunctions_client()
    found = [
        execution
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=stack.rpapos_sync_state_machine_arn
        )
        for execution in page["executions"]
        if execution["name"] == str(run_id) or execution["name"].startswith(f"{run_id}-")
    ]
    return sorted(found, key=lambda e: 0 if e["name"] == str(run_id) else int(e["name"].rsplit("-", 1)[1]))


def assert_completed_catalog(stack: LocalStack, shop: Shop, run_id: uuid.UUID) -> dict[str, Any]:
    run = run_row(stack, run_id)
    assert run["status"] == "completed"
    assert run["completed_at"] is not None
    assert run["task_token"] is None
    stats = run["per_entity_stats"]
    for entity in run["plan"]:
        assert stats[entity]["status"] in ("completed", "archived_only"), entity
        assert stats[entity]["failed"] == 0, entity
    with stack.owner_connection() as owner:
        pages = one(
            owner.execute(
                "SELECT count(*) AS n FROM rpapos.rpapos_extraction_archive WHERE sync_run_id = %s", (run_id,)
            ).fetchone()
        )["n"]
    assert pages > len(run["plan"])  # several pages for some entities
    connection = connection_row(stack, shop)
    assert connection["last_synced_at"] == run["started_at"]
    assert connection["last_full_sync_at"] == run["started_at"]
    assert connection["last_error"] is None
    return run


# ---------------------------------------------------------------- tests


def test_the_stack_file_names_the_state_machine(stack: LocalStack) -> None:
    described = json.loads((stack.config.state_dir / "stack.json").read_text(encoding="utf-8"))
    assert described["rpapos_sync_state_machine_arn"] == stack.rpapos_sync_state_machine_arn
    assert described["rpapos_sync_state_machine_arn"].endswith(
        ":stateMachine:pos-gateway-rpapos_sync-rpapos-sync"
    )
    assert described["fake_rpapos_url"] == stack.fake_rpapos.base_url


def test_a_catalog_run_completes_through_the_real_state_machine(rpapos: LocalStack, admin: Conn) -> None:
    stack = rpapos
    # Given a connection and a catalog run started as the admin API starts it
    shop = connect_shop(stack)
    run_id = start_run(admin, shop)

    # When its execution runs
    execution = start_execution(stack, run_id)

    # Then it succeeds, page by page, and the run is completed with everything loaded
    assert finished(stack, execution)["status"] == "SUCCEEDED"
    run = assert_completed_catalog(stack, shop, run_id)
    assert run["execution_arn"] == execution
    events = history(stack, execution)
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered[:4] == ["Init", "Attach", "Start", "Step"]
    assert entered[-2:] == ["Finalize", "Completed"]
    assert entered.count("Step") > len(run["plan"])
    # and the states carry ids and the step's outcome only
    assert max(state_data_sizes(events)) < 1024


def test_a_paused_run_parks_on_its_token_and_resumes_with_send_task_success(
    rpapos: LocalStack, admin: Conn
) -> None:
    stack = rpapos
    # Given a run paused before its first page
    shop = connect_shop(stack)
    run_id = start_run(admin, shop, paused=True)
    execution = start_execution(stack, run_id)

    # When its execution reaches the pause, it parks: the token is stored and nothing polls
    wait_until(lambda: run_row(stack, run_id)["task_token"], what="the park")
    assert run_row(stack, run_id)["status"] == "paused"
    time.sleep(0.5)
    parked = len(history(stack, execution))
    time.sleep(2.0)
    assert len(history(stack, execution)) == parked
    assert history(stack, execution)[-1]["type"] == "TaskSubmitted"
    assert stack.stepfunctions_client().describe_execution(executionArn=execution)["status"] == "RUNNING"

    # When an operator resumes it (the engine hands back the token; the API wakes the execution)
    with tenant_transaction(admin, shop.tenant_id):
        control = runs.resume_run(admin, run_id)
    assert control.task_token is not None
    stack.stepfunctions_client().send_task_success(
        taskToken=control.task_token, output=json.dumps({"sync_run_id": str(run_id)})
    )

    # Then the run carries on to its end
    assert finished(stack, execution)["status"] == "SUCCEEDED"
    assert_completed_catalog(stack, shop, run_id)


def test_a_parked_run_cancelled_ends_cancelled(rpapos: LocalStack, admin: Conn) -> None:
    stack = rpapos
    shop = connect_shop(stack)
    run_id = start_run(admin, shop, paused=True)
    execution = start_execution(stack, run_id)
    wait_until(lambda: run_row(stack, run_id)["task_token"], what="the park")

    with tenant_transaction(admin, shop.tenant_id):
        control = runs.cancel_run(admin, run_id)
    assert control.task_token is not None
    stack.stepfunctions_client().send_task_success(
        taskToken=control.task_token, output=json.dumps({"sync_run_id": str(run_id)})
    )

    assert finished(stack, execution)["status"] == "SUCCEEDED"
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in history(stack, execution)
        if "stateEnteredEventDetails" in e
    ]
    assert entered[-1] == "Cancelled"
    run = run_row(stack, run_id)
    assert run["status"] == "cancelled"
    assert run["task_token"] is None
    assert connection_row(stack, shop)["last_synced_at"] is None


def test_a_long_run_continues_in_new_executions(rpapos: LocalStack, admin: Conn) -> None:
    stack = rpapos
    # Given a catalog run, and executions allowed five steps each
    shop = connect_shop(stack)
    run_id = start_run(admin, shop)
    first = start_execution(stack, run_id, steps_per_execution=5)

    # When it runs to its end
    wait_until(
        lambda: run_row(stack, run_id)["status"] in ("completed", "failed"),
        timeout=RUN_TIMEOUT,
        what="the run's end",
    )

    # Then it went on in executions {run}-1, {run}-2... each started by the previous one
    executions = executions_of(stack, run_id)
    assert len(executions) >= 3
    assert executions[0]["executionArn"] == first
    assert [e["name"] for e in executions] == [str(run_id)] + [
        f"{run_id}-{n}" for n in range(1, len(executions))
    ]
    for execution in executions:
        assert finished(stack, execution["executionArn"])["status"] == "SUCCEEDED"
    last = executions[-1]["executionArn"]
    run = assert_completed_catalog(stack, shop, run_id)
    assert run["execution_arn"] == last  # each execution records itself on the run


def test_a_transient_outage_is_retried_by_the_state_machine(rpapos: LocalStack, admin: Conn) -> None:
    stack = rpapos
    # Given RPApos failing (503) for longer than its client's own retries
    shop = connect_shop(stack)
    stack.fake_rpapos.fail(status=503, times=5, subdomain=shop.subdomain)
    run_id = start_run(admin, shop)

    # When the run's execution runs
    execution = start_execution(stack, run_id)

    # Then the step failed as RetryLater, was retried, and the run completed
    assert finished(stack, execution)["status"] == "SUCCEEDED"
    failures = [
        e["taskFailedEventDetails"]["error"] for e in history(stack, execution) if e["type"] == "TaskFailed"
    ]
    assert failures
    assert set(failures) == {"RetryLater"}
    assert_completed_catalog(stack, shop, run_id)


def test_refused_credentials_fail_the_run_with_its_error(rpapos: LocalStack, admin: Conn) -> None:
    stack = rpapos
    shop = connect_shop(stack)
    stack.fake_rpapos.reject_logins(shop.subdomain, times=1)
    run_id = start_run(admin, shop)

    described = finished(stack, start_execution(stack, run_id))

    assert described["status"] == "FAILED"
    assert described["error"] == "RpaposSyncFailed"
    run = run_row(stack, run_id)
    assert run["status"] == "failed"
    assert "BadCredentials" in run["last_error"]
    connection = connection_row(stack, shop)
    assert connection["last_error"] == run["last_error"]
    assert connection["status"] == "error"
    assert PASSWORD not in run["last_error"]


def test_the_scheduler_starts_a_due_connection_once(rpapos: LocalStack, admin: Conn) -> None:
    stack = rpapos
    # Given a connection synced every hour, never synced yet
    shop = connect_shop(stack, sync_interval_minutes=60)

    # When the schedule runs
    report = stack.run_schedule(SCHEDULER)

    # Then one incremental run is started, and its execution (named after it) completes it
    assert report == {"due": 1, "started": 1, "skipped": 0, "startFailures": 0, "abandoned": 0}
    (started,) = runs_of(stack, shop)
    assert started["mode"] == "incremental"
    execution = wait_until(lambda: run_row(stack, started["id"])["execution_arn"], what="the execution")
    assert execution.endswith(f":{started['id']}")
    assert finished(stack, execution)["status"] == "SUCCEEDED"
    assert run_row(stack, started["id"])["status"] == "completed"

    # When the schedule runs again within the interval: nothing is due
    assert stack.run_schedule(SCHEDULER)["due"] == 0

    # Given the interval elapsed but a run active (started by an operator, say)
    with stack.owner_connection() as owner:
        owner.execute(
            "UPDATE rpapos.rpapos_sync_run SET started_at = started_at - interval '2 hours' WHERE id = %s",
            (started["id"],),
        )
        owner.execute(
            "UPDATE rpapos.rpapos_connection SET last_synced_at = last_synced_at - interval '2 hours'"
            " WHERE id = %s",
            (shop.connection_id,),
        )
    active = start_run(admin, shop, SyncRequest(mode=Mode.INCREMENTAL))

    # Then no second run is started
    assert stack.run_schedule(SCHEDULER)["due"] == 0
    assert [run["id"] for run in runs_of(stack, shop) if run["status"] in ("running", "paused")] == [active]

    # and once that run has ended, the connection is due again
    with stack.owner_connection() as owner:
        owner.execute(
            "UPDATE rpapos.rpapos_sync_run SET status = 'cancelled', completed_at = now(),"
            " started_at = started_at - interval '2 hours' WHERE id = %s",
            (active,),
        )
    assert stack.run_schedule(SCHEDULER)["started"] == 1
    newest = runs_of(stack, shop)[-1]
    assert newest["id"] not in (started["id"], active)
    execution = wait_until(lambda: run_row(stack, newest["id"])["execution_arn"], what="the execution")
    assert finished(stack, execution)["status"] == "SUCCEEDED"


def test_a_run_with_images_stores_them_in_the_stacks_bucket(rpapos: LocalStack, admin: Conn) -> None:
    stack = rpapos
    # Given a run of the PLUs with their images (every 3rd PLU of the fake has a PNG)
    shop = connect_shop(stack)
    plus_only = (EntityType.PLU_GRUPO, EntityType.UNIDAD_MEDIDA, EntityType.PLU)
    run_id = start_run(
        admin, shop, SyncRequest(mode=Mode.CUSTOM, entity_types=plus_only, include_images=True)
    )

    # When its execution runs
    assert finished(stack, start_execution(stack, run_id))["status"] == "SUCCEEDED"

    # Then every PLU has its import row, and each image is in moto's bucket under image_url
    run = run_row(stack, run_id)
    assert run["status"] == "completed"
    catalog = Catalog(shop.subdomain, VOLUME)  # the fake's data for the shop (seeded by its subdomain)
    with_image = [
        i for i in range(VOLUME.plus) if catalog.has_image(i) and not catalog.deleted(EntityType.PLU, i)
    ]
    stats = run["per_entity_stats"]["product_images"]
    assert (stats["status"], stats["failed"], stats["loaded"]) == ("completed", 0, len(with_image))
    with stack.owner_connection() as owner:
        job = one(
            owner.execute(
                "SELECT id, status, options, total_rows FROM catalog.import_job"
                " WHERE options ->> 'syncRunId' = %s",
                (str(run_id),),
            ).fetchone()
        )
        keys = {
            row["external_id"]: row["image_url"]
            for row in owner.execute(
                "SELECT m.external_id, p.image_url FROM rpapos.rpapos_id_map m"
                " JOIN catalog.product p ON p.id = m.flowpos_entity_id"
                " WHERE m.tenant_id = %s AND m.entity_type = 'plu' AND p.image_url IS NOT NULL",
                (shop.tenant_id,),
            ).fetchall()
        }
    assert (job["status"], job["total_rows"]) == ("completed", stats["extracted"])
    s3 = stack.aws.client("s3")
    assert job["options"]["bucket"] in {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert sorted(keys) == sorted(str(catalog.code(EntityType.PLU, i)) for i in with_image)
    for i in with_image:
        stored = s3.get_object(
            Bucket=job["options"]["bucket"], Key=keys[str(catalog.code(EntityType.PLU, i))]
        )
        assert (stored["Body"].read(), stored["ContentType"]) == (catalog.image(i), "image/png")
