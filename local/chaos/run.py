"""`make chaos`: start a local stack of its own, send the workload from concurrent senders while
faults are injected, drain, check every invariant, print one table; exit 1 if a must-be-zero
figure is not zero.

    python -m local.chaos [--duration S] [--events N] [--senders N] [--seed N] [--quick]

Traffic goes only to the stack's loopback servers; the run stops by itself (the send phase ends
at --duration or when the workload is sent, the drain within --drain-timeout)."""

import argparse
import json
import logging
import os
import queue
import random
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from local import seed as seeding
from local.chaos import faults as f
from local.chaos.field import FieldOutcome, FieldSeller
from local.chaos.invariants import Findings, check
from local.chaos.record import Answer, FieldRecord, Record, WalletOperation
from local.chaos.report import Row, percentile, render
from local.chaos.rpapos import RpaposOutcome, RpaposSync
from local.chaos.square import POLLER, SquareOutcome, SquarePolling
from local.chaos.square import READ_TIMEOUT_SECONDS as SQUARE_READ_TIMEOUT
from local.chaos.workload import (
    CAFE,
    CLOVER_MERCHANT,
    DEMO_MEMBERS,
    FORGED,
    MALFORMED,
    SQUARE_MERCHANTS,
    STALE,
    UNKNOWN_MERCHANT,
    VALID,
    Event,
    Workload,
    _body,
    _square_payment,
    generate,
    points_for,
)
from local.demo import FIELD_MEMBER_MOBILE, FIELD_TENANT
from local.replay import CLOVER_AUTH_HEADER, SIGNATURE_HEADER
from local.stack import ROOT, LocalStack, StackConfig
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from pos_gateway.providers.square import compute_signature
from pos_gateway.recovery import redrive

logger = logging.getLogger("local.chaos")
CREDITING = "RewardCreditingFunction"
SWEEPER = "OutboxSweeperFunction"
# The functions that enqueue raw events after inserting them (a field push's member sales and the
# Square poller's payments too).
INGEST_FUNCTIONS = "WebhookIngestFunction,CloverWebhookFunction,FieldSyncFunction,SquarePollerFunction"
# The functions crashed between two SQL statements: their work is retried (SQS redelivery, the
# next sweep or poll, the device's next push). The API functions answering providers and wallet
# clients are left out: a crash there is a 502 to a valid request, which the run counts as a failure.
STATEMENT_CRASH_FUNCTIONS = f"{CREDITING},{SWEEPER},{POLLER},FieldSyncFunction"
NOT_COVERED = [
    "a larger or historical RPApos sync, its pause / cancel under chaos",
]


@dataclass
class Options:
    duration: float = 150.0  # the send phase stops after this long at the latest
    events: int = 1500  # distinct events generated (each delivered 1–5 times)
    senders: int = 6
    seed: int = 7
    # Worker processes per function: caps the template's concurrency (None: the template's,
    # i.e. 5 for crediting, 2 for each API function, 1 for scheduled ones).
    workers: int | None = None
    drain_timeout: float = 240.0
    visibility_timeout: int = 4
    # The sweeper re-enqueues an event unprocessed this long after arrival (and its last sweep):
    # shorter than the template's 120 s so the run ends soon, long enough not to flood the queue
    # with copies of events that are only waiting their turn.
    sweeper_grace: int = 30
    sweep_every: float = 5.0
    crash_rate: float = 0.05
    enqueue_failure_rate: float = 0.08
    kill_every: float = 3.0
    clover_trouble_every: float = 3.0
    wallet_racers: int = 2
    # PostgreSQL restarts (embedded cluster only), spread evenly over the deliveries.
    postgres_restarts: int = 1
    statement_crash_rate: float = 0.01  # per SQL statement of STATEMENT_CRASH_FUNCTIONS
    # The Square poller: run every so often against a fake Square that answers 429 / 5xx / nothing;
    # this share of Square payments never gets its webhook (only the poller can find it).
    square_poll_every: float = 4.0
    square_missed_share: float = 0.06
    # The vendedor's field device: offline sessions, each ending in a sync through a flaky network.
    field_sessions: int = 6
    field_sales: int = 6  # sales a session (0.5–3 kg each: well within the 200 kg distribution)
    field_pause: float = 6.0  # seconds between sessions (± 50%)
    # An RPApos catalog sync (the demo's Casa Antigua) started while the senders run, its first
    # requests meeting an outage; after the drain its end is awaited, then a second run.
    rpapos: bool = True
    rpapos_timeout: float = 120.0


