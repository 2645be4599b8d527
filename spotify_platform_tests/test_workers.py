"""Days staged in worker processes come out as this process stages them, and a worker's
failure fails the staging, naming the file."""

import datetime as dt

import pandas as pd
import pytest

from spotify_platform.core.lake.layout import RAW_ROOT, quarantine_key, raw_key, staging_key
from spotify_platform.core.sources.raw import encode_jsonl_gz
from spotify_platform.core.staging import workers
from spotify_platform.core.staging.lake_io import stage_stored_day
from spotify_platform.defs.resources import LakeResource
from spotify_platform_tests.harness import make_resources

FIRST = dt.date(2026, 3, 2)


def _two_s3_lakes(tmp_path, s3_endpoint, s3_bucket, days):
    """Two prefixes of one bucket holding the same simulated raw files."""
    resources = make_resources(tmp_path, accounts=60)
    lakes = [
        LakeResource(url=f"s3://{s3_bucket}/{name}", s3_endpoint_url=s3_endpoint)
        for name in ("here", "helped")
    ]
    for day in days:
        data = encode_jsonl_gz(resources["simulator"].day(day))
        for lake in lakes:
            lake.write_bytes(raw_key(day, "simulator", "events"), data)
    return lakes, resources["identity"].key()


def test_worker_processes_stage_days_as_this_process_does(
    tmp_path, s3_endpoint, s3_bucket, monkeypatch
):
    days = [FIRST + dt.timedelta(days=i) for i in range(8)]
    (here, helped), key = _two_s3_lakes(tmp_path, s3_endpoint, s3_bucket, days)
    raw = here.keys_by_day(RAW_ROOT, days)
    expected = [stage_stored_day(here, key, day, list(raw[day])) for day in days]
    # Days this process stages go through the module's stage_stored_day; a worker has its own.
    staged_here = []
    monkeypatch.setattr(
        workers,
        "stage_stored_day",
        lambda *args, **kwargs: staged_here.append(args[2]) or stage_stored_day(*args, **kwargs),
    )
    assert list(workers.stage_in_workers(helped, key, days, raw)) == expected
    assert days[0] not in staged_here, "the worker process staged no day"
    for day in days:
        pd.testing.assert_frame_equal(
            helped.read_parquet(staging_key(day)), here.read_parquet(staging_key(day))
        )
        pd.testing.assert_frame_equal(
            helped.read_parquet(quarantine_key(day)), here.read_parquet(quarantine_key(day))
        )


def test_a_worker_process_failing_fails_the_staging_naming_the_file(
    tmp_path, s3_endpoint, s3_bucket
):
    days = [FIRST + dt.timedelta(days=i) for i in range(4)]
    (lake, _), key = _two_s3_lakes(tmp_path, s3_endpoint, s3_bucket, days)
    broken = raw_key(days[0], "simulator", "events")
    lake.write_bytes(broken, lake.read_bytes(broken)[:-40])
    raw = lake.keys_by_day(RAW_ROOT, days)
    with pytest.raises(RuntimeError, match=f"{broken}.* unreadable"):
        list(workers.stage_in_workers(lake, key, days, raw))
