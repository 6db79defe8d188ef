"""Customer linker: members whose email or mobile matches a tenant's unclaimed sales claim them.

A sale whose customer had no account is kept anonymous with its customer reference. Once a user
with that email or mobile exists (users are global; a consumer joins a tenant's program by
buying there), a scheduled run finds the (tenant, member) pairs across tenants through a
``SECURITY DEFINER`` function, then links each pair in its own tenant transaction with
:func:`pos_gateway.loyalty.linking.link_member`, which credits every claimed sale once by the
rule version of its time. Runs are bounded (pairs per page, pairs per run, time left); running
again, or concurrently, credits nothing twice.
"""

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from pos_gateway.aws_secrets import database_credentials
from pos_gateway.db import ConnectionFactory, DatabaseUnavailable, queries, tenant_transaction
from pos_gateway.loyalty.linking import LinkResult, link_member
from pos_gateway.settings import LinkerSettings

logger = Logger(child=True)

_SQL = queries.load(__file__, "linking.sql")

Link = Callable[[ConnectionFactory, UUID, UUID], LinkResult]


@dataclass(frozen=True, slots=True)
class LinkPair:
    tenant_id: UUID
    user_id: UUID


class LinkCandidates:
    """The linker's only cross-tenant read: pairs to link, paged in (tenant_id, user_id) order."""

    def __init__(self, connections: ConnectionFactory) -> None:
        self._connections = connections

    def page(self, after: LinkPair | None, limit: int) -> list[LinkPair]:
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            rows = connection.execute(
                _SQL.link_candidates.sql,
                {
                    "after_tenant_id": after.tenant_id if after else None,
                    "after_user_id": after.user_id if after else None,
                    "limit": limit,
                },
            ).fetchall()
        return [LinkPair(row["tenant_id"], row["user_id"]) for row in rows]


@dataclass(frozen=True, slots=True)
class LinkerPolicy:
    batch_size: int
    max_pairs: int
    reserve_milliseconds: int = 0


class LinkReport(BaseModel):
    """What one run did."""

    # Counted up during the run, then returned as it is.
    model_config = ConfigDict(populate_by_name=True)

    pairs: int = 0  # pairs taken up (linked, found already linked by a concurrent run, or failed)
    pairs_linked: int = Field(default=0, alias="pairsLinked")  # pairs that claimed at least one sale
    transactions_claimed: int = Field(default=0, alias="transactionsClaimed")
    points_credited: int = Field(default=0, alias="pointsCredited")
    failures: int = 0
    batches: int = 0
    stopped_early: bool = Field(default=False, alias="stoppedEarly")


def _no_deadline() -> int:
    return 2**31


class CustomerLinker:
    def __init__(
        self,
        connections: ConnectionFactory,
        policy: LinkerPolicy,
        *,
        candidates: LinkCandidates | None = None,
        link: Link = link_member,
    ) -> None:
        self._connections = connections
        self._candidates = candidates or LinkCandidates(connections)
        self._policy = policy
        self._link = link

    def run(self, time_left_ms: Callable[[], int] = _no_deadline) -> LinkReport:
        """Link pairs page by page until none is left, max_pairs is reached or time runs short.

        Each pair commits on its own. A pair that fails is logged, counted and passed over (the
        next run takes it up again); a database outage ends the run with the error.
        """
        policy = self._policy
        tally = LinkReport()
        after: LinkPair | None = None
        while tally.pairs < policy.max_pairs and not self._out_of_time(tally, time_left_ms):
            limit = min(policy.batch_size, policy.max_pairs - tally.pairs)
            page = self._candidates.page(after, limit)
            tally.batches += 1
            for pair in page:
                if self._out_of_time(tally, time_left_ms):
                    break
                tally.pairs += 1
                self._link_pair(pair, tally)
                after = pair
            if len(page) < limit or tally.stopped_early:
                break
        report = tally
        logger.info("customer linking done", extra=report.model_dump())
        return report

    def _link_pair(self, pair: LinkPair, tally: LinkReport) -> None:
        log = {"tenant_id": str(pair.tenant_id), "user_id": str(pair.user_id)}
        try:
            result = self._link(self._connections, pair.tenant_id, pair.user_id)
        except DatabaseUnavailable:
            raise
        except Exception:
            tally.failures += 1
            logger.exception("linking a member failed; retried next run", extra=log)
            return
        tally.pairs_linked += int(result.transactions_claimed > 0)
        tally.transactions_claimed += result.transactions_claimed
        tally.points_credited += result.points_earned
        if result.transactions_claimed:
            logger.info(
                "member linked",
                extra={**log, "claimed": result.transactions_claimed, "points": result.points_earned},
            )

    def _out_of_time(self, tally: LinkReport, time_left_ms: Callable[[], int]) -> bool:
        if time_left_ms() < self._policy.reserve_milliseconds:
            if not tally.stopped_early:
                logger.warning("customer linking stopped: the invocation's time is nearly up")
            tally.stopped_early = True
        return tally.stopped_early


def linker_from_settings(settings: LinkerSettings) -> CustomerLinker:
    """The linker on its own role's connection (opened lazily, on the first run)."""
    connections = ConnectionFactory(
        database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds)
    )
    return CustomerLinker(
        connections,
        LinkerPolicy(
            batch_size=settings.batch_size,
            max_pairs=settings.max_pairs,
            reserve_milliseconds=settings.reserve_milliseconds,
        ),
    )
