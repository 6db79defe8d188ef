"""`make chaos` in its small configuration: load, duplicates, offline field pushes through a flaky
network and every injected fault kind, then nothing lost, nothing doubled, no bad input in, every
field operation synced once, an RPApos catalog sync completed through an outage and loaded once
(the same run `make chaos` does, smaller)."""

import os

import pytest

from local.chaos import run as chaos
from local.chaos.faults import (
    FIELD_NETWORK,
    KINDS,
    POSTGRES_RESTART,
    RPAPOS_OUTAGE,
    SQUARE_5XX,
    SQUARE_429,
    SQUARE_HANG,
    STATEMENT_CRASH,
)

pytestmark = pytest.mark.e2e


# The run restarts PostgreSQL, so it gets an embedded cluster of its own (the suite's keeps
# serving the other tests); with TEST_DATABASE_URL it runs there, without the restart.
EXTERNAL_URL = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> chaos.Result:
    options = chaos._arguments(["--quick", "--seed", "11"])
    return chaos.run(options, database_url=EXTERNAL_URL, state_dir=tmp_path_factory.mktemp("chaos"))


def test_the_quick_chaos_run_passes(result: chaos.Result) -> None:
    assert result.exit_status == 0, result.table
    assert result.drained


def test_every_must_be_zero_figure_is_zero(result: chaos.Result) -> None:
    assert result.figures == {figure: 0 for figure in result.figures}, result.table
    assert len(result.figures) == 13
    for figure in (
        "field operations not synced",
        "field records differing device vs server",
        "field member sales not credited exactly once",
        "RPApos sync runs not completed",
        "RPApos records not loaded exactly once",
        "RPApos second run records written",
    ):
        assert result.figures[figure] == 0, result.table


def test_every_fault_kind_was_injected_and_recovered(result: chaos.Result) -> None:
    assert set(result.faults.counts) == set(KINDS)
    for kind, count in result.faults.counts.items():
        if kind == POSTGRES_RESTART and EXTERNAL_URL:
            continue  # a server the run does not own is not restarted
        assert count.injected >= 1, f"{kind} was never injected\n{result.table}"
        assert count.recovered == count.injected, f"{kind} did not recover\n{result.table}"


def test_the_workload_had_duplicates_and_bad_input(result: chaos.Result) -> None:
    findings = result.findings
    assert findings.transactions_credited > 0
    assert findings.quarantined_events > 0  # unknown merchants: accepted, kept aside
    assert "duplicate deliveries absorbed" in result.table


def test_the_field_device_pushed_through_network_faults(result: chaos.Result) -> None:
    field = result.field_outcome
    assert field is not None
    assert field.sessions >= 2
    assert field.pushed
    assert field.synced == field.pushed, result.table
    assert field.member_sales, "no sale to the loyalty member"
    assert result.faults.counts[FIELD_NETWORK].injected >= 2, result.table
    assert "field operations pushed / synced / replayed" in result.table


def test_the_rpapos_sync_ran_alongside_through_an_outage(result: chaos.Result) -> None:
    rpapos = result.rpapos_outcome
    assert rpapos is not None
    record = rpapos.record
    assert record.run_id is not None
    assert record.run_status == "completed", result.table
    assert record.run_seconds is not None
    assert sum(int(stats["loaded"]) for stats in record.run_stats.values()) >= record.expected_products > 0
    assert rpapos.outage_answers >= 1, result.table
    assert rpapos.retry_later >= 1, result.table  # the state machine's RetryLater path ran
    assert result.faults.counts[RPAPOS_OUTAGE].recovered == rpapos.outage_answers
    assert record.second_run_id is not None
    assert record.second_status == "completed", result.table
    assert all(int(stats["loaded"]) == 0 for stats in record.second_stats.values())
    assert "RPApos sync: records extracted / loaded, run seconds" in result.table


def test_the_database_restart_cost_valid_requests_nothing_but_a_retry(result: chaos.Result) -> None:
    restarted = not EXTERNAL_URL  # a server the run does not own is not restarted
    assert result.faults.counts[POSTGRES_RESTART].injected == int(restarted)
    assert result.five_xx == 0, result.table  # none outside the restart's own window
    assert ("PostgreSQL restart took (s)" in result.table) is restarted
    assert result.findings.lost_events == 0


def test_the_square_poller_found_the_payments_whose_webhook_never_came(result: chaos.Result) -> None:
    square = result.square_outcome
    assert square is not None
    assert square.missed, "no payment without its webhook"
    assert square.final_poll_clean, square.final_poll
    for kind in (SQUARE_429, SQUARE_5XX, SQUARE_HANG):
        assert result.faults.counts[kind].injected >= 1, result.table
    assert result.findings.lost_events == 0  # each of them has its transaction


def test_crashes_mid_transaction_were_injected_and_recovered(result: chaos.Result) -> None:
    assert result.faults.counts[STATEMENT_CRASH].injected >= 1
    assert result.faults.counts[STATEMENT_CRASH].recovered == result.faults.counts[STATEMENT_CRASH].injected
