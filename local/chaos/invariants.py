"""Every invariant of the run, checked against the database (as its owner) and the run's record."""

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP
from fractions import Fraction
from typing import Any

import psycopg

from local.chaos.record import FieldRecord, Record, RpaposRecord
from local.chaos.workload import FORGED, MALFORMED, RULES, STALE, UNKNOWN_MERCHANT, VALID, Event

Conn = psycopg.Connection[dict[str, Any]]


@dataclass
class Findings:
    lost_events: int = 0
    double_credits: int = 0
    ledger_balance_mismatches: int = 0
    negative_balances: int = 0
    partial_writes: int = 0
    expected_points_mismatches: int = 0
    transactions_credited: int = 0
    processed_events: int = 0
    quarantined_events: int = 0
    # Offline field sales (zero when no field device took part).
    field_unsynced: int = 0
    field_mismatches: int = 0
    field_credit_mismatches: int = 0
    # The RPApos catalog sync run alongside (zero when none took part).
    rpapos_runs_not_completed: int = 0
    rpapos_not_loaded_once: int = 0
    rpapos_second_run_writes: int = 0
    details: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.details) < 40:
            self.details.append(text)


def check(conn: Conn, record: Record) -> Findings:
    findings = Findings()
    raw = {
        (row["provider"], row["provider_event_id"]): row
        for row in conn.execute(
            "SELECT id, provider, provider_event_id, tenant_id, processed, processing_outcome, parked_at"
            " FROM pos.pos_webhook_events_raw"
        ).fetchall()
    }
    _lost(conn, record, raw, findings)
    _doubles(conn, findings)
    _balances(conn, findings)
    _partial_writes(record, raw, findings)
    _expected_points(conn, record, findings)
    if record.field_sync is not None:
        _field(conn, record.field_sync, findings)
    if record.rpapos is not None:
        _rpapos(conn, record.rpapos, findings)
    findings.processed_events = sum(1 for row in raw.values() if row["processed"])
    findings.quarantined_events = sum(1 for row in raw.values() if row["tenant_id"] is None)
    findings.transactions_credited = _count(
        conn,
        "SELECT count(DISTINCT source_transaction_id) AS n FROM loyalty.wallet_ledger"
        " WHERE entry_type = 'credit'",
    )
    return findings


def _count(conn: Conn, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row["n"]) if row else 0


def _lost(conn: Conn, record: Record, raw: dict[tuple[str, str], dict[str, Any]], findings: Findings) -> None:
    """A valid event answered 2xx without its raw row; a raw row of a known tenant left unprocessed
    after the drain (parked included); a valid payment (2xx) without its transaction."""
    for key in sorted(record.valid_keys_answered()):
        event = record.events[key]
        if (event.provider, key) not in raw:
            findings.lost_events += 1
            findings.note(f"lost: {event.provider} event {key} answered 2xx has no raw row")
    for (provider, key), row in sorted(raw.items()):
        if row["tenant_id"] is not None and not row["processed"]:
            findings.lost_events += 1
            parked = " (parked)" if row["parked_at"] else ""
            findings.note(
                f"lost: raw event {row['id']} ({provider} {key}) unprocessed after the drain{parked}"
            )
    transactions = {
        (row["provider"], row["provider_transaction_id"])
        for row in conn.execute("SELECT provider, provider_transaction_id FROM pos.transactions").fetchall()
    }
    paid = [record.events[k] for k in record.valid_keys_answered() if record.events[k].payment_id]
    paid += record.polled
    if record.poison is not None:
        paid.append(record.poison)
    for event in paid:
        if (event.provider, event.payment_id) not in transactions:
            findings.lost_events += 1
            findings.note(f"lost: payment {event.payment_id} ({event.provider}) has no transaction")