QUICK: dict[str, Any] = {
    "workers": 2,
    "sweep_every": 2.0,
    "duration": 25.0,
    "events": 120,
    "senders": 4,
    "drain_timeout": 120.0,
    "visibility_timeout": 3,
    "sweeper_grace": 4,
    "kill_every": 1.5,
    "clover_trouble_every": 2.0,
    "crash_rate": 0.1,
    "enqueue_failure_rate": 0.12,
    "field_sessions": 3,
    "field_pause": 2.0,
}


@dataclass
class Result:
    exit_status: int
    table: str
    findings: Findings
    faults: f.Faults
    five_xx: int
    drained: bool
    figures: dict[str, int] = field(default_factory=dict)
    field_outcome: FieldOutcome | None = None
    rpapos_outcome: RpaposOutcome | None = None
    square_outcome: SquareOutcome | None = None


def main(argv: list[str] | None = None) -> int:
    options = _arguments(argv)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    state_dir = ROOT / ".local-chaos"
    state_dir.mkdir(parents=True, exist_ok=True)
    # Injected faults make the pollers log a traceback each: to a file, not the terminal.
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        filename=state_dir / "chaos.log",
        filemode="w",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the moto server's access log
    _progress(f"function logs in {state_dir / 'logs'}, the stack's own log in {state_dir / 'chaos.log'}")
    result = run(options, database_url=os.environ.get("DATABASE_URL") or None, state_dir=state_dir)
    return result.exit_status


def run(options: Options, *, database_url: str | None = None, state_dir: Path | None = None) -> Result:
    state_dir = state_dir or ROOT / ".local-chaos"
    state_dir.mkdir(parents=True, exist_ok=True)
    fault_log = state_dir / "faults.jsonl"
    fault_log.unlink(missing_ok=True)
    config = StackConfig(
        port=0,
        state_dir=state_dir,
        database_url=database_url,
        dbname="pos_gateway_chaos",
        stack_name="pos-gateway-chaos",
        visibility_timeout=options.visibility_timeout,
        max_concurrency=options.workers,
        schedule_timers=False,
        extra_environment={
            "SWEEPER_GRACE_SECONDS": str(options.sweeper_grace),
            "SWEEPER_MAX_SWEEPS": "1000",  # under chaos an event may be swept often; never parked
            "LOCAL_CHAOS_LOG": str(fault_log),
            "LOCAL_CHAOS_CRASH_RATE": str(options.crash_rate),
            "LOCAL_CHAOS_CRASH_FUNCTIONS": CREDITING,
            "LOCAL_CHAOS_ENQUEUE_FAILURE_RATE": str(options.enqueue_failure_rate),
            "LOCAL_CHAOS_ENQUEUE_FAILURE_FUNCTIONS": INGEST_FUNCTIONS,
            "LOCAL_CHAOS_STATEMENT_CRASH_RATE": str(options.statement_crash_rate),
            "LOCAL_CHAOS_STATEMENT_CRASH_FUNCTIONS": STATEMENT_CRASH_FUNCTIONS,
            # Short read timeouts: a provider that does not answer costs a few seconds, not ten.
            "SQUARE_READ_TIMEOUT_SECONDS": str(SQUARE_READ_TIMEOUT),
            "CLOVER_READ_TIMEOUT_SECONDS": str(f.CLOVER_READ_TIMEOUT),
        },
    )
    workload = generate(options.seed, options.events)
    workers = options.workers or "the template's"
    _progress(f"starting a local stack ({workers} worker(s) per function) under {state_dir}")
    with LocalStack(config) as stack:
        return Chaos(stack, options, workload, fault_log).run()


