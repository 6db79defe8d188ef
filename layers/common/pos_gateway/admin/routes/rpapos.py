"""/admin/tenants/{tenant_id}/rpapos/...: RPApos connections, their SAT device, and sync runs;
/admin/rpapos/sync-runs/{run_id}/product-image-import-job (the seed's route).

Reading is open to the tenant's client (connections.read); connections, the device and the
account check are a platform admin's (connections.write); runs are started, paused, resumed and
cancelled by a platform admin or the tenant's client (sync.write). No answer carries a secret
(see pos_gateway.admin.rpapos and pos_gateway.admin.rpapos_runs).
"""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from botocore.exceptions import BotoCoreError, ClientError

from pos_gateway.admin import rpapos, rpapos_runs
from pos_gateway.admin.access import Permission
from pos_gateway.admin.docs import responses
from pos_gateway.admin.routes.common import (
    DEFAULT_PAGE,
    Cursor,
    Limit,
    OptionalId,
    changing,
    reading,
    services,
)
from pos_gateway.http import ApiError, ErrorBody
from pos_gateway.rpapos.planner import SyncRequest
from pos_gateway.rpapos.runs import SyncRun

router = Router()
TAG = ["RPApos"]
BASE = "/admin/tenants/<tenant_id>/rpapos"
CONNECTIONS = f"{BASE}/connections"
ONE = f"{CONNECTIONS}/<connection_id>"
RUN = f"{BASE}/sync-runs/<run_id>"

IncludeDeleted = Annotated[bool, Query(description="Also list soft-deleted connections")]
BusinessId = Annotated[UUID | None, Query(alias="businessId", description="The tenant (the seed's name)")]


def _with_upstream(documented: dict[int, Any]) -> dict[int, Any]:
    """Routes that call RPApos or Step Functions also answer 502 (and 503 when they are down)."""
    return {
        **documented,
        502: {
            "description": "RPApos or Step Functions answered with an error: see error.code",
            "content": {"application/json": {"model": ErrorBody}},
        },
    }


# ---------------------------------------------------------------- connections


