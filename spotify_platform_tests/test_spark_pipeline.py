"""`PROCESSING_ENGINE=spark` runs the whole pipeline through Dagster Pipes (`spark-submit
--master local[2]` under `PipesSubprocessClient`) into the same warehouse as the default
engine: every table, row for row, on MariaDB."""

import contextlib
import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.lake.layout import aggregate_prefix
from spotify_platform.core.lake.store import Lake
from spotify_platform.defs.engine import processing_engine
from spotify_platform_tests import test_buckets
from spotify_platform_tests.harness import make_resources, run_days
from spotify_platform_tests.spark_support import require_spark
from spotify_platform_tests.support.mariadb import temporary_database

FIRST, LAST = dt.date(2026, 3, 1), dt.date(2026, 3, 3)


def _run(tmp_path, url: str, name: str, monkeypatch, engine: str, facts: str = "load"):
    """One run of FIRST..LAST with `engine` into the database at `url`; its resources and
    Dagster instance."""
    monkeypatch.setenv("PROCESSING_ENGINE", engine)
    monkeypatch.setenv("WAREHOUSE_FACT_STREAMS", facts)
    resources = make_resources(tmp_path / name, warehouse_url=url, accounts=60)
    lake = Lake(url=resources["lake"].url)
    for key, data in test_buckets._day_files().items():  # noqa: SLF001 - its awkward day
        lake.write_bytes(key, data)
    instance = DagsterInstance.ephemeral()
    assert run_days(resources, FIRST, LAST, instance=instance)
    return resources, instance


def _tables(resources) -> dict[str, pd.DataFrame]:
    warehouse = resources["warehouse"]
    frames = {}
    for name, table in TABLES.items():
        frame = warehouse.read_frame(sa.select(table))
        keys = [c.name for c in table.primary_key.columns] or list(frame.columns)
        frames[name] = frame.sort_values(keys).reset_index(drop=True)
    return frames


@pytest.fixture(scope="module")
def module_monkeypatch():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mysql_server_url, module_monkeypatch):
    require_spark()
    tmp_path = tmp_path_factory.mktemp("engines")
    ways = {
        "pandas": ("pandas", "load"),
        "spark": ("spark", "load"),
        "spark_skip": ("spark", "skip"),
    }
    with contextlib.ExitStack() as databases:
        yield {
            name: _run(
                tmp_path,
                databases.enter_context(temporary_database(mysql_server_url)),
                name,
                module_monkeypatch,
                engine,
                facts,
            )
            for name, (engine, facts) in ways.items()
        }


def test_every_warehouse_table_is_the_pandas_engines(runs):
    want, got = _tables(runs["pandas"][0]), _tables(runs["spark"][0])
    assert set(got) == set(want) == set(TABLES)
    assert len(want["fact_streams"]) > 500 and len(want["kpi_daily_streams"]) == 3
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=True, obj=name)


def test_the_spark_run_staged_through_pipes_and_wrote_the_aggregates(runs):
    resources, instance = runs["spark"]
    lake = Lake(url=resources["lake"].url)
    for table in ("agg_account_daily", "agg_track_daily"):
        assert lake.list_keys(aggregate_prefix(table, test_buckets.DAY))
    staging = instance.get_latest_materialization_event(AssetKey(["lake", "staging_streams"]))
    assert staging is not None
    records = instance.get_records_for_run(run_id=staging.run_id).records
    logs = [r.event_log_entry.user_message for r in records]
    # The job's own log lines, sent back through Pipes.
    assert "[pipes] external process successfully opened dagster pipes." in logs
    assert any(line.startswith("3 of 3 days staged: ") for line in logs)
    assert any(line.startswith("staged 6 raw files of 3 days in ") for line in logs)
    assert processing_engine() == "spark"


def test_the_same_checks_pass_on_both_engines(runs):
    outcomes, staging_checks = {}, {}
    for engine, (_, instance) in list(runs.items())[:2]:
        run = instance.get_runs()[0]
        checks = instance.get_records_for_run(run_id=run.run_id).records
        evaluations = [
            r.event_log_entry.dagster_event.event_specific_data
            for r in checks
            if r.event_log_entry.dagster_event is not None
            and r.event_log_entry.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        outcomes[engine] = sorted((e.check_name, e.passed) for e in evaluations)
        staging_checks[engine] = {
            e.check_name: e.metadata
            for e in evaluations
            if e.asset_key == AssetKey(["lake", "staging_streams"])
        }
    assert outcomes["spark"] == outcomes["pandas"]
    assert len(outcomes["pandas"]) > 5
    # The staging checks' figures too: built from the stats the Spark job wrote to the lake.
    assert set(staging_checks["pandas"]) >= {"quarantine_share", "contract", "schema_drift"}
    assert staging_checks["spark"] == staging_checks["pandas"]


def test_with_fact_streams_skipped_the_lake_is_the_fact_table_and_the_rest_is_the_same(runs):
    want, got = _tables(runs["pandas"][0]), _tables(runs["spark_skip"][0])
    assert got["fact_streams"].empty and len(want["fact_streams"]) > 500
    for name in set(TABLES) - {"fact_streams"}:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=True, obj=name)
    _, instance = runs["spark_skip"]
    run = instance.get_runs()[0]
    evaluations = [
        r.event_log_entry.dagster_event.event_specific_data
        for r in instance.get_records_for_run(run_id=run.run_id).records
        if r.event_log_entry.dagster_event is not None
        and r.event_log_entry.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    reconcile = [e for e in evaluations if e.check_name == "fact_streams_reconcile"]
    assert reconcile and all(e.passed for e in reconcile)
