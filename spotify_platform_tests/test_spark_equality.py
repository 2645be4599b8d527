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
from spotify_platform.core.lake.aggregated import aggregate_day
from spotify_platform.core.lake.ingest import import_history
from spotify_platform.core.lake.layout import (
    RAW_ROOT,
    aggregate_part_key,
    quarantine_key,
    raw_key,
    staging_key,
    staging_stats_key,
)
from spotify_platform.core.lake.store import Lake, arrow_frame, parquet_bytes
from spotify_platform.core.sources.raw import encode_jsonl_gz, encode_records
from spotify_platform.core.sources.simulator import ListeningSimulator
from spotify_platform.core.staging.lake_days import stage_lake_days
from spotify_platform_tests import test_buckets
from spotify_platform_tests.spark_support import local_session
from spotify_platform_tests.support.exports import (
    EXTENDED_RECORDS,
    LEGACY_MUSIC_RECORDS,
    LEGACY_PODCAST_RECORDS,
    older,
    write_json,
)
from spotify_platform_tests.support.records import play

KEY = b"equality-key"
MIXED = test_buckets.DAY  # 2026-03-02: test_buckets' day of duplicates and bad lines
US_DST, EU_DST = dt.date(2026, 3, 8), dt.date(2026, 3, 29)
EXPORTS = [dt.date(2022, 12, 31), dt.date(2023, 1, 1), dt.date(2023, 1, 2)]
BAD_ONLY, EMPTY = dt.date(2026, 3, 10), dt.date(2026, 3, 11)
DAYS = sorted([MIXED, US_DST, EU_DST, *EXPORTS, BAD_ONLY, EMPTY])
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
    lake.write_bytes(raw_key(BAD_ONLY, "export", "broken"), gzip.compress(b"{oops\n\n[1]\n"))
    lake.write_bytes(staging_key(EMPTY), b"left by an earlier run")
    import_history(lake, [exports], account="alice", country="DE")
    return lake


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    """The same lake staged by each engine, with the stats each gave."""
    folder = tmp_path_factory.mktemp("equality")
    exports = folder / "exports"
    shapes = {
        "Streaming_History_Audio_2023_0.json": EXTENDED_RECORDS,
        "endsong_0.json": [older(r) for r in EXTENDED_RECORDS],
        "StreamingHistory_music_0.json": LEGACY_MUSIC_RECORDS,
        "StreamingHistory_podcast_0.json": LEGACY_PODCAST_RECORDS,
    }
    for name, records in shapes.items():
        write_json(exports / name, records)
    pandas_lake, spark_lake = _lake(folder / "pandas", exports), _lake(folder / "spark", exports)
    from spotify_platform.spark.engine import stage_days_on_spark

    spark = local_session()
    try:
        lines: list[str] = []
        spark_stats = stage_days_on_spark(
            spark, {"url": spark_lake.url}, KEY, DAYS, log=lines.append
        )
    finally:
        spark.stop()
    pandas_stats = stage_lake_days(pandas_lake, KEY, DAYS)
    return pandas_lake, spark_lake, pandas_stats, spark_stats, lines


def test_the_lake_has_what_the_comparison_is_about(lakes):
    pandas_lake, _, stats, _, _ = lakes
    assert set(stats) == set(DAYS) - {EMPTY}
    assert stats[MIXED]["duplicates_removed"] == 7 and stats[MIXED]["quarantined_rows"] == 9
    for day in (US_DST, EU_DST):
        assert stats[day]["duplicates_removed"] > 5 and len(stats[day]["files"]) == 3
    assert stats[BAD_ONLY]["staged_rows"] == 0 and stats[BAD_ONLY]["raw_records"] == 2
    assert sum(len(stats[d]["files"]) for d in EXPORTS) >= 6
    names = pq.read_table(pandas_lake.root / staging_key(MIXED)).column("track_name")
    assert {"Hoppípolla", "群青日和", "Ünïcødé 🎧"} <= set(names.to_pylist())


def test_the_stats_are_the_pandas_engines(lakes):
    pandas_lake, spark_lake, pandas_stats, spark_stats, lines = lakes
    assert spark_stats == pandas_stats
    for day in pandas_stats:
        written = json.loads(spark_lake.read_bytes(staging_stats_key(day)))
        assert written == json.loads(pandas_lake.read_bytes(staging_stats_key(day)))
    files = sum(len(pandas_lake.keys_by_day(RAW_ROOT, [d]).get(d, {})) for d in DAYS)
    assert lines[0] == f"staged {files} raw files of {len(pandas_stats)} days"


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_each_days_staged_rows_and_quarantine_are_the_pandas_engines(lakes, day):
    pandas_lake, spark_lake, *_ = lakes
    for key in (staging_key(day), quarantine_key(day)):
        assert spark_lake.exists(key) == pandas_lake.exists(key)
        if not pandas_lake.exists(key):
            continue
        want = pq.read_table(pandas_lake.root / key).to_pandas()
        got = pq.read_table(spark_lake.root / key).to_pandas()
        pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize("table", list(TABLES))
def test_the_aggregates_are_the_pandas_builders(lakes, table):
    from spotify_platform.spark.tasks import AGGREGATES

    pandas_lake, spark_lake, stats, *_ = lakes
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
    _, spark_lake, *_ = lakes
    parts = [
        pq.read_table(spark_lake.root / aggregate_part_key("agg_account_daily", US_DST, n))
        for n in range(4)
        if spark_lake.exists(aggregate_part_key("agg_account_daily", US_DST, n))
    ]
    assert len(parts) > 1
    accounts = [set(p.column("account_id").to_pylist()) for p in parts]
    assert sum(len(a) for a in accounts) == len(set().union(*accounts))
