"""/admin/transactions, /admin/reward-events, /admin/webhook-events (+ replay), /admin/dlq (+ redrive).

Lists: platform admins and tenant clients (a client in its own tenant only; naming another
answers 404). Replay and the dead-letter queue: platform admins only.
"""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from pos_gateway.admin import operations
from pos_gateway.admin.access import Permission
from pos_gateway.admin.docs import responses
from pos_gateway.admin.routes.common import (
    DEFAULT_PAGE,
    Cursor,
    FromTime,
    Limit,
    OptionalId,
    ToTime,
    changing,
    reading,
    services,
)

router = Router()
TAG = ["Operations"]

ProviderFilter = Annotated[operations.ProviderName | None, Query()]


@router.get(
    "/admin/transactions",
    tags=TAG,
    summary="List POS transactions, newest first",
    responses=responses(200, "A page of transactions", operations.TransactionPage, 404),
)
def list_transactions(
    tenant_id: OptionalId = None,
    user_id: OptionalId = None,
    provider: ProviderFilter = None,
    from_time: FromTime = None,
    to_time: ToTime = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> operations.TransactionPage:
    window = operations.TimeWindow(from_time, to_time)
    filters = operations.ActivityFilter(tenant_id, user_id, provider, window)
    with reading(
        router,
        Permission.OPERATIONS_READ,
        tenant_id=tenant_id,
        resource="transaction",
        filters={**filters.parameters(), "limit": limit, "cursor": cursor},
    ) as connection:
        return operations.list_transactions(connection, filters, limit=limit, cursor=cursor)


@router.get(
    "/admin/reward-events",
    tags=TAG,
    summary="List reward events (earn, redeem, reversal), newest first",
    responses=responses(200, "A page of reward events", operations.RewardEventPage, 404),
)
def list_reward_events(
    tenant_id: OptionalId = None,
    user_id: Annotated[UUID | None, Query(description="The wallet's member")] = None,
    provider: Annotated[
        operations.ProviderName | None, Query(description="The provider of the event's transaction")
    ] = None,
    kind: Annotated[operations.RewardKind | None, Query()] = None,
    from_time: FromTime = None,
    to_time: ToTime = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> operations.RewardEventPage:
    window = operations.TimeWindow(from_time, to_time)
    filters = operations.ActivityFilter(tenant_id, user_id, provider, window)
    with reading(
        router,
        Permission.OPERATIONS_READ,
        tenant_id=tenant_id,
        resource="reward_event",
        filters={**filters.parameters(), "kind": kind, "limit": limit, "cursor": cursor},
    ) as connection:
        return operations.list_reward_events(connection, filters, kind=kind, limit=limit, cursor=cursor)


@router.get(
    "/admin/webhook-events",
    tags=TAG,
    summary="List raw webhook events (metadata only), newest first",
    description="Quarantined events (merchant unknown on arrival) have no tenant: only a platform "
    "admin reading without tenant_id sees them.",
    responses=responses(200, "A page of webhook events", operations.WebhookEventPage, 404),
)
def list_webhook_events(
    tenant_id: OptionalId = None,
    provider: ProviderFilter = None,
    state: Annotated[operations.WebhookState | None, Query()] = None,
    from_time: FromTime = None,
    to_time: ToTime = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> operations.WebhookEventPage:
    window = operations.TimeWindow(from_time, to_time)
    with reading(
        router,
        Permission.OPERATIONS_READ,
        tenant_id=tenant_id,
        resource="webhook_event",
        filters={
            "tenant_id": tenant_id,
            "provider": provider,
            "state": state,
            **window.parameters(),
            "limit": limit,
            "cursor": cursor,
        },
    ) as connection:
        return operations.list_webhook_events(
            connection,
            tenant_id=tenant_id,
            provider=provider,
            state=state,
            window=window,
            limit=limit,
            cursor=cursor,
        )


@router.post(
    "/admin/webhook-events/replay",
    tags=TAG,
    summary="Replay raw webhook events through crediting (platform admin)",
    description="Per id: queued (unprocessed or parked: unparked, sweep count reset, sent to the "
    "ingest queue), already_processed (nothing sent), released (quarantined, its merchant now "
    "connected: routed to that tenant and queued), still_quarantined, not_found. One audit row.",
    responses=responses(200, "One result per distinct event id", operations.ReplayAnswer),
)
def replay_webhook_events(request: operations.ReplayRequest) -> operations.ReplayAnswer:
    with changing(router, Permission.OPERATIONS_WRITE, tenant_id=None) as change:
        replayed = operations.replay(change, request)
    # Sent only after the commit, so a message never names bookkeeping that rolled back. If a send
    # fails, its event is committed unprocessed and unparked: the outbox sweeper re-sends it after
    # its grace period (the answer says enqueued: false).
    found = services(router)
    return operations.enqueue_replayed(found.sqs_client, found.ingest_queue_url, replayed)


@router.get(
    "/admin/dlq",
    tags=TAG,
    summary="Depth of the dead-letter queue and the ingest queue (platform admin)",
    responses=responses(200, "Approximate message counts", operations.QueueDepths, 503),
)
def dead_letter_queue() -> operations.QueueDepths:
    found = services(router)
    with reading(router, Permission.OPERATIONS_WRITE, tenant_id=None, resource="dlq"):
        return operations.queue_depths(
            found.sqs_client,
            dead_letter_queue_url=found.dead_letter_queue_url,
            ingest_queue_url=found.ingest_queue_url,
        )


@router.post(
    "/admin/dlq/redrive",
    tags=TAG,
    summary="Move dead-lettered messages back to the ingest queue (platform admin)",
    responses=responses(200, "How many moved, how many remain", operations.RedriveResult, 503),
)
def redrive_dead_letter_queue(request: operations.RedriveRequest | None = None) -> operations.RedriveResult:
    found = services(router)
    with changing(router, Permission.OPERATIONS_WRITE, tenant_id=None) as change:
        return operations.redrive_dead_letters(
            change,
            found.sqs_client,
            dead_letter_queue_url=found.dead_letter_queue_url,
            ingest_queue_url=found.ingest_queue_url,
            request=request or operations.RedriveRequest(),
        )