_DOUBLES: list[tuple[str, str]] = [
    (
        "earn reward events of one transaction",
        "SELECT transaction_id AS id, count(*) AS n FROM loyalty.reward_events WHERE kind = 'earn'"
        " GROUP BY transaction_id HAVING count(*) > 1",
    ),
    (
        "ledger credits of one transaction",
        "SELECT coalesce(l.source_transaction_id, e.transaction_id) AS id, count(*) AS n"
        "  FROM loyalty.wallet_ledger l LEFT JOIN loyalty.reward_events e ON e.id = l.reward_event_id"
        " WHERE l.entry_type = 'credit' AND coalesce(l.source_transaction_id, e.transaction_id) IS NOT NULL"
        " GROUP BY 1 HAVING count(*) > 1",
    ),
    (
        "reversals of one refund",
        "SELECT refund_id AS id, count(*) AS n FROM loyalty.reward_events WHERE kind = 'reversal'"
        " GROUP BY refund_id HAVING count(*) > 1",
    ),
    (
        "ledger entries of one reward event",
        "SELECT reward_event_id AS id, count(*) AS n FROM loyalty.wallet_ledger"
        " WHERE reward_event_id IS NOT NULL GROUP BY reward_event_id HAVING count(*) > 1",
    ),
    (
        "transactions of one provider payment",
        "SELECT provider_transaction_id AS id, count(*) AS n FROM pos.transactions"
        " GROUP BY tenant_id, provider, provider_transaction_id HAVING count(*) > 1",
    ),
    (
        "refunds of one provider refund",
        "SELECT provider_refund_id AS id, count(*) AS n FROM pos.refunds"
        " GROUP BY tenant_id, provider, provider_refund_id HAVING count(*) > 1",
    ),
    (
        "points reversed beyond what a transaction earned",
        "SELECT r.transaction_id AS id, 1 AS n FROM loyalty.reward_events r"
        "  LEFT JOIN loyalty.reward_events e ON e.transaction_id = r.transaction_id AND e.kind = 'earn'"
        " WHERE r.kind = 'reversal' GROUP BY r.transaction_id"
        " HAVING sum(r.points_reversed + r.points_shortfall) > coalesce(max(e.points_earned), 0)",
    ),
]


def _doubles(conn: Conn, findings: Findings) -> None:
    for what, query in _DOUBLES:
        for row in conn.execute(query).fetchall():
            findings.double_credits += 1
            findings.note(f"double: {row['n']} {what} ({row['id']})")


def _balances(conn: Conn, findings: Findings) -> None:
    for row in conn.execute(
        "SELECT w.id, w.points_balance, coalesce(sum(CASE l.entry_type WHEN 'credit' THEN l.points"
        "        ELSE -l.points END), 0) AS ledger_sum"
        "  FROM loyalty.wallets w LEFT JOIN loyalty.wallet_ledger l ON l.wallet_id = w.id"
        " GROUP BY w.id HAVING w.points_balance <> coalesce(sum(CASE l.entry_type WHEN 'credit'"
        "        THEN l.points ELSE -l.points END), 0)"
    ).fetchall():
        findings.ledger_balance_mismatches += 1
        findings.note(
            f"mismatch: wallet {row['id']} balance {row['points_balance']} ledger {row['ledger_sum']}"
        )
    for row in conn.execute(
        "SELECT id, points_balance AS balance FROM loyalty.wallets WHERE points_balance < 0"
        " UNION ALL SELECT wallet_id, balance_after FROM loyalty.wallet_ledger WHERE balance_after < 0"
    ).fetchall():
        findings.negative_balances += 1
        findings.note(f"negative: wallet {row['id']} at {row['balance']}")


