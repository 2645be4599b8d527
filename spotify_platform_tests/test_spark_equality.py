"""The Spark engine stages a lake as the pandas engine does: the same staged rows in the same
order, the same quarantine rows and reasons, the same stats, and the same four aggregates.

One lake of awkward days is staged by both engines: duplicates within and across files,
lines that are not JSON, records that cannot be typed or fail the contract, every export
shape, names outside ASCII, plays at midnight and across the spring-forward hours of the US
and the EU, a day of bad lines only, and a day without raw files whose old files must go.
"""

import datetime as dt
import gzip
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from spotify_platform.core.kpis.aggregates import HOURLY_KEYS
from spotify_platform.core.lake.aggregated import aggregate_batches, aggregate_day
from spotify_platform.core.lake.ingest import import_history
from spotify_platform.core.lake.layout import (
    RAW_ROOT,
    aggregate_done_key,
    aggregate_part_key,
    quarantine_key,
    raw_key,
    staging_key,
    staging_stats_key,
)
from spotify_platform.core.lake.store import Lake, arrow_frame, parquet_bytes
from spotify_platform.core.sources.raw import decode, encode_jsonl_gz, encode_records
from spotify_platform.core.sources.simulator import ListeningSimulator
from spotify_platform.core.staging.lake_days import stage_lake_days
from spotify_platform_tests import test_buckets
from spotify_platform_tests.spark_support import local_session
from spotify_platform_tests.support.exports import every_export_shape, write_json
from spotify_platform_tests.support.records import play

KEY = b"equality-key"
MIXED = test_buckets.DAY  # 2026-03-02: test_buckets' day of duplicates and bad lines
US_DST, EU_DST = dt.date(2026, 3, 8), dt.date(2026, 3, 29)
EXPORTS = [dt.date(2022, 12, 31), dt.date(2023, 1, 1), dt.date(2023, 1, 2)]
BAD_ONLY, EMPTY = dt.date(2026, 3, 10), dt.date(2026, 3, 11)
DAYS = sorted([MIXED, US_DST, EU_DST, *EXPORTS, BAD_ONLY, EMPTY])
SPARK_WAYS = ("spark", "shared")
BATCH_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"
TABLES = {
    "agg_account_daily": ["dt", "account_id"],
    "agg_artist_daily": ["dt", "artist_id"],
    "agg_track_daily": ["dt", "track_id"],
    "agg_account_hourly": HOURLY_KEYS,
}


def _edges(day: dt.date) -> list[dict]:
    """Plays at the day's edges and across the night's clock change, in several countries."""
    stamps = [f"{day}T00:00:00Z", f"{day}T00:00:29.999Z", f"{day}T23:59:59.999Z"]
    stamps += [f"{day}T0{h}:{m}:00Z" for h in (0, 1, 2, 6, 7, 8) for m in ("30", "59")]
    return [
        play(ts, account=f"edge-{country}", conn_country=country, ms=31_000 + i,
             master_metadata_track_name=f"Édge {i}", spotify_track_uri=None)
        for i, ts in enumerate(stamps)
        for country in ("US", "DE", "GB", "AU")
    ]


def _replayed(frame: pd.DataFrame) -> list[dict]:
    """Plays, then ten of them again from another device: the same events (same account, end,
    content and duration), different rows, each repeat nearer the start of a later block of
    20 kB than its first (so only the block, then the place, says which came first)."""
    records = [json.loads(line) for line in decode(encode_jsonl_gz(frame.head(60))).splitlines()]
    again = [{**record, "platform": "web_player"} for record in records[40:50]]
    return records + again


def _lake(root: Path, exports: Path) -> Lake:
    lake = Lake(url=f"file://{root}")
    for key, data in test_buckets._day_files().items():  # noqa: SLF001 - its day, reused
        lake.write_bytes(key, data)
    simulator = ListeningSimulator(accounts=40, seed=3, epoch=dt.date(2026, 1, 1))
    for day in (US_DST, EU_DST):
        frame = simulator.day(day)
        lake.write_bytes(raw_key(day, "simulator", "events"), encode_jsonl_gz(frame))
        repeated = encode_jsonl_gz(pd.concat([frame.iloc[::3], frame.iloc[:5]]))
        lake.write_bytes(raw_key(day, "simulator", "again"), repeated)
        lake.write_bytes(raw_key(day, "export", "edges"), encode_records(_edges(day)))
        lake.write_bytes(raw_key(day, "export", "replayed"), encode_records(_replayed(frame)))
    lake.write_bytes(raw_key(BAD_ONLY, "export", "broken"), gzip.compress(b"{oops\n\n[1]\n"))
    lake.write_bytes(staging_key(EMPTY), b"left by an earlier run")
    import_history(lake, [exports], account="alice", country="DE")
    return lake


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    """The same lake staged by each engine, with the stats each gave: the Spark engine with
    its settings, and again with every raw file cut into blocks of a few lines shared by
    three tasks (what a big file gets) and rows passed in batches of a few, so blocks, shares,
    files and batches all meet duplicates."""
    from spotify_platform.spark import engine

    folder = tmp_path_factory.mktemp("equality")
    exports = folder / "exports"
    shapes = every_export_shape()
    for name, records in shapes.items():
        write_json(exports / name, records)
    pandas_lake = _lake(folder / "pandas", exports)
    spark_lakes = {name: _lake(folder / name, exports) for name in SPARK_WAYS}
    spark = local_session()
    staged = {}
    try:
        for name, lake in spark_lakes.items():
            with pytest.MonkeyPatch.context() as patch:
                # Batches of 7 rows: a day is written in many parts, and repeats of an id
                # fall across parts.
                spark.conf.set(BATCH_ROWS, "7" if name == "shared" else "10000")
                if name == "shared":
                    patch.setattr(engine, "BLOCK_BYTES", 20_000)
                    patch.setattr(engine, "SHARE_BYTES", 1)
                    patch.setattr(engine, "MAX_SHARES", 3)
                lines: list[str] = []
                stats = engine.stage_days_on_spark(
                    spark, {"url": lake.url}, KEY, DAYS, log=lines.append
                )
            staged[name] = (lake, stats, lines)
    finally:
        spark.stop()
    pandas_stats = stage_lake_days(pandas_lake, KEY, DAYS)
    return {"pandas": (pandas_lake, pandas_stats, []), **staged}


