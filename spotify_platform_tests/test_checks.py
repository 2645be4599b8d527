"""Every check passes on a good day and fails on a day built to break it, with metadata."""

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_sensor_context,
    load_assets_from_modules,
    materialize,
)

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.lake.layout import raw_key, staging_key
from spotify_platform.core.sources.raw import encode_records
from spotify_platform.definitions import build_definitions
from spotify_platform.defs import checks
from spotify_platform.defs.assets import dimensions, facts, kpis, raw, staging
from spotify_platform.defs.automation import freshness_sensor
from spotify_platform.defs.runs import run_range
from spotify_platform_tests.harness import make_resources, read_table, run_days

DAY = dt.date(2026, 7, 6)
DATA_ASSETS = load_assets_from_modules([raw, staging, facts, dimensions, kpis])
ASSETS = [*DATA_ASSETS, *checks.ALL_CHECKS]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    resources = make_resources(tmp_path_factory.mktemp("checks"), accounts=80)
    instance = DagsterInstance.ephemeral()
    assert run_days(resources, DAY, DAY, instance=instance)
    return resources, instance


def kpi_check(table: str, name: str) -> AssetCheckKey:
    """A KPI invariant, checked by the KPI step (`warehouse_kpis`) when selected alone."""
    return AssetCheckKey(AssetKey(["warehouse", table]), name)


def evaluate(resources, check, day=DAY) -> tuple[bool, dict]:
    selection = AssetSelection.checks(check)
    partitioned = isinstance(check, AssetCheckKey) or check.partitions_def
    tags = (
        {
            "dagster/asset_partition_range_start": day.isoformat(),
            "dagster/asset_partition_range_end": day.isoformat(),
        }
        if partitioned
        else {}
    )
    result = materialize(
        ASSETS, resources=resources, selection=selection, raise_on_error=False, tags=tags
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation.passed, {k: v.value for k, v in evaluation.metadata.items()}


def test_a_good_day_passes_every_check_it_runs(tmp_path):
    resources = make_resources(tmp_path, accounts=60)
    resources["warehouse"].init_schema()
    job = build_definitions(resources).resolve_job_def("daily_pipeline")
    result = job.execute_in_process(partition_key=DAY.isoformat())
    assert result.success
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }
    assert ("warehouse/fact_streams", "fact_streams_reconcile") in evaluations
    assert ("warehouse/kpi_top_tracks", "dense_ranks_at_most_50") in evaluations
    assert ("lake/staging_streams", "quarantine_share") in evaluations
    failed = [k for k, passed in evaluations.items() if not passed]
    assert failed == []


def test_dropped_fact_row_fails_reconciliation(built):
    resources, _ = built
    wh = resources["warehouse"]
    with wh.engine.begin() as conn:
        victim = conn.execute(sa.text("SELECT MIN(event_id) FROM fact_streams")).scalar()
        conn.execute(sa.text("DELETE FROM fact_streams WHERE event_id = :e"), {"e": victim})
    passed, metadata = evaluate(resources, checks.fact_streams_reconcile)
    assert not passed
    day = metadata["failing_days"][DAY.isoformat()]
    assert day["fact_rows"] == day["staged_rows"] - 1


def test_orphan_track_fails_referential_integrity(built):
    resources, _ = built
    wh = resources["warehouse"]
    with wh.engine.begin() as conn:
        track = conn.execute(sa.text("SELECT MIN(track_id) FROM dim_tracks")).scalar()
        plays = conn.execute(
            sa.text("SELECT COUNT(*) FROM fact_streams WHERE track_id = :t"), {"t": track}
        ).scalar()
        conn.execute(sa.text("DELETE FROM dim_tracks WHERE track_id = :t"), {"t": track})
    passed, metadata = evaluate(resources, checks.fact_streams_referential_integrity)
    assert not passed
    assert metadata["orphan_tracks"] == plays > 0
    assert metadata["orphan_accounts"] == 0


