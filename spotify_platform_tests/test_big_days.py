"""A big day read in chunks: its aggregates, bucket by bucket, equal the whole day's; its
facts go to the warehouse part by part in one transaction."""

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from spotify_platform.core.contracts.tables import TABLE_DEFS
from spotify_platform.core.kpis import aggregates, buckets
from spotify_platform.core.lake.chunks import day_totals, key_counts, staged_batches
from spotify_platform.core.lake.layout import staging_key
from spotify_platform.core.lake.store import Lake
from spotify_platform.core.warehouse.store import Warehouse
from spotify_platform_tests.harness import synthetic_facts
from spotify_platform_tests.support.aggregates import AGGREGATE_BUILDS

DAY = dt.date(2026, 5, 4)
ROWS = 12_000
CHUNK_ROWS = 700


def awkward_day(rows: int = ROWS) -> pd.DataFrame:
    """Staged plays in event id order with what makes aggregating in pieces hard: accounts
    whose plays (and sessions) span every chunk, episodes without track or artist, spellings
    of one artist that differ only in case, plays ending at the same millisecond, accounts in
    several countries with tied counts, missing countries and platforms."""
    plays = synthetic_facts(rows, DAY, seed=3)
    plays["account_id"] = plays["account_id"].to_numpy()[np.arange(rows) % 97]
    episode = np.arange(rows) % 13 == 0
    for column in ("track_id", "track_name", "artist_id", "artist_name"):
        plays[column] = plays[column].where(~episode, None)
    plays.loc[episode, "content_type"] = "episode"
    shouted = np.arange(rows) % 5 == 1
    plays.loc[shouted, "artist_name"] = plays.loc[shouted, "artist_name"].str.upper()
    plays.loc[np.arange(rows) % 7 == 2, "ended_at"] = pd.Timestamp(DAY, tz="UTC") + pd.Timedelta(
        hours=20
    )
    plays["country"] = np.array(["DE", "US", None], dtype=object)[np.arange(rows) % 3]
    plays.loc[np.arange(rows) % 17 == 0, "platform"] = None
    return plays.sort_values("event_id", ignore_index=True)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    """The awkward day staged as a file of many small row groups."""
    lake = Lake(url=f"file://{tmp_path_factory.mktemp('big')}/lake")
    path = lake.root / staging_key(DAY)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(awkward_day(), preserve_index=False), path, 1000)
    return lake


def _whole_day(lake: Lake) -> pd.DataFrame:
    (batch,) = staged_batches(lake, [DAY], None, 10**9, chunk_rows=10**9)
    assert not batch.chunked
    (frame,) = batch.frames()
    return frame