def test_the_lake_has_what_the_comparison_is_about(lakes):
    pandas_lake, stats, _ = lakes["pandas"]
    assert set(stats) == set(DAYS) - {EMPTY}
    assert stats[MIXED]["duplicates_removed"] == 7 and stats[MIXED]["quarantined_rows"] == 9
    for day in (US_DST, EU_DST):
        assert stats[day]["duplicates_removed"] > 15 and len(stats[day]["files"]) == 4
    assert stats[BAD_ONLY]["staged_rows"] == 0 and stats[BAD_ONLY]["raw_records"] == 2
    assert sum(len(stats[d]["files"]) for d in EXPORTS) >= 6
    names = pq.read_table(pandas_lake.root / staging_key(MIXED)).column("track_name")
    assert {"Hoppípolla", "群青日和", "Ünïcødé 🎧"} <= set(names.to_pylist())


@pytest.mark.parametrize("way", SPARK_WAYS)
def test_the_stats_are_the_pandas_engines(lakes, way):
    pandas_lake, pandas_stats, _ = lakes["pandas"]
    spark_lake, spark_stats, lines = lakes[way]
    assert spark_stats == pandas_stats
    for day in pandas_stats:
        written = json.loads(spark_lake.read_bytes(staging_stats_key(day)))
        assert written == json.loads(pandas_lake.read_bytes(staging_stats_key(day)))
    files = sum(len(pandas_lake.keys_by_day(RAW_ROOT, [d]).get(d, {})) for d in DAYS)
    tasks = files if way == "spark" else 3 * files
    assert lines[0] == f"staged {files} raw files of {len(pandas_stats)} days in {tasks} tasks"


@pytest.mark.parametrize("way", SPARK_WAYS)
@pytest.mark.parametrize("day", DAYS, ids=str)
def test_each_days_staged_rows_and_quarantine_are_the_pandas_engines(lakes, day, way):
    pandas_lake, spark_lake = lakes["pandas"][0], lakes[way][0]
    for key in (staging_key(day), quarantine_key(day)):
        assert spark_lake.exists(key) == pandas_lake.exists(key)
        if not pandas_lake.exists(key):
            continue
        want = pq.read_table(pandas_lake.root / key).to_pandas()
        got = pq.read_table(spark_lake.root / key).to_pandas()
        pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize("way", SPARK_WAYS)
@pytest.mark.parametrize("table", list(TABLES))
def test_the_aggregates_are_the_pandas_builders(lakes, table, way):
    from spotify_platform.spark.tasks import AGGREGATES

    pandas_lake, stats, _ = lakes["pandas"]
    spark_lake = lakes[way][0]
    columns, build, _ = AGGREGATES[table]
    compared = 0
    for day in DAYS:
        got = aggregate_day(spark_lake, table, day)
        if not stats.get(day, {}).get("staged_rows"):
            assert got is None
            continue
        staged = pq.read_table(pandas_lake.root / staging_key(day), columns=columns)
        # As the warehouse asset reads it: the builder's frame through a Parquet file.
        built = build(arrow_frame(staged, arrow_strings=True))
        want = pq.read_table(io.BytesIO(parquet_bytes(built)))
        assert got.schema.equals(want.schema)
        pd.testing.assert_frame_equal(
            arrow_frame(got, arrow_strings=True),
            arrow_frame(want, arrow_strings=True),
            check_exact=True,
        )
        compared += len(want)
    assert compared > 50


def test_a_day_aggregated_in_parts_has_parts_of_disjoint_keys(lakes):
    spark_lake = lakes["spark"][0]
    parts = [
        pq.read_table(spark_lake.root / aggregate_part_key("agg_account_daily", US_DST, n))
        for n in range(8)
        if spark_lake.exists(aggregate_part_key("agg_account_daily", US_DST, n))
    ]
    assert len(parts) > 1
    accounts = [set(p.column("account_id").to_pylist()) for p in parts]
    assert sum(len(a) for a in accounts) == len(set().union(*accounts))


def test_aggregates_a_spark_run_did_not_finish_are_refused(lakes):
    spark_lake = lakes["shared"][0]
    spark_lake.delete(aggregate_done_key("agg_track_daily", US_DST))
    with pytest.raises(LookupError, match=f"agg_track_daily: .* staged days {US_DST}"):
        list(aggregate_batches(spark_lake, "agg_track_daily", DAYS, 1000))