@pytest.mark.parametrize("backend", ["mariadb", "sqlite"])
def test_orphans_of_each_dimension_are_counted(backend, tmp_path, request):
    url = request.getfixturevalue("mysql_url") if backend == "mariadb" else None
    resources = make_resources(tmp_path, accounts=50, warehouse_url=url)
    assert run_days(resources, DAY, DAY, instance=DagsterInstance.ephemeral())
    expected = {}
    with resources["warehouse"].engine.begin() as conn:
        for name, table, column in (
            ("tracks", "dim_tracks", "track_id"),
            ("artists", "dim_artists", "artist_id"),
            ("accounts", "dim_accounts", "account_id"),
        ):
            victim = conn.execute(
                sa.text(
                    f"SELECT {column} FROM fact_streams GROUP BY {column} "
                    f"HAVING {column} IS NOT NULL ORDER BY COUNT(*) DESC LIMIT 1"
                )
            ).scalar()
            expected[f"orphan_{name}"] = conn.execute(
                sa.text(f"SELECT COUNT(*) FROM fact_streams WHERE {column} = :v"), {"v": victim}
            ).scalar()
            conn.execute(sa.text(f"DELETE FROM {table} WHERE {column} = :v"), {"v": victim})
    passed, metadata = evaluate(resources, checks.fact_streams_referential_integrity)
    assert not passed
    assert metadata == expected
    assert all(n > 0 for n in expected.values())


def test_injected_duplicate_in_staging_breaks_raw_reconciliation(built):
    resources, _ = built
    lake = resources["lake"]
    staged = lake.read_parquet(staging_key(DAY))
    lake.write_parquet(staging_key(DAY), pd.concat([staged, staged.head(1)], ignore_index=True))
    passed, metadata = evaluate(resources, checks.staging_reconciles_with_raw)
    assert not passed
    day = metadata["failing_days"][DAY.isoformat()]
    assert day["staged"] + day["quarantined"] + day["duplicates"] == day["raw_records"] + 1
    lake.write_parquet(staging_key(DAY), staged)
    assert evaluate(resources, checks.staging_reconciles_with_raw)[0]


def test_dau_above_mau_fails(built):
    resources, _ = built
    table = TABLES["kpi_active_users"]
    with resources["warehouse"].engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.dt == DAY).values(dau=10**6))
    passed, metadata = evaluate(resources, kpi_check("kpi_active_users", "active_users_ordered"))
    assert not passed and DAY.isoformat() in metadata["failing_days"]


def test_broken_shares_and_ranks_fail(built):
    resources, _ = built
    genre = TABLES["kpi_genre_share"]
    top = TABLES["kpi_top_artists"]
    with resources["warehouse"].engine.begin() as conn:
        conn.execute(sa.update(genre).where(genre.c.dt == DAY).values(share=0.5))
        conn.execute(sa.update(top).where(top.c.dt == DAY, top.c.rank == 1).values(rank=3))
    share_check = kpi_check("kpi_genre_share", "shares_sum_to_one")
    top_check = kpi_check("kpi_top_artists", "dense_ranks_at_most_50")
    assert not evaluate(resources, share_check)[0]
    assert not evaluate(resources, top_check)[0]


def test_retention_week_zero_not_one_fails(built):
    resources, _ = built
    table = TABLES["kpi_retention"]
    with resources["warehouse"].engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.week_offset == 0).values(retention_rate=0.9))
    passed, metadata = evaluate(resources, kpi_check("kpi_retention", "retention_week_zero_is_one"))
    assert not passed and metadata["cohorts_not_one_at_week_0"]


def test_growth_accounting_that_does_not_add_up_fails_and_blocks(built):
    resources, _ = built
    table = TABLES["kpi_growth_accounting"]
    check = kpi_check("kpi_growth_accounting", "growth_accounting_identities")
    assert next(s for s in kpis.warehouse_kpis.check_specs if s.key == check).blocking
    assert evaluate(resources, check)[0]
    with resources["warehouse"].engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.period == "week").values(new=table.c.new + 1))
    passed, metadata = evaluate(resources, check)
    assert not passed
    monday = DAY - dt.timedelta(days=DAY.weekday())
    assert f"week {monday}" in metadata["failing_periods"]


def test_more_at_risk_than_active_or_a_wrong_share_fails(built):
    resources, _ = built
    table = TABLES["kpi_listeners_at_risk"]
    check = kpi_check("kpi_listeners_at_risk", "listeners_at_risk_within_active")
    assert evaluate(resources, check)[0]
    with resources["warehouse"].engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.dt == DAY).values(at_risk_share=0.5))
    passed, metadata = evaluate(resources, check)
    assert not passed and metadata["failing_days"]


def test_sessions_with_more_listeners_than_sessions_fail(built):
    resources, _ = built
    table = TABLES["kpi_sessions"]
    assert evaluate(resources, kpi_check("kpi_sessions", "sessions_consistent"))[0]
    with resources["warehouse"].engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.dt == DAY).values(listeners=10**6))
    passed, metadata = evaluate(resources, kpi_check("kpi_sessions", "sessions_consistent"))
    assert not passed and DAY.isoformat() in metadata["failing_days"]


