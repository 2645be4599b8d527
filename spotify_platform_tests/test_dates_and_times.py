"""Time: midnight, daylight saving changes, offline timestamps and datetimes after 2038."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from spotify_platform.core.lake.ingest import import_history
from spotify_platform.core.lake.layout import (
    raw_key,
    raw_prefix,
)
from spotify_platform.core.sources.raw import encode_records
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.harness import (
    make_resources,
    read_table,
    run_days,
    synthetic_facts,
)
from spotify_platform_tests.support.records import export_play, play

DAY = dt.date(2026, 3, 2)


def test_midnight_dst_and_offline_timestamps_land_on_the_right_day_and_hour(
    mysql_url: str, tmp_path: Path
) -> None:
    resources = make_resources(tmp_path, warehouse_url=mysql_url, accounts=0)
    lake: LakeResource = resources["lake"]
    minute = 60_000
    plays = {
        # US spring forward, 2026-03-08 07:00 UTC: 01:30 EST, then 03:30 EDT (no 02:xx).
        dt.date(2026, 3, 8): [
            play("2026-03-08T06:31:00Z", "us-1", minute, conn_country="US"),
            play("2026-03-08T07:31:00Z", "us-2", minute, conn_country="US"),
        ],
        # Started 23:58 on the 8th, ended 00:01 on the 9th: the 9th's play, UTC hour 23.
        dt.date(2026, 3, 9): [play("2026-03-09T00:01:00Z", "late-1", 3 * minute)],
        # EU spring forward, 2026-03-29 01:00 UTC: 01:30 CET, then 03:30 CEST.
        dt.date(2026, 3, 29): [
            play("2026-03-29T00:31:00Z", "de-1", minute),
            play("2026-03-29T01:31:00Z", "de-2", minute),
        ],
        # US fall back, 2026-11-01 06:00 UTC: 01:30 EDT, then 01:30 EST again.
        dt.date(2026, 11, 1): [
            play("2026-11-01T05:31:00Z", "us-3", minute, conn_country="US"),
            play("2026-11-01T06:31:00Z", "us-4", minute, conn_country="US"),
        ],
    }
    for day, records in plays.items():
        lake.write_bytes(raw_key(day, "export", "clock"), encode_records(records))
    export = tmp_path / "Streaming_History_Audio_2026.json"
    seconds = int(dt.datetime(2026, 3, 8, 22, tzinfo=dt.UTC).timestamp())
    export.write_text(
        json.dumps(
            [
                export_play("2026-03-09T10:00:00Z", seconds),
                export_play("2026-03-09T11:00:00Z", seconds * 1000 + 123),
            ]
        )
    )
    report = import_history(lake, [export], account="offline-listener")
    assert report.days == [dt.date(2026, 3, 9)] and not report.errors

    for first, last in [
        (dt.date(2026, 3, 8), dt.date(2026, 3, 9)),
        (dt.date(2026, 3, 29), dt.date(2026, 3, 29)),
        (dt.date(2026, 11, 1), dt.date(2026, 11, 1)),
    ]:
        assert run_days(resources, first, last)

    region = read_table(resources, "kpi_engagement_by_region_hour")
    got = {
        (r.dt.date(), r.country, int(r.local_hour)): int(r.streams)
        for r in region.itertuples(index=False)
    }
    assert got == {
        (dt.date(2026, 3, 8), "US", 1): 1,
        (dt.date(2026, 3, 8), "US", 3): 1,
        (dt.date(2026, 3, 9), "DE", 0): 1,
        (dt.date(2026, 3, 9), "SE", 10): 1,
        (dt.date(2026, 3, 9), "SE", 11): 1,
        (dt.date(2026, 3, 29), "DE", 1): 1,
        (dt.date(2026, 3, 29), "DE", 3): 1,
        (dt.date(2026, 11, 1), "US", 1): 2,
    }
    utc = read_table(resources, "kpi_engagement_by_utc_hour")
    late = utc[utc["dt"] == pd.Timestamp("2026-03-09")].set_index("utc_hour")["streams"]
    assert late.to_dict() == {23: 1, 9: 1, 10: 1}
    facts = read_table(resources, "fact_streams").set_index("ended_at")
    midnight = facts.loc[pd.Timestamp("2026-03-09T00:01:00Z")]
    assert midnight["dt"] == pd.Timestamp("2026-03-09")
    assert midnight["started_at"] == pd.Timestamp("2026-03-08T23:58:00Z")
    daily = read_table(resources, "kpi_daily_streams").set_index("dt")["streams"]
    assert (daily[pd.Timestamp("2026-03-08")], daily[pd.Timestamp("2026-03-09")]) == (2, 3)
    offline = [
        json.loads(line)["offline_timestamp"]
        for key in lake.list_keys(raw_prefix(dt.date(2026, 3, 9)))
        if "source=export" in key and "clock" not in key
        for line in gzip.decompress(lake.read_bytes(key)).splitlines()
    ]
    assert sorted(offline) == [seconds * 1000, seconds * 1000 + 123], "raw holds milliseconds"


@pytest.mark.parametrize("bulk_load", ["auto", "insert"])
def test_datetimes_after_2038_round_trip_exactly(bulk_load: str, mysql_url: str) -> None:
    """DATETIME(3), not TIMESTAMP: no 2038 wrap and no session time zone shift."""
    warehouse = WarehouseResource(url=mysql_url, bulk_load=bulk_load)
    warehouse.init_schema()
    moments = {
        dt.date(2038, 1, 19): "2038-01-19T03:14:08.001Z",
        dt.date(2040, 2, 29): "2040-02-29T23:59:59.999Z",
        dt.date(2199, 12, 31): "2199-12-31T12:00:00.500Z",
    }
    for day, moment in moments.items():
        frame = synthetic_facts(1, day, seed=day.year)
        frame["ended_at"] = pd.Series([pd.Timestamp(moment)])
        frame["started_at"] = frame["ended_at"] - pd.to_timedelta(frame["ms_played"], unit="ms")
        warehouse.replace_days("fact_streams", [day], frame)
    stored = warehouse.read_frame(
        "SELECT dt, CAST(ended_at AS CHAR) AS ended FROM fact_streams ORDER BY dt"
    )
    assert stored["ended"].tolist() == [
        pd.Timestamp(m).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] for m in moments.values()
    ]
    with warehouse.engine.connect() as conn:
        conn.execute(sa.text("SET time_zone = '-07:00'"))
        shifted = conn.execute(sa.text("SELECT MIN(ended_at) FROM fact_streams")).scalar()
    assert shifted == dt.datetime(2038, 1, 19, 3, 14, 8, 1000)
    read = warehouse.read_table("fact_streams")["ended_at"].tolist()
    assert read == [pd.Timestamp(m) for m in moments.values()]
