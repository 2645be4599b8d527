"""Years of sparse personal history: exports imported, one run over the whole range.

Empty days must cost nothing but their bookkeeping, every day of the range must still show as
materialized in Dagster, and the day-keyed KPIs must hold for the days between plays.
"""

import datetime as dt
import gzip
import json
import subprocess
import sys

import pandas as pd
import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetPartitionStatus,
    DagsterEventType,
    DagsterInstance,
)

from spotify_platform.core.lake.ingest import import_history
from spotify_platform.core.lake.layout import (
    STAGING_ROOT,
    dashboard_key,
    quarantine_key,
    raw_key,
    raw_prefix,
    staging_key,
)
from spotify_platform.core.sources.histories import HistorySpec, export_files
from spotify_platform.definitions import build_definitions
from spotify_platform.defs import partitions
from spotify_platform.defs.event_storage import (
    LEGACY_SETTINGS,
    BatchingSqliteEventLogStorage,
    instance_settings,
)
from spotify_platform.defs.partitions import daily_partitions
from spotify_platform.defs.runs import run_range
from spotify_platform_tests.harness import make_resources

FIRST = dt.date(2024, 1, 1)
LAST = dt.date(2024, 4, 29)
SPECS = [
    HistorySpec("ana", FIRST, LAST, plays=500, shape="extended", seed=5, gap_days=30),
    HistorySpec("bo", FIRST + dt.timedelta(days=20), LAST, plays=300, shape="legacy", seed=6),
]


def _import(tmp_path, lake) -> pd.DataFrame:
    """Land both exports; the plays as the test reads them from the export files itself."""
    rows = []
    for spec in SPECS:
        folder = tmp_path / "exports" / spec.account
        folder.mkdir(parents=True)
        for name, body in export_files(spec):
            (folder / name).write_bytes(body)
            for record in json.loads(body):
                extended = "ts" in record
                rows.append(
                    {
                        "account": spec.account,
                        "ended": record["ts"] if extended else record["endTime"],
                        "track": record["master_metadata_track_name"]
                        if extended
                        else record["trackName"],
                        "ms": record["ms_played"] if extended else record["msPlayed"],
                        "artist": record["master_metadata_album_artist_name"]
                        if extended
                        else record["artistName"],
                    }
                )
        report = import_history(lake, [str(folder)], account=spec.account, country="SE")
        assert not report.errors
    plays = pd.DataFrame(rows).drop_duplicates()
    plays["dt"] = pd.to_datetime(plays["ended"].str[:10]).dt.date
    return plays


def _batching_instance(home) -> DagsterInstance:
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_settings(str(home)))
    return DagsterInstance.from_config(str(home))