KEY_ASSETS = {
    "lake/raw_listening_events",
    "lake/staging_streams",
    "warehouse/fact_streams",
    "warehouse/kpi_daily_streams",
    "warehouse/kpi_active_users",
}


def _freshness(resources, deadline_hour: int, instance) -> dict[str, AssetCheckEvaluation]:
    """Each key asset's freshness check with this deadline, evaluated now on the instance."""
    fresh = checks.freshness_checks(deadline_hour)
    others = [c for c in checks.ALL_CHECKS if c not in checks.FRESHNESS_CHECKS]
    result = materialize(
        [*DATA_ASSETS, *others, *fresh],
        resources=resources,
        selection=AssetSelection.checks(*fresh),
        instance=instance,
    )
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_freshness_wants_yesterday_by_the_deadline_and_an_old_backfill_does_not_count(
    tmp_path, project_instance
):
    resources = make_resources(tmp_path, accounts=20)
    instance = project_instance
    now = dt.datetime.now(dt.UTC)
    yesterday = now.date() - dt.timedelta(days=1)
    sensor_context = build_sensor_context(instance=instance, sensor_name=freshness_sensor.name)
    first_tick = freshness_sensor(sensor_context)
    assert isinstance(first_tick, RunRequest)
    assert {k.asset_key.to_user_string() for k in first_tick.asset_check_keys} == KEY_ASSETS

    assert run_days(resources, dt.date(2023, 3, 1), dt.date(2023, 3, 2), instance=instance)
    stale = _freshness(resources, 0, instance)
    assert set(stale) == KEY_ASSETS
    assert not any(e.passed for e in stale.values()), "an old backfill just now is not fresh"
    assert yesterday.isoformat() in stale["warehouse/fact_streams"].description
    assert isinstance(freshness_sensor(sensor_context), SkipReason), "failed, nothing new since"

    day_before = yesterday - dt.timedelta(days=1)
    assert run_days(resources, day_before, day_before, instance=instance)
    assert isinstance(freshness_sensor(sensor_context), RunRequest), "re-checked after a run"
    assert not any(e.passed for e in _freshness(resources, 0, instance).values())
    if now.hour < 23:
        before_deadline = _freshness(resources, now.hour + 1, instance)
        assert all(e.passed for e in before_deadline.values()), "yesterday is not due yet"

    assert run_days(resources, yesterday, yesterday, instance=instance)
    assert all(e.passed for e in _freshness(resources, 0, instance).values())


def test_a_day_that_fails_a_blocking_check_is_stopped_before_its_kpis(tmp_path):
    resources = make_resources(tmp_path, accounts=0)
    lake = resources["lake"]
    good = {
        "ts": f"{DAY}T10:00:00Z",
        "ms_played": 60_000,
        "account_id": "a",
        "conn_country": "DE",
        "master_metadata_track_name": "t",
        "master_metadata_album_artist_name": "x",
        "spotify_track_uri": "spotify:track:" + "a" * 22,
        "platform": "ios",
    }
    bad = [dict(good, ms_played=-i - 1) for i in range(5)]
    lake.write_bytes(raw_key(DAY, "export", "mostly-bad"), encode_records([good, *bad]))
    resources["warehouse"].init_schema()
    assert not run_range(
        DAY, DAY, defs=build_definitions(resources), instance=DagsterInstance.ephemeral()
    )
    assert read_table(resources, "kpi_daily_streams").empty
    assert read_table(resources, "fact_streams").empty


def test_unknown_raw_fields_warn_as_schema_drift(tmp_path):
    resources = make_resources(tmp_path, accounts=0)
    record = {
        "ts": f"{DAY}T10:00:00Z",
        "ms_played": 60_000,
        "account_id": "a",
        "conn_country": "DE",
        "master_metadata_track_name": "t",
        "master_metadata_album_artist_name": "x",
        "spotify_track_uri": "spotify:track:" + "a" * 22,
        "platform": "ios",
        "listening_party_id": "p-1",
    }
    resources["lake"].write_bytes(raw_key(DAY, "export", "new-shape"), encode_records([record]))
    resources["warehouse"].init_schema()
    job = build_definitions(resources).resolve_job_def("daily_pipeline")
    result = job.execute_in_process(partition_key=DAY.isoformat())
    drift = next(e for e in result.get_asset_check_evaluations() if e.check_name == "schema_drift")
    assert not drift.passed
    assert drift.metadata["unknown_fields"].value == ["listening_party_id"]
