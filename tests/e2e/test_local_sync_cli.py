"""`make sync` end to end: the demo's RPApos connection (as `make run` adds it) on a local stack,
runs started through the admin API over HTTP by the CLI, executed by moto from the real ASL with
functions/rpapos_sync in its worker process, against the fake RPApos."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import demo, sync
from local.database import Cluster
from local.stack import LocalStack
from pos_gateway.admin.rpapos import SEALED_COLUMNS, TABLE
from pos_gateway.rpapos.contract import CATALOG, EntityType
from pos_gateway.rpapos.planner import dependency_order
from tests.helpers import e2e_stack_config, one

pytestmark = pytest.mark.e2e

CATALOG_PLAN = [entity.value for entity in dependency_order(CATALOG)]
# A progress line: "  <seconds>s  <entity>  <status>  extracted <n>  loaded <n>  skipped <n>  failed <n>"
PROGRESS = re.compile(
    r"^\s+\d+\.\ds\s+(?P<entity>[a-z_]+)\s+(?P<status>[a-z_]+)\s+extracted\s+(?P<extracted>\d+)"
    r"\s+loaded\s+(?P<loaded>\d+)\s+skipped\s+(?P<skipped>\d+)\s+failed\s+(?P<failed>\d+)",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = e2e_stack_config(cluster, tmp_path_factory.mktemp("stack"), "sync_cli")
    with LocalStack(config) as running:
        demo.connect_rpapos(running)  # as `make run` does once the stack serves
        yield running


@pytest.fixture(scope="module")
def rpapos(stack: LocalStack) -> demo.RpaposDemo:
    assert stack.rpapos is not None
    return stack.rpapos


def stack_file(stack: LocalStack) -> Path:
    return stack.config.state_dir / "stack.json"


def run_cli(stack: LocalStack, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = sync.main(["--stack-file", str(stack_file(stack)), "--interval", "0.25", "--timeout", "60", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def scalar(stack: LocalStack, query: str, *params: object) -> Any:
    with stack.owner_connection() as owner:
        return next(iter(one(owner.execute(query, params).fetchone()).values()))


def latest_run(stack: LocalStack, rpapos: demo.RpaposDemo) -> dict[str, Any]:
    with stack.owner_connection() as owner:
        return dict(
            one(
                owner.execute(
                    "SELECT *, entity_types::text[] AS plan FROM rpapos.rpapos_sync_run"
                    " WHERE connection_id = %s ORDER BY started_at DESC LIMIT 1",
                    (rpapos.connection_id,),
                ).fetchone()
            )
        )


def test_the_demo_connection_is_sealed_registered_and_named_in_the_stack_file(
    stack: LocalStack, rpapos: demo.RpaposDemo
) -> None:
    described = json.loads(stack_file(stack).read_text(encoding="utf-8"))["rpapos"]
    assert described["tenant_id"] == str(rpapos.tenant_id)
    assert described["connection_id"] == str(rpapos.connection_id)
    assert described["subdomain"] == demo.RPAPOS_SUBDOMAIN
    assert described["fake_rpapos_tenant_url"] == stack.fake_rpapos.tenant_url(demo.RPAPOS_SUBDOMAIN)
    assert described["fake_rpapos_soap_url"] == stack.fake_rpapos.soap_url
    with stack.owner_connection() as owner:
        row = one(
            owner.execute(
                "SELECT * FROM rpapos.rpapos_connection WHERE id = %s", (rpapos.connection_id,)
            ).fetchone()
        )
        audited = owner.execute(
            "SELECT action FROM audit.admin_audit_logs WHERE target_entity_id = %s",
            (str(rpapos.connection_id),),
        ).fetchall()
    # The password opens with the admin API's binding (table, column, row id); so does the token
    # the API sealed when it registered the device.
    for column in ("password_encrypted", "soap_token_encrypted"):
        assert row[column]
        assert stack.cipher.decrypt(row[column], table=TABLE, column=column, row_id=str(row["id"]))
    assert SEALED_COLUMNS["password"] == "password_encrypted"
    assert row["estacion_trabajo"] == demo.RPAPOS_WORKSTATION
    assert row["localizacion_id"] is not None
    assert row["sync_interval_minutes"] is None  # the scheduler leaves it alone
    assert [r["action"] for r in audited] == ["rpapos_connection.register_device"]


def test_make_sync_runs_the_catalog_then_finds_nothing_changed(
    stack: LocalStack, rpapos: demo.RpaposDemo, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = stack.fake_rpapos.catalog(rpapos.subdomain)

    # When `make sync` runs a catalog sync
    code, out, err = run_cli(stack, capsys)

    # Then the run completed, its progress named every planned entity type as it went
    assert code == 0, out + err
    first = latest_run(stack, rpapos)
    assert first["status"] == "completed"
    assert f"Started a catalog run of {demo.RPAPOS_TENANT} ({rpapos.subdomain}): {first['id']}" in out
    progress = [match.groupdict() for match in PROGRESS.finditer(out.split("\nSummary")[0])]
    assert {line["entity"] for line in progress} == set(CATALOG_PLAN)
    last_shown = {line["entity"]: line for line in progress}
    for entity in CATALOG_PLAN:
        assert last_shown[entity]["status"] == "completed", entity
        assert last_shown[entity]["failed"] == "0", entity
    # and the summary table lists them in the plan's order, then says it completed
    summary = out.split("\nSummary of catalog run")[1]
    assert [line.split()[0] for line in summary.splitlines()[3 : 3 + len(CATALOG_PLAN)]] == CATALOG_PLAN
    assert "Run completed in" in summary
    # and the catalog holds the fake's rows: every PLU and SKU (soft-deleted ones marked so)
    products = scalar(stack, "SELECT count(*) FROM catalog.product WHERE tenant_id = %s", rpapos.tenant_id)
    assert products == catalog.count(EntityType.PLU) + catalog.count(EntityType.SKU)
    assert int(last_shown["plu"]["loaded"]) == catalog.count(EntityType.PLU) == demo.RPAPOS_VOLUME.plus
    # and the start was audited as the demo admin's
    assert stack.demo is not None
    actor = scalar(
        stack,
        "SELECT actor_user_id FROM audit.admin_audit_logs WHERE action = 'sync_run.start'"
        " AND target_entity_id = %s",
        str(first["id"]),
    )
    assert actor == stack.demo.admin_id

    # When `make sync` runs again
    code, out, err = run_cli(stack, capsys)

    # Then every record was skipped: nothing changed in RPApos
    assert code == 0, out + err
    second = latest_run(stack, rpapos)
    assert second["id"] != first["id"]
    assert second["status"] == "completed"
    for entity in CATALOG_PLAN:
        stats = second["per_entity_stats"][entity]
        assert stats["loaded"] == stats["failed"] == 0, entity
        assert stats["skipped"] == stats["extracted"], entity
    total = sum(second["per_entity_stats"][entity]["extracted"] for entity in CATALOG_PLAN)
    assert f"Nothing changed: all {total} records were skipped" in out
    assert scalar(stack, "SELECT count(*) FROM catalog.product WHERE tenant_id = %s", rpapos.tenant_id) == (
        products
    )


def test_a_custom_run_of_chosen_types(
    stack: LocalStack, rpapos: demo.RpaposDemo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(stack, capsys, "--mode", "custom", "--entity-types", "plu,plu_grupo")

    assert code == 0
    run = latest_run(stack, rpapos)
    assert (run["mode"], run["plan"]) == ("custom", ["plu_grupo", "plu"])
    assert "plan: 2 entity types: plu_grupo, plu" in out


def test_a_refused_request_is_explained_and_starts_nothing(
    stack: LocalStack, rpapos: demo.RpaposDemo, capsys: pytest.CaptureFixture[str]
) -> None:
    before = latest_run(stack, rpapos)["id"]

    code, out, err = run_cli(stack, capsys, "--mode", "historical")  # no window

    assert code == 2
    assert "the admin API refused the run: 422" in err
    assert "date_from" in err
    assert latest_run(stack, rpapos)["id"] == before
    assert "Bearer" not in out + err


def test_without_a_stack_it_says_how_to_start_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sync.main(["--stack-file", str(tmp_path / "stack.json")]) == 2
    assert "start the local stack with `make run`" in capsys.readouterr().err

    (tmp_path / "stack.json").write_text(json.dumps({"api_url": "http://127.0.0.1:9", "rpapos": None}))
    assert sync.main(["--stack-file", str(tmp_path / "stack.json")]) == 2
    assert "names no RPApos connection" in capsys.readouterr().err


def test_a_failed_run_exits_non_zero_with_its_error(
    stack: LocalStack, rpapos: demo.RpaposDemo, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given RPApos refusing the connection's login (last: the connection ends in error)
    stack.fake_rpapos.reject_logins(rpapos.subdomain, times=1)

    code, out, _ = run_cli(stack, capsys, "--mode", "custom", "--entity-types", "moneda")

    assert code == 1
    assert latest_run(stack, rpapos)["status"] == "failed"
    assert "\nRun failed" in out
    assert "Last error: " in out
    assert "BadCredentials" in out