def _in_key_order(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    keys = list(TABLE_DEFS[table].primary_key)
    return frame.sort_values(keys, ignore_index=True)


@pytest.mark.parametrize("table", sorted(AGGREGATE_BUILDS))
def test_a_big_day_aggregated_bucket_by_bucket_equals_the_whole_day(lake, table):
    build = AGGREGATE_BUILDS[table]
    (batch,) = staged_batches(lake, [DAY], None, 10**9, chunk_rows=CHUNK_ROWS)
    assert batch.chunked and batch.rows == ROWS
    assert max(len(t) for t in batch.tables()) <= CHUNK_ROWS
    with buckets.spilled(batch.tables(), buckets.SPLIT_BY[table], 9) as paths:
        parts = list(buckets.bucketed(build, paths))
        assert len(paths) == 9
    assert len(parts) == 9
    expected = _in_key_order(build(_whole_day(lake)), table)
    got = _in_key_order(pd.concat(parts, ignore_index=True), table)
    assert len(expected) > 9
    pd.testing.assert_frame_equal(got, expected)


def test_buckets_split_by_another_column_than_the_key_would_not_be_exact(lake):
    """The split key matters: artists' listeners counted per account bucket come out wrong."""
    (batch,) = staged_batches(lake, [DAY], None, 10**9, chunk_rows=CHUNK_ROWS)
    with buckets.spilled(batch.tables(), "account_id", 9) as paths:
        parts = pd.concat(buckets.bucketed(aggregates.artist_daily, paths), ignore_index=True)
    expected = aggregates.artist_daily(_whole_day(lake))
    assert len(parts) > len(expected)


def test_buckets_are_ranges_of_the_key_the_same_in_every_chunk_and_about_even():
    rng = np.random.default_rng(5)
    ids = pa.array([f"{i:032x}" for i in rng.permutation(20_000)] + [None, "", "~1", "Z"])
    cuts = buckets.splitters(ids.slice(0, 3000), 16)
    whole = buckets.bucket_codes(ids, cuts)
    pieces = np.concatenate(
        [buckets.bucket_codes(ids.slice(i, 3000), cuts) for i in range(0, len(ids), 3000)]
    )
    assert (whole == pieces).all()
    assert whole[-4:].tolist() == [15, 0, 15, 15]
    order = np.argsort(np.array(ids.to_pylist()[:20_000]))
    assert (np.diff(whole[:20_000][order]) >= 0).all(), "key order is bucket order"
    counts = np.bincount(whole[:20_000], minlength=16)
    assert counts.min() > 0.7 * 20_000 / 16 and counts.max() < 1.3 * 20_000 / 16


def test_a_big_day_s_aggregate_rows_come_in_primary_key_order(lake):
    (batch,) = staged_batches(lake, [DAY], None, 10**9, chunk_rows=CHUNK_ROWS)
    with buckets.spilled(batch.tables(), "artist_id", 9) as paths:
        rows = pd.concat(buckets.bucketed(aggregates.artist_daily, paths), ignore_index=True)
    pd.testing.assert_frame_equal(rows, _in_key_order(rows, "agg_artist_daily"))


def test_day_totals_sum_a_big_day_chunk_by_chunk(lake):
    plays = awkward_day()
    assert day_totals(lake, [DAY, DAY + dt.timedelta(days=1)], "ms_played", CHUNK_ROWS) == {
        DAY: (ROWS, int(plays["ms_played"].sum()))
    }


def test_key_counts_of_a_big_day_read_chunk_by_chunk_are_the_whole_day_s(lake):
    plays = awkward_day()
    counted = key_counts(
        lake, [DAY, DAY + dt.timedelta(days=1)], ["artist_id", "account_id"], CHUNK_ROWS
    )
    for column in ("artist_id", "account_id"):
        expected = plays[column].dropna().value_counts().to_dict()
        table = counted[column]
        got = dict(zip(table["value"].to_pylist(), table["rows"].to_pylist(), strict=True))
        assert got == expected
    assert plays["artist_id"].isna().any()


def test_a_big_day_goes_in_part_by_part_in_one_transaction(lake, mysql_url):
    warehouse = Warehouse(mysql_url)
    warehouse.init_schema()
    (batch,) = staged_batches(lake, [DAY], None, 10**9, chunk_rows=CHUNK_ROWS)
    earlier = awkward_day(50)
    warehouse.replace_days("fact_streams", [DAY], earlier)

    def failing_midway():
        for i, frame in enumerate(batch.frames()):
            if i == 5:
                raise RuntimeError("the lake went away")
            yield frame

    with pytest.raises(RuntimeError, match="lake went away"):
        warehouse.replace_days_in_parts("fact_streams", [DAY], failing_midway)
    kept = warehouse.scalar("SELECT COUNT(*) FROM fact_streams")
    assert kept == 50

    assert warehouse.replace_days_in_parts("fact_streams", [DAY], batch.frames) == ROWS
    stored = warehouse.read_frame(
        sa.text("SELECT COUNT(*) AS n, SUM(ms_played) AS ms FROM fact_streams WHERE dt = :d"),
        {"d": DAY},
    ).iloc[0]
    assert (int(stored["n"]), int(stored["ms"])) == (ROWS, int(awkward_day()["ms_played"].sum()))


def test_a_big_day_on_s3_comes_in_the_same_chunks_as_from_a_folder(lake, s3_endpoint, s3_bucket):
    on_s3 = Lake(url=f"s3://{s3_bucket}/platform", s3_endpoint_url=s3_endpoint)
    on_s3.write_bytes(staging_key(DAY), (lake.root / staging_key(DAY)).read_bytes())
    columns = ["event_id", "ms_played"]
    (remote,) = staged_batches(on_s3, [DAY], columns, 10**9, chunk_rows=CHUNK_ROWS)
    (local,) = staged_batches(lake, [DAY], columns, 10**9, chunk_rows=CHUNK_ROWS)
    assert remote.chunked and remote.rows == ROWS
    pairs = list(zip(remote.tables(), local.tables(), strict=True))
    assert len(pairs) == -(-ROWS // CHUNK_ROWS)
    assert all(a.equals(b) for a, b in pairs)
