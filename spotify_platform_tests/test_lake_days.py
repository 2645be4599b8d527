"""Staging a range of days in the lake: small days grouped, big ones alone or in worker
processes, days without raw files cleared, and each day's files and stats written alike."""

import datetime as dt
import json

import pandas as pd
import pytest

from spotify_platform.core.lake.layout import (
    RAW_ROOT,
    quarantine_key,
    raw_key,
    staging_key,
    staging_stats_key,
)
from spotify_platform.core.lake.store import Lake
from spotify_platform.core.sources.raw import encode_jsonl_gz
from spotify_platform.core.sources.simulator import ListeningSimulator
from spotify_platform.core.staging import buckets, lake_days, lake_io
from spotify_platform.core.staging.lake_days import side_by_side, small_day_groups, stage_lake_days
from spotify_platform.core.staging.lake_io import no_raw_stats, read_raw, stage_stored_day

FIRST = dt.date(2026, 3, 2)
KEY = b"k"
DAYS = [FIRST + dt.timedelta(days=i) for i in range(5)]


def _lake(tmp_path, name: str) -> Lake:
    lake = Lake(f"file://{tmp_path / name}")
    simulator = ListeningSimulator(accounts=30, seed=8, epoch=dt.date(2026, 1, 1))
    for day in DAYS[:4]:
        lake.write_bytes(raw_key(day, "simulator", "events"), encode_jsonl_gz(simulator.day(day)))
    return lake


def test_small_days_are_grouped_up_to_a_group_size_and_big_days_left_out():
    days = [FIRST + dt.timedelta(days=i) for i in range(6)]
    mib = 1 << 20
    sizes = dict(zip(days, [mib, 2 * mib, mib // 2, 5 * mib, 4 * mib, mib], strict=True))
    assert small_day_groups(days, sizes) == [[days[0], days[2], days[5]]]
    many = [FIRST + dt.timedelta(days=i) for i in range(10)]
    assert small_day_groups(many, dict.fromkeys(many, mib)) == [many[:8], many[8:]]
    big = [d for d in days if sizes[d] > lake_days.SMALL_DAY_BYTES]
    assert not side_by_side(big[:1], sizes)
    assert side_by_side(big, {d: lake_days.SIDE_BY_SIDE_BYTES for d in big})
    assert not side_by_side(big, {d: mib for d in big})
    assert not side_by_side(big, {d: lake_days.SIDE_BY_SIDE_BYTES + 1 for d in big})


@pytest.mark.parametrize(
    "how", ["grouped", "one by one", "in workers", "one by one in buckets", "in workers in buckets"]
)
def test_each_way_stages_the_days_as_staging_each_alone(tmp_path, monkeypatch, how):
    alone, lake = _lake(tmp_path, "alone"), _lake(tmp_path, "lake")
    raw = alone.keys_by_day(RAW_ROOT, DAYS)
    expected = {day: stage_stored_day(alone, KEY, day, list(raw[day])) for day in raw}
    if how != "grouped":
        monkeypatch.setattr(lake_days, "SMALL_DAY_BYTES", 0)
    if how.startswith("in workers"):
        monkeypatch.setattr(lake_days, "WORKERS_MIN_BYTES", 0)
    if how.endswith("in buckets"):
        monkeypatch.setattr(lake_io, "STREAM_DAY_BYTES", 0)
        monkeypatch.setattr(buckets, "BUCKET_RAW_BYTES", 1 << 12)
    stale = staging_key(DAYS[4])
    lake.write_bytes(stale, b"left by an earlier run")
    lines: list = []
    landed = stage_lake_days(lake, KEY, DAYS, log=lines.append)
    assert landed == expected
    assert not lake.exists(stale)
    assert len(lines) == (2 if how == "grouped" else 5)
    assert lines[-1] == "1 days without raw files: nothing staged"
    assert "4 of 4 days with raw files" in str(lines[-2])
    records = sum(s["raw_records"] for s in expected.values())
    assert (lines[-2].days_done, lines[-2].days_total, lines[-2].plays) == (4, 4, records)
    for day in raw:
        # Read from the files: `read_parquet` would hand back the table a write in this
        # process kept, which the bucketed path, writing as it goes, does not keep.
        for key in (staging_key(day), quarantine_key(day)):
            pd.testing.assert_frame_equal(
                pd.read_parquet(lake.root / key), pd.read_parquet(alone.root / key)
            )
        assert json.loads(lake.read_bytes(staging_stats_key(day))) == expected[day]


def test_stats_of_a_day_without_raw_files_and_an_unreadable_file(tmp_path):
    assert no_raw_stats(FIRST) == {
        "raw_records": 0,
        "staged_rows": 0,
        "quarantined_rows": 0,
        "duplicates_removed": 0,
        "files": [],
        "reasons": {},
        "unknown_fields": {},
        "missing_fields": {},
    }
    lake = _lake(tmp_path, "lake")
    key = raw_key(FIRST, "simulator", "events")
    lake.write_bytes(key, lake.read_bytes(key)[:-40])
    with pytest.raises(RuntimeError, match=f"{key} is unreadable as a whole"):
        read_raw(lake, key)