def _progress(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Chaos:
    def __init__(self, stack: LocalStack, options: Options, workload: Workload, fault_log: Path) -> None:
        self.stack, self.options, self.workload, self.fault_log = stack, options, workload, fault_log
        self.record = Record(events=workload.by_key())
        self.faults = f.Faults()
        self.rng = random.Random(options.seed + 1)
        self.sending = threading.Event()
        self.stop_sweeping = threading.Event()
        if stack.demo is None:
            raise RuntimeError("the chaos run needs the demo data")
        self.tenants = {t.name: t for t in stack.tenants}
        self.field_outcome = FieldOutcome(stack.demo.field.tenant_id)
        self.rpapos = RpaposSync(stack) if options.rpapos else None
        self.rpapos_outcome: RpaposOutcome | None = None
        self.square = SquarePolling(
            stack, workload, options.seed, options.square_poll_every, options.square_missed_share
        )
        self.square_outcome: SquareOutcome | None = None
        self.statement_crashes: Counter[str] = Counter()  # by function, from the workers' fault log
        restarts = options.postgres_restarts
        self.restarter = f.PostgresRestarter(
            stack,
            self.faults,
            [(n + 1) / (restarts + 1) for n in range(restarts)],
            lambda: len(self.record.answers) / max(1, len(workload.deliveries)),
        )

    # -- the run ----------------------------------------------------------------------
    def run(self) -> Result:
        self._arrange()
        started = time.monotonic()
        killer = f.BackendKiller(self.stack, self.faults, self.options.kill_every, self.options.seed)
        trouble = f.CloverTrouble(
            self.stack.fake_clover, self.options.clover_trouble_every, self.options.seed
        )
        if not self.restarter.possible:
            _progress("the cluster is DATABASE_URL's: no PostgreSQL restart is injected")
        sweeper = threading.Thread(target=self._sweep, name="chaos-sweeper", daemon=True)
        racers = [
            threading.Thread(target=self._race_wallets, args=(n,), name=f"chaos-wallets-{n}", daemon=True)
            for n in range(self.options.wallet_racers)
        ]
        seller = FieldSeller(
            self.stack,
            self.options.seed,
            self.options.field_sessions,
            self.options.field_sales,
            self.options.field_pause,
        )
        if self.rpapos is not None:
            self.rpapos.connect()
        poison_id = self._send_poison()
        for thread in (killer, trouble, sweeper, *racers, seller, self.square):
            thread.start()
        if self.restarter.possible:
            self.restarter.start()
        if self.rpapos is not None:
            _progress("starting an RPApos catalog sync run (its first requests meet an outage)")
            self.rpapos.start()
        _progress(
            f"sending {len(self.workload.deliveries)} deliveries of {len(self.workload.events)} events"
            f" from {self.options.senders} senders (at most {self.options.duration:.0f} s)"
        )
        self._send(time.monotonic() + self.options.duration)
        self.restarter.stopping.set()
        if self.restarter.is_alive():
            self.restarter.join(timeout=90)
        self._complete()
        sent_at = time.monotonic()
        self.sending.set()
        for racer in racers:
            racer.join(timeout=60)
        self._fix_poison(poison_id)
        # The field device's sessions ran alongside the senders and the wait for the poison, with
        # the crediting faults still injected; what a session could not sync is synced here.
        seller.join(timeout=120)
        seller.stopping.set()
        seller.join(timeout=60)
        seller.settle()
        killer.stopping.set()
        trouble.stopping.set()
        self.square.stopping.set()
        killer.join(timeout=10)
        trouble.join(timeout=10)
        self.square.join(timeout=60)
        _progress("a last, clean Square poll")
        self.square_outcome = self.square.finish()
        self.record.polled = self.square_outcome.at_square
        self.record.polled_event_keys = self.square_outcome.polled_event_keys
        _progress(f"sent in {sent_at - started:.0f} s; draining (at most {self.options.drain_timeout:.0f} s)")
        drained = self._drain(time.monotonic() + self.options.drain_timeout)
        self.stop_sweeping.set()
        sweeper.join(timeout=30)
        elapsed = time.monotonic() - started
        _progress(f"{'drained' if drained else 'NOT drained'} after {elapsed:.0f} s")
        if self.rpapos is not None:
            _progress(f"waiting for the RPApos sync (at most {self.options.rpapos_timeout:.0f} s)")
            self.rpapos_outcome = self.rpapos.finish(self.options.rpapos_timeout)
            self.record.rpapos = self.rpapos_outcome.record
        _progress("checking the invariants")
        self.field_outcome = seller.finish()
        self.record.field_sync = FieldRecord(
            str(self.field_outcome.tenant_id),
            FIELD_TENANT,
            FIELD_MEMBER_MOBILE,
            synced_op_ids=self.field_outcome.synced,
            sale_events=self.field_outcome.sale_events,
            member_sales=self.field_outcome.member_sales,
            unsynced=self.field_outcome.unsynced,
            mismatches=self.field_outcome.mismatches,
            voided=self.field_outcome.voided,
        )
        with self.stack.owner_connection() as conn:
            findings = check(conn, self.record)
        self._count_recoveries(findings, drained)
        return self._report(findings, drained, elapsed)

    def _arrange(self) -> None:
        with self.stack.owner_connection() as conn:
            for email in self.workload.new_members:
                seeding.create_user(conn, email=email, full_name="Chaos Member")
        for payment in self.workload.clover_payments:
            self.stack.fake_clover.put_payment(CLOVER_MERCHANT, payment)

    # -- senders -----------------------------------------------------------------------
    def _send(self, deadline: float) -> None:
        deliveries: queue.SimpleQueue[Event] = queue.SimpleQueue()
        missed: set[str] = set()
        for event in self.workload.deliveries:
            if event.key in self.square.missed_keys:  # no webhook: it only comes into being at Square
                if event.key in missed:
                    continue
                missed.add(event.key)
            deliveries.put(event)

        def sender() -> None:
            with requests.Session() as session:
                while time.monotonic() < deadline:
                    try:
                        event = deliveries.get_nowait()
                    except queue.Empty:
                        return
                    self._deliver(session, event)

        threads = [
            threading.Thread(target=sender, name=f"chaos-sender-{n}") for n in range(self.options.senders)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _complete(self) -> None:
        """As a provider retries: a valid event sent but never answered 2xx is delivered again, and
        a payment whose refund got in is delivered if the deadline kept it from being sent."""
        answered, sent = self.record.answered_2xx(), self.record.sent()
        payments = {e.payment_id: e for e in self.workload.events if e.payment_id}
        again = [
            e for e in self.workload.events if e.kind == VALID and e.key in sent and e.key not in answered
        ]
        for event in self.workload.events:
            if event.refund_of and event.key in answered:
                payment = payments[event.refund_of]
                if payment.key not in answered and payment not in again:
                    again.append(payment)
        with requests.Session() as session:
            for event in again:
                for _ in range(3):
                    if self._deliver(session, event) < 500:
                        break

    def _deliver(self, session: requests.Session, event: Event) -> int:
        self.square.happened(event)  # the payment exists at Square before its webhook is sent
        if event.key in self.square.missed_keys:
            return 200  # its webhook never comes
        if event.provider == "clover":
            if event.clover_refund is not None and event.refund_of:  # the refund happens now
                self.stack.fake_clover.add_refund(CLOVER_MERCHANT, event.refund_of, event.clover_refund)
            url = self.stack.clover_webhook_url
            code = (
                self.stack.clover_auth_code
                if event.kind != FORGED
                else "forged-" + self.stack.clover_auth_code
            )
            headers = {"content-type": "application/json", CLOVER_AUTH_HEADER: code}
        else:
            url = self.stack.square_notification_url
            key = self.stack.signature_key if event.kind != FORGED else "forged-" + self.stack.signature_key
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: compute_signature(key, url, event.body),
            }
        started = time.monotonic()
        try:
            response = session.post(url, data=event.body, headers=headers, timeout=30)
            status, outcome = response.status_code, _outcome(response)
        except requests.RequestException as exc:
            status, outcome = 0, type(exc).__name__
        self.record.answered(
            Answer(
                event.key, event.kind, event.provider, status, outcome, time.monotonic() - started, started
            )
        )
        return status or 599

    # -- wallets: redemptions and adjustments racing with crediting ----------------------
    def _race_wallets(self, n: int) -> None:
        rng = random.Random(self.options.seed * 100 + n)
        operator = {"Authorization": f"Bearer {self.stack.operator_token()}"}
        admin = {"Authorization": f"Bearer {self.stack.admin_token()}"}
        with requests.Session() as session:
            while not self.sending.is_set():
                try:
                    with self.stack.owner_connection() as conn:
                        wallets = conn.execute(
                            "SELECT w.id::text AS id, t.name AS tenant, w.tenant_id::text AS tenant_id,"
                            "       w.points_balance"
                            "  FROM loyalty.wallets w JOIN identity.tenants t ON t.id = w.tenant_id"
                            "  JOIN identity.users u ON u.id = w.user_id"
                            " WHERE t.name = ANY(%s) AND u.email = ANY(%s)",
                            (list(SQUARE_MERCHANTS), DEMO_MEMBERS + self.workload.new_members),
                        ).fetchall()
                except psycopg.OperationalError:  # the cluster is restarting
                    wallets = []
                if not wallets:
                    self.sending.wait(0.5)
                    continue
                wallet = rng.choice(wallets)
                if wallet["tenant"] == CAFE and rng.random() < 0.6:
                    self._redeem(session, operator, wallet, rng)
                else:
                    self._adjust(session, admin, wallet, rng)
                self.sending.wait(rng.uniform(0.05, 0.3))

    def _redeem(
        self, session: requests.Session, headers: dict[str, str], wallet: dict[str, Any], rng: random.Random
    ) -> None:
        points = rng.randint(1, 40)
        key = f"chaos-{uuid.UUID(int=rng.getrandbits(128))}"
        body: dict[str, Any] = {"points": points, "orderAmountMinorUnits": 10_000, "idempotencyKey": key}
        url = f"{self.stack.api_url}/wallets/{wallet['id']}/redemptions"
        for _ in range(2 if rng.random() < 0.3 else 1):  # some sent twice: one redemption
            started = time.monotonic()
            status = _post(session, url, body, headers)
            self.record.operated(
                WalletOperation(
                    "redemption", wallet["id"], -points, status, key, started, time.monotonic() - started
                )
            )

    def _adjust(
        self, session: requests.Session, headers: dict[str, str], wallet: dict[str, Any], rng: random.Random
    ) -> None:
        path = f"{self.stack.api_url}/admin/tenants/{wallet['tenant_id']}/wallets/{wallet['id']}"
        direction = rng.choice(["credit", "credit", "debit"])
        points = rng.randint(1, 25)
        for _ in range(8):  # stale_version: read again and retry
            started = time.monotonic()
            try:
                current = session.get(path, headers=headers, timeout=30)
            except requests.RequestException:
                self.record.operated(_adjustment_failed(wallet["id"], 0, started))
                return
            version = current.json().get("version") if current.status_code == 200 else None
            if version is None:
                self.record.operated(_adjustment_failed(wallet["id"], current.status_code, started))
                return
            body = {
                "direction": direction,
                "points": points,
                "reason": "chaos run",
                "expected_version": version,
            }
            try:
                answer = session.post(path + "/adjustments", json=body, headers=headers, timeout=30)
            except requests.RequestException:
                self.record.operated(_adjustment_failed(wallet["id"], 0, started))
                return
            if answer.status_code == 409 and _outcome(answer) == "stale_version":
                continue
            signed = points if direction == "credit" else -points
            self.record.operated(
                WalletOperation(
                    "adjustment",
                    wallet["id"],
                    signed,
                    answer.status_code,
                    started=started,
                    seconds=time.monotonic() - started,
                )
            )
            return

    # -- the poison message --------------------------------------------------------------
    def _send_poison(self) -> uuid.UUID:
        """A credit request for a raw event that does not exist yet: it fails every receive."""
        raw_id = uuid.UUID(int=self.rng.getrandbits(128))
        cafe = self.tenants[CAFE]
        request = CreditRequest(raw_event_id=raw_id, tenant_id=cafe.id, provider=Provider.SQUARE)
        self.stack.sqs_client().send_message(
            QueueUrl=self.stack.queues["IngestQueue"][0], MessageBody=request.to_json()
        )
        self.faults.injected(f.POISON)
        self.poison_sent = time.monotonic()
        return raw_id

    def _fix_poison(self, raw_id: uuid.UUID) -> None:
        """Once the poison is in the dead-letter queue: write its raw event (a valid signed Square
        payment of Alice, as the owner), then redrive the DLQ."""
        receives = 5 * (self.options.visibility_timeout + 1) + 10
        deadline = self.poison_sent + receives + 60
        while time.monotonic() < deadline and (
            self.stack.queue_depth("IngestDeadLetterQueue") == 0
            or time.monotonic() < self.poison_sent + receives
        ):
            time.sleep(0.5)
        in_dlq = self.stack.queue_depth("IngestDeadLetterQueue")
        _progress(f"{in_dlq} message(s) in the dead-letter queue; fixing the poison and redriving")
        cafe = self.tenants[CAFE]
        payment_id = f"pay_poison_{raw_id.hex[:12]}"
        amount = 4_200
        envelope = _square_payment(self.rng, SQUARE_MERCHANTS[CAFE], payment_id, amount, DEMO_MEMBERS[0])
        body = _body(envelope)
        self.record.poison = Event(
            envelope["event_id"],
            "square",
            VALID,
            CAFE,
            body,
            0,
            payment_id=payment_id,
            email=DEMO_MEMBERS[0],
            points=points_for(CAFE, amount),
        )
        self.record.poison_raw_id = str(raw_id)
        signature = compute_signature(self.stack.signature_key, self.stack.square_notification_url, body)
        with self.stack.owner_connection() as conn:
            conn.execute(
                "INSERT INTO pos.pos_webhook_events_raw (id, tenant_id, provider, event_type,"
                " provider_event_id, merchant_account_id, raw_payload, raw_body, signature_header)"
                " VALUES (%s, %s, 'square', %s, %s, %s, %s::jsonb, %s, %s)",
                (
                    raw_id,
                    cafe.id,
                    envelope["type"],
                    envelope["event_id"],
                    envelope["merchant_id"],
                    body.decode(),
                    body.decode(),
                    signature,
                ),
            )
        self._redrive()

    def _redrive(self) -> int:
        return redrive(
            self.stack.sqs_client(),
            dead_letter_queue_url=self.stack.queues["IngestDeadLetterQueue"][0],
            source_queue_url=self.stack.queues["IngestQueue"][0],
            wait_seconds=0,
        )

    # -- drain -------------------------------------------------------------------------------
    def _sweep(self) -> None:
        while not self.stop_sweeping.wait(self.options.sweep_every):
            try:
                self.stack.run_schedule(SWEEPER)
            except Exception:  # a failed sweep is the next sweep's work
                logger.warning("sweeper run failed", exc_info=True)

    def _drain(self, deadline: float) -> bool:
        calm, report_at = 0, time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.stack.queue_depth("IngestDeadLetterQueue"):
                self._redrive()
            unprocessed = self._unprocessed()
            busy = self.stack.queue_depth("IngestQueue") + unprocessed
            calm = calm + 1 if busy == 0 else 0
            if time.monotonic() >= report_at:
                _progress(f"  {unprocessed} raw event(s) unprocessed, {busy - unprocessed} message(s) queued")
                report_at = time.monotonic() + 15
            if calm >= 3:
                return True
            time.sleep(1)
        return False

    def _unprocessed(self) -> int:
        with self.stack.owner_connection() as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM pos.pos_webhook_events_raw"
                " WHERE processed = false AND tenant_id IS NOT NULL"
            ).fetchone()
        return int(row["n"]) if row else 0

    # -- counting and reporting ---------------------------------------------------------------
    def _count_recoveries(self, findings: Findings, drained: bool) -> None:
        faults = self.faults
        f.CloverTrouble.count(self.stack.fake_clover, faults)
        with self.stack.owner_connection() as conn:
            processed = {
                str(row["id"])
                for row in conn.execute(
                    "SELECT id FROM pos.pos_webhook_events_raw WHERE processed"
                ).fetchall()
            }
            clover_open = conn.execute(
                "SELECT count(*) AS n FROM pos.pos_webhook_events_raw"
                " WHERE provider = 'clover' AND NOT processed"
            ).fetchone()
            poison_credits = conn.execute(
                "SELECT count(*) AS n FROM loyalty.wallet_ledger l JOIN pos.transactions t"
                "  ON t.id = l.source_transaction_id WHERE l.entry_type = 'credit' AND t.raw_event_id = %s",
                (self.record.poison_raw_id,),
            ).fetchone()
        converged = drained and findings.lost_events == 0
        # A network fault on a sync is recovered when the device ends with everything synced and
        # its records equal to the server's.
        field_whole = findings.field_unsynced == 0 and findings.field_mismatches == 0
        square = self.square_outcome
        polled_whole = converged and square is not None and square.final_poll_clean
        self._count_worker_faults(processed, converged, field_whole, polled_whole)
        faults.settle(converged, f.BACKEND_TERMINATED, f.POSTGRES_RESTART)
        faults.settle(bool(clover_open and clover_open["n"] == 0), f.CLOVER_429, f.CLOVER_5XX, f.CLOVER_HANG)
        # Square's refusals and silences are recovered when a clean poll ended the run and no
        # payment (missed webhooks included) is lost.
        if square is not None:
            faults.injected(f.SQUARE_429, square.status_429)
            faults.injected(f.SQUARE_5XX, square.status_5xx)
            faults.injected(f.SQUARE_HANG, square.hangs)
            faults.settle(polled_whole, f.SQUARE_429, f.SQUARE_5XX, f.SQUARE_HANG)
        faults.settle(bool(poison_credits and poison_credits["n"] == 1), f.POISON)
        faults.injected(f.FIELD_NETWORK, self.field_outcome.injected)
        faults.settle(bool(self.field_outcome.sessions) and field_whole, f.FIELD_NETWORK)
        # An RPApos outage or silence is recovered when the run it hit still completed.
        if self.rpapos_outcome is not None:
            faults.injected(f.RPAPOS_OUTAGE, self.rpapos_outcome.outage_answers)
            faults.injected(f.RPAPOS_429, self.rpapos_outcome.too_many)
            faults.injected(f.RPAPOS_HANG, self.rpapos_outcome.hangs)
            faults.settle(
                self.rpapos_outcome.record.run_status == "completed",
                f.RPAPOS_OUTAGE,
                f.RPAPOS_429,
                f.RPAPOS_HANG,
            )

    def _count_worker_faults(
        self, processed: set[str], converged: bool, field_whole: bool, polled_whole: bool
    ) -> None:
        """A crash or a failed enqueue with messages in hand is recovered once their raw events are
        processed; in a push, once the device ends synced and equal; in a sweep or a poll, once
        everything converged (and the poller's last run was clean)."""
        for entry in f.worker_faults(self.fault_log):
            kind = f.WORKER_FAULTS[entry["kind"]]
            self.faults.injected(kind)
            if kind == f.STATEMENT_CRASH:
                self.statement_crashes[str(entry.get("function", "?")).removesuffix("Function")] += 1
            raw_ids = f.raw_ids_of(entry)
            if raw_ids:
                recovered = all(raw_id in processed for raw_id in raw_ids)
            elif entry.get("function") == "FieldSyncFunction":
                recovered = field_whole
            elif entry.get("function") == POLLER:
                recovered = polled_whole
            else:
                recovered = converged
            self.faults.counts[kind].recovered += int(recovered)

    def _alongside_rows(self) -> list[Row]:
        """What ran alongside the webhooks: the field device, the RPApos sync, the Square poller."""
        field_run = self.field_outcome
        rows = [
            Row(
                "field operations pushed / synced / replayed",
                f"{len(field_run.pushed)} / {len(field_run.synced)} / {field_run.replayed}",
            ),
            Row(
                "field admin sessions / sales voided (of the vendedor's)",
                f"{field_run.admin_sessions} / {len(field_run.voided)} ({len(field_run.vendedor_voided)})",
            ),
        ]
        if self.rpapos_outcome is not None:
            rows.append(
                Row(
                    "RPApos sync: records extracted / loaded, run seconds",
                    _rpapos_figure(self.rpapos_outcome),
                )
            )
            rows.append(
                Row(
                    "RPApos RetryLater retries / second run skipped of extracted",
                    _rpapos_retries(self.rpapos_outcome),
                )
            )
        if self.square_outcome is not None:
            square = self.square_outcome
            rows.append(
                Row(
                    "Square payments made / webhook never sent (poller only), polls",
                    f"{len(square.at_square)} / {len(square.missed)}, {square.polls}",
                )
            )
        return rows

    def _fault_rows(self) -> list[Row]:
        rows = []
        for kind, count in self.faults.counts.items():
            rows.append(Row(f"fault: {kind} (injected / recovered)", f"{count.injected} / {count.recovered}"))
            if kind == f.STATEMENT_CRASH:
                by_function = sorted(self.statement_crashes.items())
                rows.append(Row("  by function", ", ".join(f"{name} {n}" for name, n in by_function) or "-"))
        if self.restarter.windows:
            down = ", ".join(
                f"{end - begin - f.PostgresRestarter.SLACK:.1f}" for begin, end in self.restarter.windows
            )
            rows.append(Row("  PostgreSQL restart took (s)", down))
        return rows

    def _report(self, findings: Findings, drained: bool, elapsed: float) -> Result:
        record = self.record
        outcomes = record.outcomes()
        answered = record.answered_2xx()
        by_kind = Counter(e.kind for e in self.workload.events if e.key in record.sent())
        deliveries_2xx = sum(1 for a in record.answers if 200 <= a.status < 300)
        distinct_accepted = sum(1 for e in self.workload.events if e.kind == VALID and e.key in answered)
        duplicates = sum(n for (kind, outcome), n in outcomes.items() if outcome == "duplicate") + sum(
            max(0, a) for a in _clover_duplicates(record)
        )
        five_xx = record.valid_5xx(self.restarter.overlaps)
        restart_5xx = record.valid_5xx_excused(self.restarter.overlaps)
        latencies = record.latencies()
        redemptions = [op for op in record.wallet_operations if op.operation == "redemption"]
        adjustments = [op for op in record.wallet_operations if op.operation == "adjustment"]
        rows = [
            Row("deliveries sent (distinct events)", f"{len(record.answers)} ({len(record.sent())})"),
            Row("  valid events accepted (distinct)", str(distinct_accepted)),
            Row("  unknown merchant, quarantined (distinct)", str(by_kind[UNKNOWN_MERCHANT])),
        ]
        for kind in (FORGED, STALE, MALFORMED):
            reasons = Counter(a.outcome for a in record.answers if a.kind == kind)
            text = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items())) or "-"
            rows.append(Row(f"  rejected {kind} (deliveries by answer)", text))
        rows += [
            Row("duplicate deliveries absorbed", str(duplicates)),
            Row(
                "redemptions sent / accepted",
                f"{len(redemptions)} / {sum(op.status == 201 for op in redemptions)}",
            ),
            Row(
                "adjustments sent / accepted",
                f"{len(adjustments)} / {sum(op.status == 201 for op in adjustments)}",
            ),
        ]
        field_run = self.field_outcome
        rows += self._alongside_rows()
        rows += self._fault_rows()
        rows += [
            Row("5xx (or no answer) to valid requests overlapping a restart (retried)", str(restart_5xx)),
            Row("raw events processed", str(findings.processed_events)),
            Row("transactions credited", str(findings.transactions_credited)),
            Row("drained", "yes" if drained else "NO", must_be_zero=True, failed=not drained),
        ]
        must_be_zero = [
            ("lost events", findings.lost_events),
            ("double credits", findings.double_credits),
            ("ledger-vs-balance mismatches", findings.ledger_balance_mismatches),
            ("negative balances", findings.negative_balances),
            ("5xx (or no answer) to valid requests", five_xx),
            ("partial writes after rejected requests", findings.partial_writes),
            ("wallets off the run's expected points", findings.expected_points_mismatches),
            ("field operations not synced", findings.field_unsynced),
            ("field records differing device vs server", findings.field_mismatches),
            ("field member sales not credited exactly once", findings.field_credit_mismatches),
        ]
        if self.rpapos_outcome is not None:
            must_be_zero += [
                ("RPApos sync runs not completed", findings.rpapos_runs_not_completed),
                ("RPApos records not loaded exactly once", findings.rpapos_not_loaded_once),
                ("RPApos second run records written", findings.rpapos_second_run_writes),
            ]
        for figure, value in must_be_zero:
            rows.append(Row(figure, str(value), must_be_zero=True, failed=value != 0))
        rows += [
            Row(
                "ingest latency p50 / p99 (ms)",
                f"{percentile(latencies, 0.5) * 1000:.0f} / {percentile(latencies, 0.99) * 1000:.0f}",
            ),
            Row(
                "crediting throughput (raw events/s, drain incl.)",
                f"{findings.processed_events / elapsed:.1f}",
            ),
            Row("2xx answers (all deliveries)", str(deliveries_2xx)),
        ]
        table = render(rows)
        failed = not drained or any(value for _, value in must_be_zero)
        print(table)
        print("\nnot covered yet: " + "; ".join(NOT_COVERED))
        if field_run.errors:
            print("\nfield device (retried later): " + "; ".join(field_run.errors[:5]))
        if self.rpapos_outcome is not None and self.rpapos_outcome.errors:
            print("\nRPApos sync: " + "; ".join(self.rpapos_outcome.errors[:5]))
        if self.restarter.errors:
            print("\nPostgreSQL restart: " + "; ".join(self.restarter.errors))
        if findings.details:
            print("\nfindings:\n  " + "\n  ".join(findings.details))
        verdict = (
            "FAILED: a must-be-zero figure is not zero"
            if failed
            else "PASSED: every must-be-zero figure is 0"
        )
        print(f"\n{verdict}", flush=True)
        figures = {figure: value for figure, value in must_be_zero}
        return Result(
            int(failed),
            table,
            findings,
            self.faults,
            five_xx,
            drained,
            figures,
            field_run,
            self.rpapos_outcome,
            self.square_outcome,
        )