def _partial_writes(record: Record, raw: dict[tuple[str, str], dict[str, Any]], findings: Findings) -> None:
    """No raw row for a refused event; no raw row the run did not send (a malformed body's)."""
    known = {(e.provider, k) for k, e in record.events.items() if e.kind in (VALID, UNKNOWN_MERCHANT)}
    if record.poison is not None:
        known.add((record.poison.provider, record.poison.key))
    if record.field_sync is not None:
        known |= {("field", event_id) for event_id in record.field_sync.sale_events}
    known |= {("square", event_id) for event_id in record.polled_event_keys}
    refused = {(e.provider, k) for k, e in record.events.items() if e.kind in (FORGED, STALE, MALFORMED)}
    for identity, row in raw.items():
        if identity in refused:
            findings.partial_writes += 1
            findings.note(f"partial write: refused {identity} has raw row {row['id']}")
        elif identity not in known:
            findings.partial_writes += 1
            findings.note(f"partial write: raw row {row['id']} ({identity}) was never sent as valid")


def _expected_points(conn: Conn, record: Record, findings: Findings) -> None:
    """Each member wallet's balance against the run's own account of what it should hold:
    payments earned by the rule − the refunded share of them (all accepted refunds of a payment,
    cumulatively; a full refund takes everything) (+ the shortfall the database recorded: points
    already spent) − accepted redemptions ± accepted adjustments."""
    wallets = {
        (row["tenant"], row["email"]): row
        for row in conn.execute(
            "SELECT w.id::text AS id, t.name AS tenant, u.email, w.points_balance,"
            "       (SELECT coalesce(sum(points_shortfall), 0) FROM loyalty.reward_events r"
            "         WHERE r.wallet_id = w.id AND r.kind = 'reversal') AS shortfall"
            "  FROM loyalty.wallets w JOIN identity.tenants t ON t.id = w.tenant_id"
            "  JOIN identity.users u ON u.id = w.user_id"
        ).fetchall()
    }
    expected = _expected(record, {row["id"]: identity for identity, row in wallets.items()})
    # The field business's wallets are checked by _field (its members have a mobile, no email).
    field_tenant = record.field_sync.tenant_name if record.field_sync is not None else None
    for identity in sorted(set(expected) | set(wallets), key=lambda i: (i[0], i[1] or "")):
        if identity[0] == field_tenant:
            continue
        row = wallets.get(identity)
        balance = int(row["points_balance"]) if row else 0
        should = expected.get(identity, 0) + (int(row["shortfall"]) if row else 0)
        if balance != should:
            findings.expected_points_mismatches += 1
            findings.note(f"points: {identity[0]} {identity[1]} holds {balance}, the run expects {should}")