@router.get(
    CONNECTIONS,
    tags=TAG,
    summary="List the tenant's RPApos connections, newest first (no secret: has_* flags)",
    responses=responses(200, "A page of connections", rpapos.RpaposConnectionPage, 404),
)
def list_connections(
    tenant_id: UUID,
    include_deleted: IncludeDeleted = False,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> rpapos.RpaposConnectionPage:
    with reading(
        router,
        Permission.CONNECTIONS_READ,
        tenant_id=tenant_id,
        resource="rpapos_connection",
        filters={"include_deleted": include_deleted, "limit": limit, "cursor": cursor},
    ) as connection:
        return rpapos.list_connections(
            connection, include_deleted=include_deleted, limit=limit, cursor=cursor
        )


@router.post(
    CONNECTIONS,
    tags=TAG,
    status_code=201,
    summary="Connect an RPApos subdomain; passwords and the API key are sealed at once",
    responses=responses(201, "The new (or revived) connection", rpapos.RpaposConnection, 404, 409),
)
def create_connection(tenant_id: UUID, request: rpapos.NewRpaposConnection) -> rpapos.RpaposConnection:
    with changing(router, Permission.CONNECTIONS_WRITE, tenant_id=tenant_id) as change:
        return rpapos.create_connection(change, request, services(router).cipher())


@router.get(
    ONE,
    tags=TAG,
    summary="An RPApos connection (settings, sync status, SAT registration; never a secret)",
    responses=responses(200, "The connection", rpapos.RpaposConnection, 404),
)
def get_connection(tenant_id: UUID, connection_id: UUID) -> rpapos.RpaposConnection:
    with reading(
        router,
        Permission.CONNECTIONS_READ,
        tenant_id=tenant_id,
        resource="rpapos_connection",
        target_id=connection_id,
    ) as connection:
        return rpapos.get_connection(connection, connection_id)


@router.patch(
    ONE,
    tags=TAG,
    summary="Change an RPApos connection's settings or credentials (only the fields given)",
    responses=responses(200, "The connection after the change", rpapos.RpaposConnection, 404, 409),
)
def update_connection(
    tenant_id: UUID, connection_id: UUID, request: rpapos.RpaposConnectionPatch
) -> rpapos.RpaposConnection:
    with changing(router, Permission.CONNECTIONS_WRITE, tenant_id=tenant_id) as change:
        return rpapos.update_connection(change, connection_id, request, services(router).cipher())


@router.delete(
    ONE,
    tags=TAG,
    summary="Soft-delete an RPApos connection (its runs and id map stay; connect it again to revive)",
    responses=responses(200, "The deleted connection", rpapos.RpaposConnection, 404, 409),
)
def delete_connection(tenant_id: UUID, connection_id: UUID) -> rpapos.RpaposConnection:
    with changing(router, Permission.CONNECTIONS_WRITE, tenant_id=tenant_id) as change:
        return rpapos.delete_connection(change, connection_id)


@router.post(
    f"{ONE}/device",
    tags=TAG,
    summary="Register the SAT device (Dispositivo_Registra_2): the SOAP token is sealed, never shown",
    responses=_with_upstream(
        responses(200, "The connection, has_soap_token true", rpapos.RpaposConnection, 404, 409)
    ),
)
def register_device(tenant_id: UUID, connection_id: UUID) -> rpapos.RpaposConnection:
    found = services(router)
    with changing(router, Permission.CONNECTIONS_WRITE, tenant_id=tenant_id) as change:
        return rpapos.register_device(change, connection_id, found.cipher(), found.rpapos_soap)


@router.post(
    f"{ONE}/device/validate",
    tags=TAG,
    summary="Check the SAT credentials with RPApos (Cuenta_Validar_1); nothing is written",
    responses=_with_upstream(responses(200, "RPApos's verdict", rpapos.AccountValidation, 404, 409)),
)
def validate_account(tenant_id: UUID, connection_id: UUID) -> rpapos.AccountValidation:
    found = services(router)
    with reading(
        router,
        Permission.CONNECTIONS_WRITE,
        tenant_id=tenant_id,
        resource="rpapos_connection",
        target_id=connection_id,
        filters={"check": "Cuenta_Validar_1"},
    ) as connection:
        login = rpapos.account_login(connection, connection_id, found.cipher())
    return rpapos.validate_account(login, found.rpapos_soap)


# ---------------------------------------------------------------- sync runs


@router.post(
    f"{ONE}/sync-runs",
    tags=TAG,
    status_code=202,
    summary="Start a sync run (catalog, historical, incremental or custom); the state machine runs it",
    responses=_with_upstream(responses(202, "The run, running", SyncRun, 404, 409)),
)
def start_run(tenant_id: UUID, connection_id: UUID, request: SyncRequest) -> SyncRun:
    found = services(router)
    state_machine_arn = found.state_machine_arn
    with changing(router, Permission.SYNC_WRITE, tenant_id=tenant_id) as change:
        if state_machine_arn is None:  # after the caller's checks; nothing is written
            raise rpapos_runs.SyncNotConfigured("RPApos sync runs are not configured here (no state machine)")
        run = rpapos_runs.start(change, connection_id, request)
    try:
        rpapos_runs.start_execution(found.sfn_client(), state_machine_arn, run)
    except (BotoCoreError, ClientError) as exc:
        reason = rpapos_runs.start_failure_reason(exc)
        with changing(router, Permission.SYNC_WRITE, tenant_id=tenant_id) as change:
            rpapos_runs.record_start_failure(change, run.id, reason)
        raise rpapos_runs.SyncStartFailed(f"sync run {run.id} was recorded as failed: {reason}") from exc
    return run


@router.get(
    f"{ONE}/sync-runs",
    tags=TAG,
    summary="List a connection's sync runs, newest first",
    responses=responses(200, "A page of runs", rpapos_runs.SyncRunPage, 404),
)
def list_runs(
    tenant_id: UUID, connection_id: UUID, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> rpapos_runs.SyncRunPage:
    with reading(
        router,
        Permission.CONNECTIONS_READ,
        tenant_id=tenant_id,
        resource="sync_run",
        filters={"connection_id": connection_id, "limit": limit, "cursor": cursor},
    ) as connection:
        return rpapos_runs.list_runs(connection, connection_id, limit=limit, cursor=cursor)


@router.get(
    RUN,
    tags=TAG,
    summary="A sync run with its per-entity stats",
    responses=responses(200, "The run", SyncRun, 404),
)
def get_run(tenant_id: UUID, run_id: UUID) -> SyncRun:
    with reading(
        router, Permission.CONNECTIONS_READ, tenant_id=tenant_id, resource="sync_run", target_id=run_id
    ) as connection:
        return rpapos_runs.get_run(connection, run_id)


def _control(tenant_id: UUID, run_id: UUID, action: rpapos_runs.Control) -> SyncRun:
    found = services(router)
    with changing(router, Permission.SYNC_WRITE, tenant_id=tenant_id) as change:
        result = rpapos_runs.control(change, run_id, action)
    if result.task_token is None:
        return result.run
    try:
        rpapos_runs.wake(found.sfn_client(), result.task_token, run_id)
    except rpapos_runs.WakeFailed as exc:
        with changing(router, Permission.SYNC_WRITE, tenant_id=tenant_id) as change:
            rpapos_runs.record_wake_failure(
                change, run_id, result.task_token, f"SendTaskSuccess failed ({exc})"
            )
        raise rpapos_runs.StepFunctionsUnavailable(
            f"the parked run could not be woken: it is parked again; {action} it again to retry"
        ) from exc
    return result.run


@router.post(
    f"{RUN}/pause",
    tags=TAG,
    summary="Pause a run before its next page (the execution parks until resumed or cancelled)",
    responses=responses(200, "The run, pause requested", SyncRun, 404, 409),
)
def pause_run(tenant_id: UUID, run_id: UUID) -> SyncRun:
    return _control(tenant_id, run_id, "pause")


@router.post(
    f"{RUN}/resume",
    tags=TAG,
    summary="Resume a paused run (a parked execution is woken)",
    responses=responses(200, "The run, running again", SyncRun, 404, 409),
)
def resume_run(tenant_id: UUID, run_id: UUID) -> SyncRun:
    return _control(tenant_id, run_id, "resume")


@router.post(
    f"{RUN}/cancel",
    tags=TAG,
    summary="Cancel a run after its current page (a parked run ends cancelled at once)",
    responses=responses(200, "The run, cancel requested or cancelled", SyncRun, 404, 409),
)
def cancel_run(tenant_id: UUID, run_id: UUID) -> SyncRun:
    return _control(tenant_id, run_id, "cancel")


@router.get(
    "/admin/rpapos/sync-runs/<run_id>/product-image-import-job",
    tags=TAG,
    summary="The product image import job of a sync run (the tenant as businessId or tenant_id)",
    responses=responses(200, "The import job", rpapos_runs.ImportJob, 404),
)
def image_import_job(
    run_id: UUID, business_id: BusinessId = None, tenant_id: OptionalId = None
) -> rpapos_runs.ImportJob:
    if business_id is not None and tenant_id is not None and business_id != tenant_id:
        raise ApiError(
            "businessId and tenant_id name different tenants",
            [{"loc": "query.businessId", "type": "mismatch", "msg": "differs from tenant_id"}],
            status_code=422,
            code="invalid_request",
        )
    with reading(
        router,
        Permission.CONNECTIONS_READ,
        tenant_id=business_id or tenant_id,
        resource="import_job",
        filters={"sync_run_id": run_id},
    ) as connection:
        return rpapos_runs.image_import_job(connection, run_id)
