"""An RPApos catalog sync in parallel with the chaos run: the demo's RPApos tenant (Casa Antigua,
``local.demo.connect_rpapos``), a catalog run started through the admin API while the webhook
senders run (the stack's Step Functions execute it), a transient RPApos outage (503s past the REST
client's own retries: the state machine's RetryLater path), then a second catalog run that must
write nothing."""

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from local.chaos.record import RpaposRecord
from local.demo import RpaposDemo, connect_rpapos
from local.fake_rpapos import Volume
from local.stack import LocalStack
from pos_gateway.rpapos.contract import EntityType

# Modest: one page per entity type; the run takes seconds (plus the RetryLater backoff).
CHAOS_VOLUME = Volume(plus=120, skus=40, personas=12, batches=8, modifier_groups=4)
ENDED = frozenset({"completed", "failed", "cancelled"})
# 503 answers in a row: more than the REST client retries by itself, so the step fails RetryLater.
OUTAGE_ANSWERS = 5
HANGS = 1  # then a request gets no answer (the fake closes it after its hang_seconds)


@dataclass
class RpaposOutcome:
    """What the run saw of the sync: its runs and the outage it injected."""

    record: RpaposRecord
    outage_answers: int = 0  # requests the fake answered 503 by the injected outage
    hangs: int = 0  # requests the fake left unanswered until the connection closed
    too_many: int = 0  # requests the fake answered 429
    retry_later: int = 0  # RetryLater task failures in the first run's execution
    errors: list[str] = field(default_factory=list)


class RpaposSync:
    def __init__(self, stack: LocalStack, *, outage: bool = True, second_run: bool = True) -> None:
        self.stack, self.outage, self.second_run = stack, outage, second_run
        self.demo: RpaposDemo | None = None
        self.outcome: RpaposOutcome | None = None

    def connect(self) -> None:
        self.demo = connect_rpapos(self.stack, volume=CHAOS_VOLUME)
        catalog = self.stack.fake_rpapos.catalog(self.demo.subdomain)
        self.outcome = RpaposOutcome(
            RpaposRecord(
                tenant_id=str(self.demo.tenant_id),
                expected_products=catalog.count(EntityType.PLU) + catalog.count(EntityType.SKU),
            )
        )

    def start(self) -> None:
        """The first catalog run (after scripting the outage its first requests meet)."""
        demo, outcome = self._started()
        if self.outage:
            self.stack.fake_rpapos.fail(status=503, times=OUTAGE_ANSWERS, subdomain=demo.subdomain)
            # After the outage: a 429 (a RetryLater too: RPApos is busy, not refusing) and a hang.
            self.stack.fake_rpapos.fail(status=429, times=1, subdomain=demo.subdomain)
            self.stack.fake_rpapos.hang(times=HANGS, subdomain=demo.subdomain)
        run_id = self._start_run(demo, outcome)
        if run_id:
            outcome.record.run_id = run_id

    def finish(self, timeout: float) -> RpaposOutcome:
        """Wait (bounded) for the first run to end; then the second run, if time allows."""
        demo, outcome = self._started()
        deadline = time.monotonic() + timeout
        record = outcome.record
        if record.run_id:
            run = self._wait(record.run_id, deadline)
            record.run_status = str(run.get("status", "missing"))
            record.run_stats = dict(run.get("per_entity_stats") or {})
            record.run_seconds = _seconds(run)
            outcome.retry_later = self._retry_later(run.get("execution_arn"))
        faults = Counter(
            (request.fault, request.status)
            for request in self.stack.fake_rpapos.requests
            if request.subdomain == demo.subdomain
        )
        outcome.outage_answers, outcome.too_many = faults[("status", 503)], faults[("status", 429)]
        outcome.hangs = sum(n for (fault, _), n in faults.items() if fault == "hang")
        self.stack.fake_rpapos.clear_faults()
        if self.second_run and record.run_status == "completed":
            second_id = self._start_run(demo, outcome)
            if second_id:
                record.second_run_id = second_id
                second = self._wait(second_id, deadline)
                record.second_status = str(second.get("status", "missing"))
                record.second_stats = dict(second.get("per_entity_stats") or {})
        return outcome

    # -- helpers ------------------------------------------------------------------------
    def _started(self) -> tuple[RpaposDemo, RpaposOutcome]:
        if self.demo is None or self.outcome is None:
            raise RuntimeError("connect the RPApos demo first")
        return self.demo, self.outcome

    def _start_run(self, demo: RpaposDemo, outcome: RpaposOutcome) -> str | None:
        url = (
            f"{self.stack.api_url}/admin/tenants/{demo.tenant_id}/rpapos/connections/"
            f"{demo.connection_id}/sync-runs"
        )
        headers = {"Authorization": f"Bearer {self.stack.admin_token()}"}
        for _ in range(3):  # the API may answer a busy moment with a 5xx; a 4xx is final
            try:
                answer = requests.post(url, json={"mode": "catalog"}, headers=headers, timeout=30)
            except requests.RequestException as exc:
                outcome.errors.append(f"starting a sync run: {type(exc).__name__}")
                continue
            if answer.status_code == 202:
                return str(answer.json()["id"])
            outcome.errors.append(f"starting a sync run: {answer.status_code} {answer.text[:200]}")
            if answer.status_code < 500:
                break
            time.sleep(1)
        outcome.record.start_failures += 1
        return None

    def _wait(self, run_id: str, deadline: float) -> dict[str, Any]:
        run: dict[str, Any] = {}
        while True:
            with self.stack.owner_connection() as conn:
                row = conn.execute(
                    "SELECT status, per_entity_stats, execution_arn, started_at, completed_at"
                    " FROM rpapos.rpapos_sync_run WHERE id = %s",
                    (run_id,),
                ).fetchone()
            run = dict(row) if row else {}
            if run.get("status") in ENDED or time.monotonic() >= deadline:
                return run
            time.sleep(0.5)

    def _retry_later(self, execution_arn: Any) -> int:
        if not execution_arn:
            return 0
        try:
            events = self.stack.stepfunctions_client().get_execution_history(
                executionArn=str(execution_arn), maxResults=1000
            )["events"]
        except Exception:  # only a figure for the report
            return 0
        return sum(
            1
            for event in events
            if event["type"] == "TaskFailed" and event["taskFailedEventDetails"].get("error") == "RetryLater"
        )


def _seconds(run: dict[str, Any]) -> float | None:
    began, ended = run.get("started_at"), run.get("completed_at")
    if began is None or ended is None:
        return None
    return float((ended - began).total_seconds())
