"""The whole pipeline, run through Dagster on SQLite and on a real MariaDB server."""

import datetime as dt
import gzip

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance

from spotify_platform import cli
from spotify_platform.core.lake.chunks import staged_batches
from spotify_platform.core.lake.layout import quarantine_key, raw_key, raw_prefix, staging_key
from spotify_platform.core.lake.store import Lake
from spotify_platform.core.sources.raw import decode, encode_records
from spotify_platform.defs.resources import LakeResource, WarehouseResource
from spotify_platform_tests import oracle
from spotify_platform_tests.harness import (
    make_resources,
    read_table,
    run_days,
    simulated_raw,
    table_checksums,
)

FIRST = dt.date(2026, 3, 2)
LAST = dt.date(2026, 3, 9)


@pytest.fixture(params=["sqlite", "mariadb"])
def resources(request, tmp_path):
    if request.param == "mariadb":
        url = request.getfixturevalue("mysql_url")
        return make_resources(tmp_path, warehouse_url=url)
    return make_resources(tmp_path)


def test_kpis_match_an_independent_computation(resources):
    assert run_days(resources, FIRST, LAST)
    expected = oracle.prepare(simulated_raw(resources, FIRST, LAST))

    daily = read_table(resources, "kpi_daily_streams").set_index("dt")
    assert list(daily.index) == list(pd.date_range(FIRST, LAST))
    for day in daily.index:
        want = oracle.daily_streams(expected, day)
        got = daily.loc[day]
        assert int(got["plays"]) == want["plays"]
        assert int(got["streams"]) == want["streams"]
        assert int(got["listeners"]) == want["listeners"]
        assert got["minutes_played"] == pytest.approx(want["minutes_played"])
        assert got["skip_rate"] == pytest.approx(want["skip_rate"])

    users = read_table(resources, "kpi_active_users").set_index("dt")
    for day in users.index:
        assert int(users.loc[day, "dau"]) == oracle.active(expected, day, 1)
        assert int(users.loc[day, "wau"]) == oracle.active(expected, day, 7)
        assert int(users.loc[day, "mau"]) == oracle.active(expected, day, 30)
    last = pd.Timestamp(LAST)
    assert users.loc[last, "stickiness"] == pytest.approx(
        oracle.active(expected, last, 1) / oracle.active(expected, last, 30)
    )

    top = read_table(resources, "kpi_top_artists")
    got = top[top["dt"] == last].sort_values(["rank", "artist_name"])
    want = sorted(oracle.top_artists(expected, last), key=lambda r: (r[0], r[1]))
    assert [(int(r.rank), r.artist_name, int(r.streams)) for r in got.itertuples()] == want


def test_a_one_day_run_shows_the_days_own_figures(tmp_path):
    resources = make_resources(tmp_path)
    instance = DagsterInstance.ephemeral()
    assert run_days(resources, FIRST, FIRST, instance=instance)
    expected = oracle.prepare(simulated_raw(resources, FIRST, FIRST))
    day = pd.Timestamp(FIRST)

    def shown(name: str) -> dict:
        key = AssetKey(["warehouse", name])
        records = instance.fetch_materializations(key, limit=10).records
        assert [r.partition_key for r in records] == [FIRST.isoformat()]
        return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}

    daily, users = shown("kpi_daily_streams"), shown("kpi_active_users")
    want = oracle.daily_streams(expected, day)
    assert (daily["plays"], daily["streams"], daily["listeners"]) == (
        want["plays"],
        want["streams"],
        want["listeners"],
    )
    assert users["dau"] == oracle.active(expected, day, 1)
    assert "run_range" not in users