def _totals(stats: dict[str, Any], name: str) -> int:
    return sum(int((entity or {}).get(name, 0)) for entity in stats.values())


def _rpapos_figure(outcome: RpaposOutcome) -> str:
    record = outcome.record
    seconds = f"{record.run_seconds:.1f} s" if record.run_seconds is not None else record.run_status
    extracted, loaded = _totals(record.run_stats, "extracted"), _totals(record.run_stats, "loaded")
    return f"{extracted} / {loaded}, {seconds}"


def _rpapos_retries(outcome: RpaposOutcome) -> str:
    record = outcome.record
    if record.second_run_id is None:
        second = "no second run"
    else:
        second = f"{_totals(record.second_stats, 'skipped')} of {_totals(record.second_stats, 'extracted')}"
    return f"{outcome.retry_later} / {second}"


def _clover_duplicates(record: Record) -> list[int]:
    return [
        int(a.outcome.split(":", 1)[1]) for a in record.answers if a.outcome.startswith("clover-duplicates:")
    ]


def _outcome(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return f"http-{response.status_code}"
    if not isinstance(payload, dict):
        return f"http-{response.status_code}"
    if "duplicates" in payload and "accepted" in payload:  # Clover's acknowledgement
        return (
            f"clover-duplicates:{payload['duplicates']}"
            if payload["duplicates"]
            else str(payload.get("status"))
        )
    error = payload.get("error")
    if isinstance(error, dict):
        return str(error.get("code", f"http-{response.status_code}"))
    return str(payload.get("status") or f"http-{response.status_code}")


def _adjustment_failed(wallet_id: str, status: int, started: float) -> WalletOperation:
    return WalletOperation(
        "adjustment", wallet_id, 0, status, started=started, seconds=time.monotonic() - started
    )


def _post(session: requests.Session, url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    try:
        return session.post(
            url, data=json.dumps(body), headers={**headers, "content-type": "application/json"}, timeout=30
        ).status_code
    except requests.RequestException:
        return 0


def _arguments(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="make chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = Options()
    parser.add_argument(
        "--duration", type=float, help=f"send phase cap in seconds (default {defaults.duration:.0f})"
    )
    parser.add_argument("--events", type=int, help=f"distinct events generated (default {defaults.events})")
    parser.add_argument("--senders", type=int, help=f"concurrent sender threads (default {defaults.senders})")
    parser.add_argument("--seed", type=int, help=f"workload seed (default {defaults.seed})")
    parser.add_argument(
        "--workers", type=int, help="worker processes per function (default: the template's concurrency)"
    )
    parser.add_argument(
        "--drain-timeout", type=float, help=f"drain cap in seconds (default {defaults.drain_timeout:.0f})"
    )
    parser.add_argument("--quick", action="store_true", help="the small configuration `make test` runs")
    args = parser.parse_args(argv)
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in ("duration", "events", "senders", "seed", "workers", "drain_timeout"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return Options(**values)
