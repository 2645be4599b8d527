"""Lake and warehouse resources against real endpoints: moto's S3 server, MariaDB, SQLite."""

import datetime as dt
import io

import boto3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.lake.layout import staging_key
from spotify_platform.core.lake.store import LakeUnavailable, arrow_frame
from spotify_platform.core.warehouse.connection import WarehouseUnavailable
from spotify_platform.core.warehouse.loading import in_key_order
from spotify_platform.core.warehouse.store import Warehouse
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.harness import make_resources, read_table, run_days

DAY = dt.date(2026, 4, 1)


def test_pipeline_on_an_s3_lake(tmp_path, s3_endpoint, s3_bucket):
    resources = make_resources(
        tmp_path, lake_url=f"s3://{s3_bucket}/platform", s3_endpoint_url=s3_endpoint
    )
    assert run_days(resources, DAY, DAY)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert f"platform/{staging_key(DAY)}" in keys
    assert f"platform/raw/listening_events/dt={DAY}/source=simulator/events.jsonl.gz" in keys
    staged = resources["lake"].read_parquet(staging_key(DAY))
    assert len(read_table(resources, "fact_streams")) == len(staged) > 0


def test_lake_round_trip_on_s3(s3_endpoint, s3_bucket):
    lake = LakeResource(url=f"s3://{s3_bucket}/p", s3_endpoint_url=s3_endpoint)
    frame = pd.DataFrame({"name": ["Beyoncé", "夜に駆ける", "🔥"], "n": [1, 2, 3]})
    lake.write_parquet("a/b.parquet", frame)
    assert lake.list_keys("a/") == ["a/b.parquet"]
    pd.testing.assert_frame_equal(lake.read_parquet("a/b.parquet"), frame)
    lake.move("a/b.parquet", "c/d.parquet")
    assert not lake.exists("a/b.parquet") and lake.exists("c/d.parquet")
    assert lake.size("c/d.parquet") == len(lake.read_bytes("c/d.parquet")) > 0


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_parquet_read_again_is_what_its_bytes_decode_to_even_after_a_rewrite(
    backend, tmp_path, request
):
    if backend == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        endpoint = request.getfixturevalue("s3_endpoint")
        lake = LakeResource(url=f"s3://{bucket}/decoded", s3_endpoint_url=endpoint)
    else:
        lake = LakeResource(url=f"file://{tmp_path}/lake")
    frame = pd.DataFrame(
        {
            "name": pd.array(["Sigur Rós", None, "🔥"], dtype=pd.StringDtype("pyarrow")),
            "at": pd.to_datetime(["2026-03-01 00:00:01", "2026-03-01 23:59:59", None]),
            "n": [1, 2, 3],
        }
    )
    written = pa.Table.from_pandas(frame, preserve_index=False)
    for version in range(2):
        table = written if version == 0 else written.slice(1)
        lake.write_parquet("day/streams.parquet", table)
        decoded = pq.read_table(io.BytesIO(lake.read_bytes("day/streams.parquet")))
        for _ in range(2):  # the write's table, then the one found again
            got = lake.read_arrow("day/streams.parquet")
            assert got.equals(decoded, check_metadata=True)
            pd.testing.assert_frame_equal(
                lake.read_parquet("day/streams.parquet", columns=["n", "name"]),
                decoded.to_pandas()[["n", "name"]],
            )
            pd.testing.assert_frame_equal(  # converted in place, and must still be there after
                lake.read_parquet("day/streams.parquet", arrow_strings=True),
                arrow_frame(decoded, arrow_strings=True),
            )
        assert got.num_rows == 3 - version


def test_local_and_s3_lakes_list_the_same_keys_for_any_prefix(tmp_path, s3_endpoint, s3_bucket):
    lakes = [
        LakeResource(url=f"file://{tmp_path}/lake"),
        LakeResource(url=f"s3://{s3_bucket}/p", s3_endpoint_url=s3_endpoint),
    ]
    keys = [
        "raw/listening_events/dt=2020-01-05/source=export/a.jsonl.gz",
        "raw/listening_events/dt=2020-01-05/source=simulator/events.jsonl.gz",
        "raw/listening_events/dt=2020-01-15/source=export/b.jsonl.gz",
        "raw/listening_events/dt=2021-03-01/source=export/c.jsonl.gz",
        "staging/streams/dt=2020-01-05/streams.parquet",
        "top.txt",
    ]
    for lake in lakes:
        for key in keys:
            lake.write_bytes(key, b"x")
    prefixes = [
        "",
        "raw/",
        "raw/listening_events/dt=2020-01-05/",
        "raw/listening_events/dt=2020-01-06/",
        "raw/listening_events/dt=2020-01-0",
        "raw/listening_events/dt=2020-01-1",
        "raw/listening_events/dt=2020",
        "raw/listening_events/dt=2020-01-05/source=s",
        "staging/streams/dt=2020-01-05/streams.parquet",
        "t",
        "nothing/here/",
    ]
    for prefix in prefixes:
        expected = sorted(k for k in keys if k.startswith(prefix))
        assert [lake.list_keys(prefix) for lake in lakes] == [expected, expected], prefix
        sizes = dict.fromkeys(expected, 1)
        assert [lake.list_sizes(prefix) for lake in lakes] == [sizes, sizes], prefix
    short = [dt.date(2020, 1, 5), dt.date(2020, 1, 6), dt.date(2021, 3, 1)]
    long = short + [dt.date(2019, 12, 31) - dt.timedelta(days=i) for i in range(30)]
    for days in (short, long):
        expected = {
            day: {k: 1 for k in keys if k.startswith(f"raw/listening_events/dt={day}/")}
            for day in (dt.date(2020, 1, 5), dt.date(2021, 3, 1))
        }
        for lake in lakes:
            assert lake.keys_by_day("raw/listening_events/", days) == expected