def test_fact_rows_are_raw_events_minus_quarantine(resources):
    lake = resources["lake"]
    day = FIRST
    bad = [
        {
            "ts": "not a time",
            "ms_played": 1000,
            "account_id": "a",
            "conn_country": "DE",
            "master_metadata_track_name": "x",
            "master_metadata_album_artist_name": "y",
            "spotify_track_uri": "spotify:track:" + "a" * 22,
            "platform": "android",
        },
        {
            "ts": f"{day}T10:00:00Z",
            "ms_played": -5,
            "account_id": "a",
            "conn_country": "DE",
            "master_metadata_track_name": "x",
            "master_metadata_album_artist_name": "y",
            "spotify_track_uri": "spotify:track:" + "b" * 22,
            "platform": "android",
        },
        {
            "ts": f"{day}T11:00:00Z",
            "ms_played": 40000,
            "account_id": "b",
            "conn_country": "XX",
            "master_metadata_track_name": "x",
            "master_metadata_album_artist_name": "y",
            "spotify_track_uri": "spotify:track:" + "c" * 22,
            "platform": "android",
        },
        {
            "ts": f"{day}T12:00:00Z",
            "account_id": "b",
            "conn_country": "FR",
            "master_metadata_track_name": "x",
            "master_metadata_album_artist_name": "y",
            "spotify_track_uri": "spotify:track:" + "d" * 22,
            "platform": "ios",
        },
    ]
    data = gzip.compress(gzip.decompress(encode_records(bad)) + b"{this is not json\n")
    lake.write_bytes(raw_key(day, "export", "broken"), data)
    assert run_days(resources, day, day)

    raw_count = len(simulated_raw(resources, day, day)) + len(bad) + 1
    staged = lake.read_parquet(staging_key(day))
    quarantine = lake.read_parquet(quarantine_key(day))
    facts = read_table(resources, "fact_streams")
    assert len(quarantine) == 5
    assert len(facts) == len(staged) == raw_count - len(quarantine)
    reasons = " | ".join(quarantine["reason"])
    for field in ("ts", "ms_played", "country", "not JSON"):
        assert field in reasons
    assert not quarantine["record"].str.contains("ip_addr").any()


def test_rerunning_a_partition_leaves_the_warehouse_identical(resources):
    assert run_days(resources, FIRST, FIRST + dt.timedelta(days=2))
    before = table_checksums(resources)
    assert run_days(resources, FIRST + dt.timedelta(days=1), FIRST + dt.timedelta(days=1))
    assert table_checksums(resources) == before
    assert before["fact_streams"][0] > 0


def test_days_batched_into_few_transactions_load_as_day_by_day(tmp_path):
    day_by_day = make_resources(tmp_path / "a")
    day_by_day["warehouse"] = WarehouseResource(url=f"sqlite:///{tmp_path}/a.db", batch_rows=1)
    batched = make_resources(tmp_path / "b")
    assert run_days(day_by_day, FIRST, FIRST + dt.timedelta(days=4))
    assert run_days(batched, FIRST, FIRST + dt.timedelta(days=4))
    sums = table_checksums(batched)
    assert sums == table_checksums(day_by_day)
    assert sums["fact_streams"][0] > 0 and sums["agg_account_hourly"][0] > 0


def test_days_read_in_chunks_load_as_whole_days(tmp_path):
    whole = make_resources(tmp_path / "a")
    chunked = make_resources(tmp_path / "b")
    chunked["warehouse"] = WarehouseResource(url=f"sqlite:///{tmp_path}/b.db", chunk_rows=300)
    assert run_days(whole, FIRST, FIRST + dt.timedelta(days=2))
    assert run_days(chunked, FIRST, FIRST + dt.timedelta(days=2))
    lake = chunked["lake"]
    days = [FIRST + dt.timedelta(days=i) for i in range(3)]
    assert all(batch.chunked for batch in staged_batches(lake, days, None, 10**9, 300))
    sums = table_checksums(chunked)
    assert sums == table_checksums(whole)
    assert sums["fact_streams"][0] > 3 * 300 and sums["agg_account_sessions"][0] > 0