def _expected_active(plays: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    streams = plays[plays["ms"] >= 30_000]
    rows = []
    for day in days:
        def active(width: int, day=day) -> int:
            start = day - dt.timedelta(days=width)
            window = streams[(streams["dt"] > start) & (streams["dt"] <= day)]
            return window["account"].nunique()

        rows.append({"dt": day, "dau": active(1), "wau": active(7), "mau": active(30)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_a_sparse_history_runs_once_with_every_day_materialized_and_right_kpis(
    tmp_path, backend, request
):
    url = request.getfixturevalue("mysql_url") if backend == "mysql" else None
    resources = make_resources(tmp_path, warehouse_url=url, accounts=0)
    lake = resources["lake"]
    plays = _import(tmp_path, lake)
    days = [FIRST + dt.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    played = set(plays["dt"])
    assert 10 < len(played) < len(days) - 30, "the history must be sparse for this test"

    instance = _batching_instance(tmp_path / "home")
    assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
    resources["warehouse"].init_schema()
    assert run_range(FIRST, LAST, defs=build_definitions(resources), instance=instance)

    staged = {k for k in lake.list_keys(STAGING_ROOT) if k.endswith("streams.parquet")}
    assert staged == {staging_key(day) for day in played}

    wanted = {day.isoformat() for day in days}
    for key in instance.get_asset_keys():
        if key.path[0] in ("lake", "warehouse"):
            assert instance.get_materialized_partitions(key) == wanted, key

    warehouse = resources["warehouse"]
    daily = warehouse.read_table("kpi_daily_streams").sort_values("dt")
    assert len(daily) == len(days)
    expected_plays = plays.groupby("dt").size()
    got = dict(zip(pd.to_datetime(daily["dt"]).dt.date, daily["plays"].astype(int), strict=True))
    assert got == {day: int(expected_plays.get(day, 0)) for day in days}

    facts = instance.fetch_materializations(AssetKey(["warehouse", "fact_streams"]), limit=1000)
    row_counts = {
        dt.date.fromisoformat(r.partition_key): r.asset_materialization.metadata[
            "dagster/partition_row_count"
        ].value
        for r in facts.records
    }
    assert row_counts == {day: int(expected_plays.get(day, 0)) for day in days}
    staged = instance.fetch_materializations(AssetKey(["lake", "staging_streams"]), limit=1000)
    per_day = {
        dt.date.fromisoformat(r.partition_key): r.asset_materialization.metadata
        for r in staged.records
    }
    assert {day: m["dagster/partition_row_count"].value for day, m in per_day.items()} == {
        day: int(expected_plays.get(day, 0)) for day in days
    }
    assert {day for day, m in per_day.items() if "dagster/uri" in m} == played
    assert per_day[min(played)]["dagster/uri"].value == lake.uri(staging_key(min(played)))
    landed = instance.fetch_materializations(AssetKey(["lake", "raw_listening_events"]), 1000)
    raw = {dt.date.fromisoformat(r.partition_key): r.asset_materialization.metadata
           for r in landed.records}
    assert {day for day, m in raw.items() if "dagster/uri" in m} == played
    assert raw[max(played)]["dagster/uri"].value == lake.uri(raw_prefix(max(played)))
    assert all(m["files"].value == len(lake.list_keys(raw_prefix(d))) for d, m in raw.items())
    rejected = instance.fetch_materializations(AssetKey(["lake", "quarantined_streams"]), 1000)
    quarantined = {dt.date.fromisoformat(r.partition_key): r.asset_materialization.metadata
                   for r in rejected.records}
    assert {day for day, m in quarantined.items() if "dagster/uri" in m} == played
    assert {day: m["dagster/partition_row_count"].value for day, m in quarantined.items()} == {
        day: len(lake.read_parquet(quarantine_key(day))) if day in played else 0 for day in days
    }
    run_id = instance.get_runs(limit=1)[0].run_id
    records = instance.get_records_for_run(run_id, limit=100_000).records
    log = [r.event_log_entry.user_message for r in records]
    staging = [m for m in log if "days with raw files" in m]
    assert staging and f"{len(played):,} of {len(played):,} days with raw files" in staging[-1]
    loads = [m for m in log if m.startswith("fact_streams: ") and "plays/s" in m]
    assert loads and f"{len(days):,} of {len(days):,} days, {len(plays):,} plays" in loads[-1]
    for name in ("kpi_daily_streams", "kpi_active_users"):  # the run's figures: its last day's
        records = instance.fetch_materializations(AssetKey(["warehouse", name]), limit=1000)
        summaries = {
            r.partition_key: r.asset_materialization.metadata
            for r in records.records
            if "preview" in r.asset_materialization.metadata
        }
        assert set(summaries) == {LAST.isoformat()}, name
        assert summaries[LAST.isoformat()]["run_range"].value == f"{FIRST}..{LAST}"
    # Each day carries its own figures, which an independent count of the plays gives.
    expected_active = _expected_active(plays, days).set_index("dt")
    for name, column, want in (
        ("kpi_daily_streams", "plays", lambda day: int(expected_plays.get(day, 0))),
        ("kpi_active_users", "dau", lambda day: int(expected_active.loc[day, "dau"])),
        ("kpi_active_users", "mau", lambda day: int(expected_active.loc[day, "mau"])),
    ):
        records = instance.fetch_materializations(AssetKey(["warehouse", name]), limit=1000)
        own = {
            dt.date.fromisoformat(r.partition_key): r.asset_materialization.metadata[column].value
            for r in records.records
        }
        assert own == {day: want(day) for day in days}, (name, column)

    page = lake.read_bytes(dashboard_key(LAST)).decode()
    assert 'id="history-months"' in page and 'id="history-artists"' in page
    per_year = plays.groupby(pd.to_datetime(plays["dt"]).dt.year)
    for year, group in per_year:
        row = f"<tr><td>{year}</td><td>{group['dt'].nunique():,}</td><td>{len(group):,}</td>"
        assert row in page, row
    streams = plays[plays["ms"] >= 30_000]
    by_artist = streams.groupby(streams["artist"].str.casefold()).size()
    top = by_artist[by_artist == by_artist.max()].index
    assert any(f"<bdi>{name}</bdi>".casefold() in page.casefold() for name in top)

    active = warehouse.read_table("kpi_active_users").sort_values("dt").reset_index(drop=True)
    expected = _expected_active(plays, days)
    assert active["dau"].astype(int).tolist() == expected["dau"].tolist()
    assert active["wau"].astype(int).tolist() == expected["wau"].tolist()
    assert active["mau"].astype(int).tolist() == expected["mau"].tolist()


def _asset_event_counts(instance: DagsterInstance, keys: list[AssetKey]) -> dict:
    """Per asset, the partitions of its materialization and planned events, in order."""
    counts = {}
    for key in keys:
        done = instance.fetch_materializations(key, limit=10_000).records
        planned = instance.get_records_for_run(
            instance.get_runs(limit=1)[0].run_id,
            of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
            limit=10_000,
        ).records
        counts[key.to_user_string()] = (
            sorted(r.partition_key for r in done),
            sorted(
                partition
                for r in planned
                if r.asset_key == key
                for partition in _planned_partitions(r.event_log_entry)
            ),
        )
    return counts


def _planned_partitions(entry) -> list[str]:
    """The days a planned event names: its own, or those of the range it plans at once."""
    data = entry.dagster_event.event_specific_data
    if data.partitions_subset is not None:
        return list(data.partitions_subset.get_partition_keys())
    return [data.partition]


def test_batched_event_storage_records_what_dagsters_own_sqlite_storage_records(tmp_path):
    first, last = dt.date(2026, 3, 1), dt.date(2026, 3, 4)
    recorded = []
    for name, make in (
        ("stock", lambda home: home.mkdir() or DagsterInstance.local_temp(str(home))),
        ("batched", _batching_instance),
    ):
        resources = make_resources(tmp_path / name, accounts=20)
        resources["warehouse"].init_schema()
        instance = make(tmp_path / name / "home")
        assert run_range(first, last, defs=build_definitions(resources), instance=instance)
        keys = sorted(instance.get_asset_keys(), key=lambda k: k.to_user_string())
        status = {
            k.to_user_string(): (
                sorted(instance.get_materialized_partitions(k)),
                instance.get_latest_materialization_event(k).dagster_event.partition,
            )
            for k in keys
        }
        check = AssetCheckKey(AssetKey(["warehouse", "fact_streams"]), "fact_streams_reconcile")
        history = instance.event_log_storage.get_asset_check_execution_history(check, limit=100)
        status["check executions"] = sorted((str(r.partition), r.status.value) for r in history)
        recorded.append((status, _asset_event_counts(instance, keys)))
    (stock_status, stock_events), (batched_status, batched_events) = recorded
    assert batched_status == stock_status
    assert batched_events == stock_events
    assert len(stock_status) >= 20
    partitions = {partition for partition, _ in stock_status.pop("check executions")}
    assert {f"2026-03-0{day}" for day in range(1, 5)} <= partitions
    assert all(len(p) == 4 and last == "2026-03-04" for p, last in stock_status.values())
    assert all(len(done) == len(planned) == 4 for done, planned in stock_events.values())


def test_a_failed_range_shows_its_days_failed_as_dagsters_own_storage_shows_them(tmp_path):
    """Planned events name a range run's days at once, and the days of a failed run must
    still read as failed (and a later run's days as materialized) in the UI."""
    first, last = dt.date(2026, 3, 1), dt.date(2026, 3, 3)
    days = [d.isoformat() for d in (first, first + dt.timedelta(days=1), last)]
    statuses = []
    for name, make in (
        ("stock", lambda home: home.mkdir() or DagsterInstance.local_temp(str(home))),
        ("batched", _batching_instance),
    ):
        resources = make_resources(tmp_path / name, accounts=10)
        resources["warehouse"].init_schema()
        cut = gzip.compress(b"{}\n" * 1000)[:-12]  # a file cut short: unreadable as a whole
        resources["lake"].write_bytes(raw_key(first + dt.timedelta(days=1), "export", "cut"), cut)
        instance = make(tmp_path / name / "home")
        defs = build_definitions(resources)
        assert not run_range(first, last, defs=defs, instance=instance)
        after_failure = _statuses(instance, days)
        assert run_range(first, first, defs=defs, instance=instance)
        statuses.append((after_failure, _statuses(instance, days)))
        instance.dispose()
    (stock_failed, stock_then), (batched_failed, batched_then) = statuses
    assert batched_failed == stock_failed
    assert batched_then == stock_then
    staging = "lake/staging_streams"
    assert set(stock_failed[staging].values()) == {AssetPartitionStatus.FAILED}
    assert stock_then[staging] == {
        days[0]: AssetPartitionStatus.MATERIALIZED,
        days[1]: AssetPartitionStatus.FAILED,
        days[2]: AssetPartitionStatus.FAILED,
    }


def _statuses(instance: DagsterInstance, days: list[str]) -> dict:
    return {
        "/".join(key.path): dict(instance.get_status_by_partition(key, days, daily_partitions))
        for key in instance.get_asset_keys()
        if key.path[0] in ("lake", "warehouse")
    }


def test_make_instance_writes_settings_dagster_loads_and_upgrades_the_old_ones(tmp_path):
    fresh, old, custom = tmp_path / "fresh", tmp_path / "old", tmp_path / "custom"
    batched = tmp_path / "batched"
    old.mkdir()
    (old / "dagster.yaml").write_text(LEGACY_SETTINGS)
    custom.mkdir()
    (custom / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    batched.mkdir()
    # What the project wrote before run logs took in the package's own loggers.
    (batched / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nevent_log_storage:\n"
        "  module: spotify_platform.defs.event_storage\n"
        "  class: BatchingSqliteEventLogStorage\n  config:\n"
        f"    base_dir: {batched / 'history' / 'runs'}\n"
    )
    for home in (fresh, old, custom, batched):
        subprocess.run(
            [sys.executable, "-m", "spotify_platform.defs.event_storage", str(home)], check=True
        )
    for home in (fresh, old, batched):
        instance = DagsterInstance.from_config(str(home))
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
        assert instance.managed_python_loggers == ["spotify_platform"]
        instance.dispose()
    assert (custom / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"


def test_a_range_longer_than_the_day_figures_keeps_them_on_its_last_day(tmp_path, monkeypatch):
    """Past DAY_FIGURES_UP_TO days, per-day row counts would cost a range the square of its
    days (Dagster recomputes the range at each addition): the last day alone carries its own
    count, the range named and the run's total."""
    monkeypatch.setattr(partitions, "DAY_FIGURES_UP_TO", 3)
    resources = make_resources(tmp_path, accounts=12)
    first, last = dt.date(2026, 2, 2), dt.date(2026, 2, 7)
    instance = DagsterInstance.ephemeral()
    assert run_range(first, last, defs=build_definitions(resources), instance=instance)
    facts = resources["warehouse"].read_table("fact_streams")
    per_day = facts.groupby(pd.to_datetime(facts["dt"]).dt.date.astype(str)).size()
    assets = ((["warehouse", "fact_streams"], len(facts)), (["lake", "staging_streams"], None))
    for key, total in assets:
        records = instance.fetch_materializations(AssetKey(key), limit=100).records
        metadata = {r.partition_key: r.asset_materialization.metadata for r in records}
        assert len(metadata) == 6
        counted = {day for day, m in metadata.items() if "dagster/partition_row_count" in m}
        assert counted == {last.isoformat()}, key
        closing = metadata[last.isoformat()]
        assert closing["dagster/partition_row_count"].value == per_day[last.isoformat()]
        assert closing["run_range"].value == f"{first}..{last}"
        if total is not None:
            assert closing["rows_in_run"].value == total
