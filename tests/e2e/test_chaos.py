"""`make chaos` in its small configuration: load, duplicates, offline field pushes through a flaky
network and every injected fault kind, then nothing lost, nothing doubled, no bad input in, every
field operation synced once (the same run `make chaos` does, smaller)."""

import pytest

from local.chaos import run as chaos
from local.chaos.faults import FIELD_NETWORK, KINDS
from local.database import Cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def result(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> chaos.Result:
    options = chaos._arguments(["--quick", "--seed", "11"])
    return chaos.run(options, database_url=cluster.admin_url, state_dir=tmp_path_factory.mktemp("chaos"))


def test_the_quick_chaos_run_passes(result: chaos.Result) -> None:
    assert result.exit_status == 0, result.table
    assert result.drained


def test_every_must_be_zero_figure_is_zero(result: chaos.Result) -> None:
    assert result.figures == {figure: 0 for figure in result.figures}, result.table
    assert len(result.figures) == 10
    for figure in (
        "field operations not synced",
        "field records differing device vs server",
        "field member sales not credited exactly once",
    ):
        assert result.figures[figure] == 0, result.table


def test_every_fault_kind_was_injected_and_recovered(result: chaos.Result) -> None:
    assert set(result.faults.counts) == set(KINDS)
    for kind, count in result.faults.counts.items():
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