def test_staged_batches_group_small_days_up_to_the_row_budget_and_chunk_big_ones(tmp_path):
    lake = Lake(url=f"file://{tmp_path}/lake")
    days = [FIRST + dt.timedelta(days=i) for i in range(8)]
    rows = dict(zip(days, [10, 20, 90, 5, 0, 5, 200, 30], strict=True))
    for day, count in rows.items():
        if count:
            frame = pd.DataFrame({"dt": [pd.Timestamp(day)] * count, "n": range(count)})
            lake.write_parquet(staging_key(day), frame)

    batches = list(staged_batches(lake, days, None, 100, chunk_rows=90))
    assert [b.days for b in batches] == [days[:3], days[3:6], days[6:7], days[7:]]
    assert [b.rows for b in batches] == [120, 10, 200, 30]
    assert [b.chunked for b in batches] == [False, False, True, False]
    assert [len(f) for f in batches[2].frames()] == [90, 90, 20]
    assert [len(f) for f in batches[0].frames()] == [120]
    alone = list(staged_batches(lake, days, None, 1, chunk_rows=1000))
    # A day without staged rows goes with the next day that has some.
    assert [b.days for b in alone] == [*([d] for d in days[:4]), days[4:6], [days[6]], [days[7]]]


def test_days_loaded_out_of_order_give_the_same_windowed_kpis(tmp_path):
    in_order = make_resources(tmp_path / "a")
    shuffled = make_resources(tmp_path / "b")
    assert run_days(in_order, FIRST, LAST)
    assert run_days(shuffled, LAST - dt.timedelta(days=2), LAST)
    assert run_days(shuffled, FIRST, LAST - dt.timedelta(days=3))
    assert run_days(shuffled, LAST, LAST)
    a = read_table(in_order, "kpi_active_users").set_index("dt").loc[pd.Timestamp(LAST)]
    b = read_table(shuffled, "kpi_active_users").set_index("dt").loc[pd.Timestamp(LAST)]
    assert (a["dau"], a["wau"], a["mau"]) == (b["dau"], b["wau"], b["mau"])


def test_thirty_days_on_mariadb_are_one_run_through_the_cli(
    tmp_path, mysql_url, monkeypatch, capsys
):
    for name, value in {
        "LAKE_URL": f"file://{tmp_path}/lake",
        "WAREHOUSE_URL": mysql_url,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "SIMULATOR_ACCOUNTS": "40",
        "SIMULATOR_EPOCH": "2026-01-01",
    }.items():
        monkeypatch.setenv(name, value)
    last = dt.date(2026, 5, 30)
    first = last - dt.timedelta(days=29)
    assert cli.main(["run", "--from", str(first), "--to", str(last)]) == 0
    runs = DagsterInstance.get().get_runs()
    assert len(runs) == 1
    lake = LakeResource(url=f"file://{tmp_path}/lake")
    warehouse = WarehouseResource(url=mysql_url)
    counts = warehouse.read_frame("SELECT dt, COUNT(*) AS n FROM fact_streams GROUP BY dt")
    loaded = {pd.Timestamp(d).date(): int(n) for d, n in zip(counts.dt, counts.n, strict=True)}
    for day in (first + dt.timedelta(days=i) for i in range(30)):
        raw = sum(
            len(decode(lake.read_bytes(k)).splitlines()) for k in lake.list_keys(raw_prefix(day))
        )
        quarantined = len(lake.read_parquet(quarantine_key(day)))
        assert loaded.get(day, 0) == raw - quarantined > 0, day
    for table in ("kpi_churn", "kpi_retention", "kpi_genre_share", "kpi_platform_mix"):
        assert len(warehouse.read_table(table)) > 0, table
    # Off a terminal, the CLI prints a line per batch; the last of each step has its totals.
    progress = capsys.readouterr().err.splitlines()
    loads = [line for line in progress if "] fact_streams: " in line]
    assert loads and f"30 of 30 days, {sum(loaded.values()):,} plays" in loads[-1]
    assert "\r" not in "".join(progress)