def test_missing_bucket_fails_at_once_naming_it(s3_endpoint):
    lake = LakeResource(url="s3://no-such-bucket-here/x", s3_endpoint_url=s3_endpoint)
    with pytest.raises(LakeUnavailable, match="no-such-bucket-here"):
        lake.check()


def test_unreachable_mysql_names_the_host_not_the_password():
    warehouse = WarehouseResource(
        url="mysql+pymysql://analyst:s3cr3t-pw@127.0.0.1:1/kpis", connect_timeout_s=2
    )
    with pytest.raises(WarehouseUnavailable) as error:
        warehouse.check_connection()
    message = str(error.value)
    assert "127.0.0.1:1/kpis" in message
    assert "s3cr3t-pw" not in message


def test_schema_is_idempotent_and_utf8mb4(mysql_url):
    warehouse = WarehouseResource(url=mysql_url)
    assert "fact_streams" in warehouse.init_schema()
    assert warehouse.init_schema() == []
    columns = warehouse.read_frame(
        "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
    )
    ended = columns[(columns.TABLE_NAME == "fact_streams") & (columns.COLUMN_NAME == "ended_at")]
    assert ended.COLUMN_TYPE.iloc[0] == "datetime(3)"
    assert set(columns.CHARACTER_SET_NAME.dropna()) == {"utf8mb4"}
    engines = warehouse.read_frame(
        "SELECT DISTINCT ENGINE FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
    )
    assert engines.ENGINE.tolist() == ["InnoDB"]


def test_replace_days_rolls_back_on_failure(tmp_path):
    resources = make_resources(tmp_path)
    assert run_days(resources, DAY, DAY)
    warehouse: WarehouseResource = resources["warehouse"]
    before = read_table(resources, "kpi_daily_streams")
    broken = before.assign(plays=None)
    with pytest.raises(sa.exc.IntegrityError):
        warehouse.replace_days("kpi_daily_streams", [DAY], broken)
    pd.testing.assert_frame_equal(read_table(resources, "kpi_daily_streams"), before)


def _facts(tmp_path) -> pd.DataFrame:
    resources = make_resources(tmp_path, accounts=40)
    assert run_days(resources, DAY, DAY)
    return resources["lake"].read_parquet(staging_key(DAY))


def test_load_data_and_insert_paths_store_the_same_rows(tmp_path, mysql_url):
    facts = _facts(tmp_path)
    facts.loc[facts.index[0], "track_name"] = 'tab\there\nnew line \\ back\'slash "quote" 🔥'
    # The file goes to the server as binary: multi-byte text and NULL look-alikes must survive.
    facts.loc[facts.index[1], "album_name"] = "東京の夜 \\N NULL e\u0301 \U0001f3b8"
    fast = WarehouseResource(url=mysql_url)
    fast.init_schema()
    assert fast.load_path == "load_data"
    fast.replace_days("fact_streams", [DAY], facts)
    via_load = fast.read_table("fact_streams").sort_values("event_id", ignore_index=True)
    slow = WarehouseResource(url=mysql_url, bulk_load="insert")
    assert slow.load_path == "insert"
    slow.replace_days("fact_streams", [DAY], facts)
    via_insert = slow.read_table("fact_streams").sort_values("event_id", ignore_index=True)
    pd.testing.assert_frame_equal(via_load, via_insert)
    assert len(via_load) == len(facts)
    assert 'tab\there\nnew line \\ back\'slash "quote" 🔥' in set(via_load["track_name"])
    assert "東京の夜 \\N NULL e\u0301 \U0001f3b8" in set(via_load["album_name"])


def test_server_refusing_load_data_falls_back_to_inserts(tmp_path, mysql_url, mysql_server_url):
    facts = _facts(tmp_path)
    admin = sa.create_engine(mysql_server_url, poolclass=sa.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text("SET GLOBAL local_infile = 0"))
    try:
        warehouse = WarehouseResource(url=mysql_url)
        warehouse.init_schema()
        assert warehouse.replace_days("fact_streams", [DAY], facts) == len(facts)
        assert warehouse.load_path == "insert"
        assert len(warehouse.read_table("fact_streams")) == len(facts)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text("SET GLOBAL local_infile = 1"))
        admin.dispose()


