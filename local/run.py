"""`make run`: start the local stack, replay the demo webhooks, summarize, keep serving."""

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from collections import Counter
from pathlib import Path

from local import demo
from local.replay import Delivery, clover_delivery, replay
from local.stack import ROOT, LocalStack, StackConfig

CLOVER_DEMO = ROOT / "events" / "clover" / "notification_two_merchants.json"


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    # pgserver's platformdirs complains when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the moto server's access log
    config = StackConfig(
        port=args.port,
        database_url=os.environ.get("DATABASE_URL") or None,
        reset_database=not args.keep_data,
    )
    print("Starting the local stack…", flush=True)
    with LocalStack(config) as stack:
        print(f"  API           {stack.api_url}")
        print(f"  admin API     {stack.api_url}/admin/docs (tokens in the stack file)")
        print(f"  database      {stack.database_url}")
        print(f"  stack file    {config.state_dir / 'stack.json'}")
        print(f"  function logs {config.state_dir / 'logs'}")
        if not args.no_rpapos:
            _connect_rpapos(stack)
        if not args.no_replay:
            _replay_demo(stack, sorted((ROOT / "events" / "square").glob("*.json")), CLOVER_DEMO)
        if args.exit_after_replay:
            return 0
        print(f"\nServing on {stack.api_url} — Ctrl-C to stop.", flush=True)
        _wait_for_interrupt()
    print("Stopped.")
    return 0


def _connect_rpapos(stack: LocalStack) -> None:
    rpapos = demo.connect_rpapos(stack)
    volume = rpapos.volume
    print(
        f"\nRPApos demo: {rpapos.tenant_name} on the fake RPApos ({rpapos.subdomain}, {volume.plus} PLUs,"
        f" {volume.skus} SKUs), device registered through the admin API\n"
        "  `make sync` runs a catalog sync through the local Step Functions and shows its progress"
    )


def _replay_demo(stack: LocalStack, paths: list[Path], clover_notification: Path) -> None:
    print(f"\nReplaying {len(paths)} demo webhooks (signed like Square) to {stack.square_notification_url}")
    deliveries = replay(stack.square_notification_url, stack.signature_key, paths)
    for delivery in deliveries:
        print(f"  {delivery.status_code} {delivery.outcome:<12} {delivery.name}")
    print(f"Posting a Clover notification (X-Clover-Auth) to {stack.clover_webhook_url}")
    clover = clover_delivery(
        stack.clover_webhook_url, clover_notification.read_bytes(), stack.clover_auth_code
    )
    print(f"  {clover.status_code} {clover.text}")
    drained = stack.wait_until_drained(timeout=60)
    _print_summary(stack, deliveries, drained)


def _print_summary(stack: LocalStack, deliveries: list[Delivery], drained: bool) -> None:
    outcomes = Counter(d.outcome for d in deliveries)
    with stack.owner_connection() as conn:
        transactions = conn.execute("SELECT count(*) AS n FROM pos.transactions").fetchone()
        credited = conn.execute(
            "SELECT count(*) AS n FROM pos.transactions t JOIN loyalty.wallet_ledger l"
            " ON l.source_transaction_id = t.id AND l.entry_type = 'credit'"
        ).fetchone()
        refunds = conn.execute(
            "SELECT count(*) AS n, coalesce(sum(points_reversed), 0) AS reversed,"
            " coalesce(sum(points_shortfall), 0) AS shortfall"
            " FROM loyalty.reward_events WHERE kind = 'reversal'"
        ).fetchone()
        wallets = conn.execute(
            "SELECT t.name AS tenant, u.email, w.points_balance, w.status"
            "  FROM loyalty.wallets w JOIN identity.tenants t ON t.id = w.tenant_id"
            "  JOIN identity.users u ON u.id = w.user_id ORDER BY t.name, u.email"
        ).fetchall()
    print("\nSummary")
    print(f"  Square events        {outcomes['accepted']} accepted")
    print(f"  duplicates absorbed  {outcomes['duplicate']}")
    print(f"  quarantined          {outcomes['quarantined']} (unknown merchant, kept for operators)")
    rejected = sum(
        n for outcome, n in outcomes.items() if outcome not in ("accepted", "duplicate", "quarantined")
    )
    print(f"  rejected             {rejected}")
    print(
        f"  transactions         {transactions['n'] if transactions else 0} recorded, "
        f"{credited['n'] if credited else 0} earned points"
    )
    if refunds:
        print(
            f"  refunds              {refunds['n']} reversed {refunds['reversed']} points"
            f" (shortfall {refunds['shortfall']})"
        )
    print("  points per wallet")
    for wallet in wallets:
        tenant, email, points = wallet["tenant"], wallet["email"], wallet["points_balance"]
        print(f"    {tenant:<18} {email:<20} {points:>6}  {wallet['status']}")
    if not drained:
        print("  WARNING: the pipeline had not drained after 60 s; see the function logs.", file=sys.stderr)


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    # Installed explicitly: a shell without job control starts background jobs ignoring SIGINT.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1):
        pass


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--keep-data", action="store_true", help="keep the database of the previous run")
    parser.add_argument("--no-replay", action="store_true", help="do not replay events/square/*.json")
    parser.add_argument(
        "--no-rpapos", action="store_true", help="no demo RPApos connection (nothing for `make sync`)"
    )
    parser.add_argument("--exit-after-replay", action="store_true", help="stop after the summary")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
