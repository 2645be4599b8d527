"""The KPI step on MariaDB: KPIs built side by side equal those built one at a time, and a
KPI that fails leaves the others built and is named by the step's failure."""

import datetime as dt

import sqlalchemy as sa
from dagster import AssetCheckKey, AssetKey, AssetSelection, DagsterInstance, materialize

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.defs.assets import kpis
from spotify_platform_tests.harness import make_resources, run_days, table_checksums

DAY = dt.date(2026, 4, 14)
KPI_TABLES = {kpi.table for kpi in kpis.KPIS}


def _build_kpis(resources: dict, instance: DagsterInstance):
    return materialize(
        [kpis.warehouse_kpis],
        resources={"warehouse": resources["warehouse"]},
        partition_key=DAY.isoformat(),
        instance=instance,
        raise_on_error=False,
    )


def _kpi_checksums(resources: dict) -> dict[str, tuple]:
    return {name: sums for name, sums in table_checksums(resources).items() if name in KPI_TABLES}


def test_kpis_built_side_by_side_equal_those_built_one_at_a_time(
    tmp_path, mysql_url, monkeypatch
):
    resources = make_resources(tmp_path, accounts=60, warehouse_url=mysql_url)
    instance = DagsterInstance.ephemeral()
    assert run_days(resources, DAY, DAY, instance=instance)
    side_by_side = _kpi_checksums(resources)
    assert all(sums[0] > 0 for sums in side_by_side.values())
    with resources["warehouse"].engine.begin() as conn:
        for table in KPI_TABLES:
            conn.execute(sa.delete(TABLES[table]))
    monkeypatch.setattr(kpis, "KPI_THREADS", 1)
    assert _build_kpis(resources, instance).success
    assert _kpi_checksums(resources) == side_by_side


def test_a_failing_kpi_leaves_the_others_built_and_is_named(tmp_path, mysql_url):
    resources = make_resources(tmp_path, accounts=40, warehouse_url=mysql_url)
    instance = DagsterInstance.ephemeral()
    assert run_days(resources, DAY, DAY, instance=instance)
    with resources["warehouse"].engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE kpi_sessions"))
    result = _build_kpis(resources, instance)
    assert not result.success
    built = {event.asset_key.path[-1] for event in result.get_asset_materialization_events()}
    assert built == KPI_TABLES - {"kpi_sessions"}
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert "kpi_sessions" in failure.event_specific_data.error.to_string()


def test_a_check_run_on_its_own_outside_a_partition_checks_every_stored_day(
    tmp_path, mysql_url
):
    resources = make_resources(tmp_path, accounts=40, warehouse_url=mysql_url)
    instance = DagsterInstance.ephemeral()
    assert run_days(resources, DAY - dt.timedelta(days=2), DAY, instance=instance)
    table = TABLES["kpi_active_users"]
    with resources["warehouse"].engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.dt == DAY).values(dau=10**6))
    check = AssetCheckKey(AssetKey(["warehouse", "kpi_active_users"]), "active_users_ordered")
    result = materialize(
        [kpis.warehouse_kpis],
        resources={"warehouse": resources["warehouse"]},
        selection=AssetSelection.checks(check),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.get_asset_materialization_events()
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["days_checked"].value == 3
    assert list(evaluation.metadata["failing_days"].value) == [DAY.isoformat()]