@pytest.mark.parametrize("backend", ["mariadb", "mariadb-insert", "sqlite"])
def test_upsert_updates_existing_keys_and_inserts_new_ones(backend, tmp_path, request):
    url = (
        request.getfixturevalue("mysql_url")
        if backend.startswith("mariadb")
        else f"sqlite:///{tmp_path / 'w.db'}"
    )
    warehouse = WarehouseResource(
        url=url, bulk_load="insert" if backend == "mariadb-insert" else "auto"
    )
    warehouse.init_schema()
    assert warehouse.load_path == ("load_data" if backend == "mariadb" else "insert")
    first = pd.DataFrame(
        {
            "account_id": ["a1", "a2"],
            "first_stream_dt": pd.to_datetime(["2026-03-01", "2026-03-02"]),
            "last_stream_dt": pd.to_datetime(["2026-03-05", "2026-03-02"]),
            "active_days": [3, 1],
            "home_country": ["SE", "'\\"],
        }
    )
    assert warehouse.upsert("dim_accounts", first) == 2
    assert warehouse.read_table("dim_accounts")["home_country"].tolist() == ["SE", "'\\"]
    second = pd.DataFrame(
        {
            "account_id": ["a3", "a2"],
            "first_stream_dt": pd.to_datetime(["2026-03-04", "2026-03-02"]),
            "last_stream_dt": pd.to_datetime([None, "2026-03-09"]),
            "active_days": [0, 4],
            "home_country": ["BR", "JP"],
        }
    )
    assert warehouse.upsert("dim_accounts", second) == 2
    stored = warehouse.read_table("dim_accounts").sort_values("account_id", ignore_index=True)
    assert stored["account_id"].tolist() == ["a1", "a2", "a3"]
    assert stored["active_days"].tolist() == [3, 4, 0]
    assert stored["home_country"].tolist() == ["SE", "JP", "BR"]
    last = pd.to_datetime(stored["last_stream_dt"]).dt.strftime("%Y-%m-%d").fillna("-")
    assert last.tolist() == ["2026-03-05", "2026-03-09", "-"]
    only_names = second.assign(active_days=[7, 7], home_country=["XX", "XX"])
    warehouse.upsert("dim_accounts", only_names, update=["active_days"])
    stored = warehouse.read_table("dim_accounts").sort_values("account_id", ignore_index=True)
    assert stored["active_days"].tolist() == [3, 7, 7]
    assert stored["home_country"].tolist() == ["SE", "JP", "BR"]
    warehouse.engine.dispose()


def test_the_core_warehouse_works_without_dagster(tmp_path):
    """`Warehouse` is the resource's logic under plain arguments, for tools and scripts."""
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    assert "dim_accounts" in warehouse.init_schema()
    assert warehouse.ensure_schema() is None
    assert warehouse.missing_tables() == []
    assert warehouse.load_path == "insert"
    accounts = pd.DataFrame(
        {
            "account_id": ["a1"],
            "first_stream_dt": pd.to_datetime(["2026-03-01"]),
            "last_stream_dt": pd.to_datetime(["2026-03-05"]),
            "active_days": [3],
            "home_country": ["SE"],
        }
    )
    assert warehouse.upsert("dim_accounts", accounts) == 1
    with warehouse.exclusive("dim_accounts"):
        stored = warehouse.read_table("dim_accounts")
    assert stored["first_stream_dt"].tolist() == [pd.Timestamp("2026-03-01")]
    assert warehouse.scalar("SELECT COUNT(*) FROM dim_accounts") == 1
    warehouse.engine.dispose()


def test_key_order_check_agrees_with_sorting_the_keys():
    rng = np.random.default_rng(5)
    days = pd.to_datetime(["2026-03-01", "2026-03-02", "2026-03-03"])
    ids = ["".join(rng.choice(list("0123456789abcdef"), 32)) for _ in range(280)]
    frame = pd.DataFrame(
        {
            "dt": days[rng.integers(0, 3, 300)],
            "event_id": pd.array(ids + ids[:20], dtype="string[pyarrow]"),
        }
    )
    table = TABLES["fact_streams"]
    ordered = frame.sort_values(["dt", "event_id"], ignore_index=True)
    assert in_key_order(ordered, table)
    # Ids fall back at each new day, and ties are in order too.
    assert not ordered["event_id"].is_monotonic_increasing
    assert in_key_order(pd.concat([ordered.iloc[:1], ordered], ignore_index=True), table)
    swapped = ordered.copy()
    swapped.iloc[[10, 11]] = swapped.iloc[[11, 10]].to_numpy()
    assert in_key_order(swapped, table) == (tuple(swapped.iloc[10]) == tuple(swapped.iloc[11]))
    assert not in_key_order(ordered.iloc[::-1].reset_index(drop=True), table)
    assert not in_key_order(frame, table)
