"""Every invariant of the run, checked against the database (as its owner) and the run's record."""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR
from typing import Any

import psycopg

from local.chaos.record import FieldRecord, Record
from local.chaos.workload import FORGED, MALFORMED, STALE, UNKNOWN_MERCHANT, VALID

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
    payments earned by the rule − full refunds of them (+ the shortfall the database recorded:
    points already spent) − accepted redemptions ± accepted adjustments."""
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
    """Points each (tenant, member) should hold by the run's record, before refund shortfalls."""
    expected: dict[tuple[str, str], int] = defaultdict(int)
    answered = record.valid_keys_answered()
    paid = {e.payment_id: e for k, e in record.events.items() if k in answered and e.payment_id}
    if record.poison is not None and record.poison.payment_id:
        paid[record.poison.payment_id] = record.poison
    for payment in paid.values():
        if payment.email and payment.tenant:
            expected[(payment.tenant, payment.email)] += payment.points
    for key in answered:
        refunded = paid.get(record.events[key].refund_of or "")
        if refunded is not None and refunded.email and refunded.tenant:
            expected[(refunded.tenant, refunded.email)] -= refunded.points  # full refunds only
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


def _field(conn: Conn, field_record: FieldRecord, findings: Findings) -> None:
    """Every operation the device holds as synced has its operation-log row (and none is left
    unsynced on the device); the device's records equal the server's (compared by the run after
    its last pull); each member sale is credited exactly once and the member's wallet holds
    Σ floor(total) (1 point per sol)."""
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
    credits = {
        row["sale_id"]: int(row["n"])
        for row in conn.execute(
            "SELECT t.provider_transaction_id AS sale_id, count(l.id) AS n FROM pos.transactions t"
            "  LEFT JOIN (loyalty.wallet_ledger l"
            "             LEFT JOIN loyalty.reward_events e ON e.id = l.reward_event_id)"
            "    ON l.entry_type = 'credit' AND coalesce(l.source_transaction_id, e.transaction_id) = t.id"
            " WHERE t.tenant_id = %s AND t.provider = 'field' GROUP BY 1",
            (field_record.tenant_id,),
        ).fetchall()
    }
    for sale_id in sorted(field_record.member_sales):
        if credits.get(sale_id, 0) != 1:
            findings.field_credit_mismatches += 1
            findings.note(f"field: member sale {sale_id} credited {credits.get(sale_id, 0)} time(s)")
    row = conn.execute(
        "SELECT coalesce(sum(w.points_balance), 0) AS points FROM loyalty.wallets w"
        "  JOIN identity.users u ON u.id = w.user_id WHERE w.tenant_id = %s AND u.mobile = %s",
        (field_record.tenant_id, field_record.member_mobile),
    ).fetchone()
    points = int(row["points"]) if row else 0
    should = sum(int(total.to_integral_value(ROUND_FLOOR)) for total in field_record.member_sales.values())
    if points != should:
        findings.field_credit_mismatches += 1
        findings.note(f"field: the member holds {points} points, the member sales earn {should}")