def _expected(record: Record, wallet_owner: dict[str, tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Points each (tenant, member) should hold by the run's record, before refund shortfalls:
    each accepted payment's points, less the refunded share of them (every accepted refund of it,
    cumulatively: ``expected_reversal``), ± accepted wallet operations."""
    expected: dict[tuple[str, str], int] = defaultdict(int)
    paid, refunded = _paid_and_refunded(record)
    for payment_id, payment in paid.items():
        if payment.email and payment.tenant:
            reversed_points = expected_reversal(
                payment.tenant, payment.points, _payment_amount(payment), refunded.get(payment_id, 0)
            )
            expected[(payment.tenant, payment.email)] += payment.points - reversed_points
    replayed: set[str] = set()
    for op in record.wallet_operations:
        if op.status not in (200, 201) or op.wallet_id not in wallet_owner:
            continue
        if op.key:
            if op.key in replayed:
                continue  # the same idempotency key again: one redemption
            replayed.add(op.key)
        expected[wallet_owner[op.wallet_id]] += op.points
    return expected


def _paid_and_refunded(record: Record) -> tuple[dict[str, Event], dict[str, int]]:
    """The payments that got in (by payment id) and the total of each one's accepted refunds."""
    accepted = [record.events[key] for key in sorted(record.valid_keys_answered())]
    paid = {e.payment_id: e for e in accepted if e.payment_id}
    for made in record.polled:  # every payment at Square: the poller credits it, webhook or not
        if made.payment_id:
            paid.setdefault(made.payment_id, made)
    if record.poison is not None and record.poison.payment_id:
        paid[record.poison.payment_id] = record.poison
    refunded: dict[str, int] = defaultdict(int)
    for event in accepted:
        if not event.refund_of:
            continue
        refunded[event.refund_of] += _refund_amount(event)
        if event.provider == "clover" and event.refund_of not in paid:
            # A Clover update only names the payment: crediting the refund's update fetches the
            # payment and credits it too, whether or not its CREATE got in.
            payment = _payment_event(record, event.refund_of)
            if payment is not None:
                paid[event.refund_of] = payment
    return paid, refunded


def expected_reversal(tenant: str, earned: int, amount: int, refunded: int) -> int:
    """What refunds totalling ``refunded`` take back of a payment of ``amount`` that earned
    ``earned``: everything once the amount is refunded, else the refunded share of the points
    rounded by the tenant's rule (floor for a tenant the run has no rule of), at most ``earned``.
    The run's own arithmetic, not the service's."""
    if earned <= 0 or refunded <= 0:
        return 0
    if refunded >= amount:
        return earned
    share = Fraction(earned * refunded, amount)
    rounding = RULES[tenant][1] if tenant in RULES else ROUND_FLOOR
    if rounding == ROUND_HALF_UP:
        points = math.floor(share + Fraction(1, 2))
    elif rounding == ROUND_CEILING:
        points = math.ceil(share)
    else:
        points = math.floor(share)
    return min(earned, points)


def _payment_event(record: Record, payment_id: str) -> Event | None:
    return next((e for e in record.events.values() if e.payment_id == payment_id), None)


def _payment_amount(payment: Event) -> int:
    """The payment's amount (minor units): its own field, else a Square body's amount_money."""
    if payment.amount:
        return payment.amount
    try:
        return int(json.loads(payment.body)["data"]["object"]["payment"]["amount_money"]["amount"])
    except (ValueError, TypeError, KeyError):
        return 0  # unknown: any refund of it takes everything


def _refund_amount(refund: Event) -> int:
    """The refund's amount (minor units): its own field, else its Clover refund's or Square body's."""
    if refund.refund_amount:
        return refund.refund_amount
    if refund.clover_refund is not None:
        return int(refund.clover_refund.get("amount", 0))
    try:
        return int(json.loads(refund.body)["data"]["object"]["refund"]["amount_money"]["amount"])
    except (ValueError, TypeError, KeyError):
        return 0


def _field(conn: Conn, field_record: FieldRecord, findings: Findings) -> None:
    """Every operation the devices hold as synced has its operation-log row (and none is left
    unsynced on a device); the devices' records equal the server's (compared by the run after
    its last pull); each member sale is credited exactly once, and a voided one reversed exactly
    once, in full (net 0 points, but for a shortfall the reversal recorded: points already spent);
    the member's wallet holds Σ floor(total) of the member sales not voided (1 point per sol)."""
    landed = {
        row["op_id"]
        for row in conn.execute(
            "SELECT op_id::text AS op_id FROM field_sales.sync_operations WHERE tenant_id = %s",
            (field_record.tenant_id,),
        ).fetchall()
    }
    missing = sorted(field_record.synced_op_ids - landed)
    findings.field_unsynced = field_record.unsynced + len(missing)
    if field_record.unsynced:
        findings.note(f"field: {field_record.unsynced} operation(s) or record(s) not synced on the device")
    for op_id in missing[:5]:
        findings.note(f"field: operation {op_id} synced by the device has no operation-log row")
    findings.field_mismatches = len(field_record.mismatches)
    for text in field_record.mismatches[:5]:
        findings.note(text)
    shortfall = _field_member_sales(conn, field_record, findings)
    _field_wallet(conn, field_record, shortfall, findings)


# Per field sale of the tenant: its ledger credits, its reversals, the points its ledger entries
# add up to (credits − debits) and the shortfall its reversals recorded.
_FIELD_LOYALTY = """
SELECT t.provider_transaction_id AS sale_id,
       (SELECT count(*) FROM loyalty.wallet_ledger l
          LEFT JOIN loyalty.reward_events e ON e.id = l.reward_event_id
         WHERE l.entry_type = 'credit'
           AND coalesce(l.source_transaction_id, e.transaction_id) = t.id) AS credits,
       (SELECT coalesce(sum(CASE l.entry_type WHEN 'credit' THEN l.points ELSE -l.points END), 0)
          FROM loyalty.wallet_ledger l LEFT JOIN loyalty.reward_events e ON e.id = l.reward_event_id
         WHERE coalesce(l.source_transaction_id, e.transaction_id) = t.id) AS net,
       (SELECT count(*) FROM loyalty.reward_events r
         WHERE r.transaction_id = t.id AND r.kind = 'reversal') AS reversals,
       (SELECT coalesce(sum(r.points_shortfall), 0) FROM loyalty.reward_events r
         WHERE r.transaction_id = t.id AND r.kind = 'reversal') AS shortfall
  FROM pos.transactions t
 WHERE t.tenant_id = %s AND t.provider = 'field'
"""


def _field_member_sales(conn: Conn, field_record: FieldRecord, findings: Findings) -> int:
    """Each member sale credited once; a voided one reversed once, in full; one not voided never
    reversed. Returns the shortfall the voided ones' reversals recorded."""
    loyalty = {
        row["sale_id"]: row for row in conn.execute(_FIELD_LOYALTY, (field_record.tenant_id,)).fetchall()
    }
    shortfall = 0
    for sale_id in sorted(field_record.member_sales):
        row = loyalty.get(sale_id) or {"credits": 0, "net": 0, "reversals": 0, "shortfall": 0}
        credits, reversals = int(row["credits"]), int(row["reversals"])
        if credits != 1:
            findings.field_credit_mismatches += 1
            findings.note(f"field: member sale {sale_id} credited {credits} time(s)")
        if sale_id not in field_record.voided:
            if reversals:
                findings.field_credit_mismatches += 1
                findings.note(f"field: member sale {sale_id}, not voided, reversed {reversals} time(s)")
            continue
        shortfall += int(row["shortfall"])
        if reversals != 1 or int(row["net"]) != int(row["shortfall"]):
            findings.field_credit_mismatches += 1
            findings.note(
                f"field: voided member sale {sale_id} reversed {reversals} time(s), its points net"
                f" {row['net']} (shortfall {row['shortfall']})"
            )
    return shortfall


def _field_wallet(conn: Conn, field_record: FieldRecord, shortfall: int, findings: Findings) -> None:
    row = conn.execute(
        "SELECT coalesce(sum(w.points_balance), 0) AS points FROM loyalty.wallets w"
        "  JOIN identity.users u ON u.id = w.user_id WHERE w.tenant_id = %s AND u.mobile = %s",
        (field_record.tenant_id, field_record.member_mobile),
    ).fetchone()
    points = int(row["points"]) if row else 0
    earned = sum(
        int(total.to_integral_value(ROUND_FLOOR))
        for sale_id, total in field_record.member_sales.items()
        if sale_id not in field_record.voided
    )
    if points != earned + shortfall:
        findings.field_credit_mismatches += 1
        spent = f" (+ {shortfall} spent before their void)" if shortfall else ""
        findings.note(
            f"field: the member holds {points} points, the member sales not voided earn {earned}{spent}"
        )


# The RPApos entity types the catalog loads into catalog.product (one product per record).
PRODUCT_ENTITIES = ("plu", "sku")


def _rpapos(conn: Conn, rpapos: RpaposRecord, findings: Findings) -> None:
    """The catalog run (and the second one) ended ``completed``, as the database holds them; each
    entity's stats add up (extracted = loaded + skipped + failed + archived_only, nothing failed,
    the entity completed); every PLU and SKU of the fake is one catalog.product row of the tenant
    with one id-map row; the second run loaded nothing (every record skipped, unchanged)."""
    runs = {
        str(row["id"]): row
        for row in conn.execute(
            "SELECT id, status, per_entity_stats FROM rpapos.rpapos_sync_run WHERE tenant_id = %s",
            (rpapos.tenant_id,),
        ).fetchall()
    }
    findings.rpapos_runs_not_completed = rpapos.start_failures
    if rpapos.start_failures:
        findings.note(f"rpapos: {rpapos.start_failures} sync run(s) the admin API did not start")
    for run_id in (rpapos.run_id, rpapos.second_run_id):
        if run_id is None:
            continue
        row = runs.get(run_id)
        status = str(row["status"]) if row else "missing"
        if status != "completed":
            findings.rpapos_runs_not_completed += 1
            findings.note(f"rpapos: sync run {run_id} is {status}, not completed")
        for entity, stats in sorted(((row or {}).get("per_entity_stats") or {}).items()):
            _entity_stats(run_id, entity, stats, findings)
    products = _count_for(
        conn, "SELECT count(*) AS n FROM catalog.product WHERE tenant_id = %s", rpapos.tenant_id
    )
    mapped = _count_for(
        conn,
        "SELECT count(*) AS n FROM rpapos.rpapos_id_map m JOIN catalog.product p"
        "  ON p.id = m.flowpos_entity_id AND p.tenant_id = m.tenant_id"
        " WHERE m.tenant_id = %s AND m.entity_type::text = ANY(%s)",
        rpapos.tenant_id,
        list(PRODUCT_ENTITIES),
    )
    id_map = _count_for(
        conn,
        "SELECT count(*) AS n FROM rpapos.rpapos_id_map WHERE tenant_id = %s AND entity_type::text = ANY(%s)",
        rpapos.tenant_id,
        list(PRODUCT_ENTITIES),
    )
    if rpapos.run_id is not None and not (products == mapped == id_map == rpapos.expected_products):
        findings.rpapos_not_loaded_once += 1
        findings.note(
            f"rpapos: {products} catalog.product row(s), {id_map} PLU/SKU id-map row(s) ({mapped} naming"
            f" a product of the tenant), RPApos holds {rpapos.expected_products} PLUs and SKUs"
        )
    if rpapos.second_run_id is not None:
        second = (runs.get(rpapos.second_run_id) or {}).get("per_entity_stats") or {}
        for entity, stats in sorted(second.items()):
            if int(stats.get("loaded", 0)) or int(stats.get("skipped", 0)) != int(stats.get("extracted", 0)):
                findings.rpapos_second_run_writes += 1
                findings.note(
                    f"rpapos: the second run loaded {stats.get('loaded', 0)} {entity} record(s)"
                    f" ({stats.get('skipped', 0)} of {stats.get('extracted', 0)} skipped)"
                )


def _entity_stats(run_id: str, entity: str, stats: dict[str, Any], findings: Findings) -> None:
    counts = {name: int(stats.get(name, 0)) for name in ("extracted", "loaded", "skipped", "failed")}
    archived = int(stats.get("archived_only", 0))
    adds_up = counts["extracted"] == counts["loaded"] + counts["skipped"] + counts["failed"] + archived
    status = str(stats.get("status", "pending"))
    if not adds_up or counts["failed"] or status not in ("completed", "archived_only"):
        findings.rpapos_not_loaded_once += 1
        findings.note(
            f"rpapos: run {run_id} {entity} {status}: extracted {counts['extracted']}, loaded"
            f" {counts['loaded']}, skipped {counts['skipped']}, failed {counts['failed']},"
            f" archived_only {archived}"
        )


def _count_for(conn: Conn, query: str, *params: Any) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row["n"]) if row else 0
