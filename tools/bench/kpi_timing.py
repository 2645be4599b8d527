"""The KPI section's worker: a month of facts and aggregates, then each KPI asset timed and
each KPI query EXPLAINed."""

import datetime as dt
import tempfile
import time

import numpy as np
import pandas as pd
from dagster import AssetSelection, DagsterInstance, materialize

from spotify_platform.core.kpis import aggregates, lifecycle, sessions
from spotify_platform.core.kpis import measures as kpis
from spotify_platform.core.lake.layout import staging_key
from spotify_platform.defs.assets import kpis as kpi_assets
from spotify_platform.defs.runs import QUIET_RUN_CONFIG
from tools.bench.measure import RssSampler
from tools.bench.platform_path import bench_resources
from tools.bench.settings import QUIET_INSTANCE


def kpi_worker(spec: dict) -> dict:
    """Fill fact_streams and the aggregates with `days` days, then time each KPI asset.

    The days are the staged Parquet of one simulated day, shifted day by day with the
    accounts rotated, loaded through `WarehouseResource.replace_days` (so the load rate at a
    growing table is measured too). Then every KPI asset is materialized for the last day,
    and EXPLAIN shows how MariaDB answers each KPI query.
    """
    resources = bench_resources(spec)
    warehouse = resources["warehouse"]
    warehouse.init_schema()
    lake = resources["lake"]
    base = lake.read_parquet(
        staging_key(dt.date.fromisoformat(spec["source_day"])), arrow_strings=True
    )
    first = dt.date.fromisoformat(spec["first"])
    days = [first + dt.timedelta(days=i) for i in range(spec["days"])]
    loads = []
    with RssSampler():
        accounts = base["account_id"].unique()
        for i, day in enumerate(days):
            frame = shifted(base, day, accounts, i)
            started = time.time()
            warehouse.replace_days("fact_streams", [day], frame)
            load_s = time.time() - started
            warehouse.replace_days("agg_account_daily", [day], aggregates.account_daily(frame))
            warehouse.replace_days("agg_artist_daily", [day], aggregates.artist_daily(frame))
            warehouse.replace_days("agg_track_daily", [day], aggregates.track_daily(frame))
            warehouse.replace_days("agg_account_hourly", [day], aggregates.account_hourly(frame))
            warehouse.replace_days(
                "agg_account_segment_daily", [day], lifecycle.account_segment_daily(frame)
            )
            warehouse.replace_days("agg_account_sessions", [day], sessions.account_sessions(frame))
            loads.append({"day": day.isoformat(), "rows": len(frame), "seconds": load_s})
        warehouse.read_frame(
            "ANALYZE TABLE fact_streams, agg_account_daily, agg_artist_daily, agg_track_daily, "
            "agg_account_hourly, agg_account_segment_daily, agg_account_sessions"
        )
        timings = {}
        with tempfile.TemporaryDirectory() as home:
            instance = DagsterInstance.local_temp(home, overrides=QUIET_INSTANCE)
            for key in kpi_assets.warehouse_kpis.keys:
                started = time.time()
                result = materialize(
                    [kpi_assets.warehouse_kpis],
                    selection=AssetSelection.assets(key),
                    partition_key=days[-1].isoformat(),
                    resources={"warehouse": warehouse},
                    instance=instance,
                    run_config=QUIET_RUN_CONFIG,
                )
                assert result.success
                timings[key.to_user_string()] = time.time() - started
            instance.dispose()
    plans = explain_kpis(warehouse, days[-1])
    total = warehouse.read_frame("SELECT COUNT(*) AS n FROM fact_streams").iloc[0, 0]
    return {
        "fact_rows": int(total),
        "loads": loads,
        "kpi_seconds": timings,
        "explain": plans,
        "table_bytes": table_bytes(warehouse),
        "rows_per_day": int(pd.Series([r["rows"] for r in loads]).mean()),
    }


def shifted(base, day: dt.date, accounts, offset: int):
    """The base day's rows moved to `day`, each account replaced by another one."""
    shift = pd.Timestamp(day) - base["dt"].iloc[0]
    rotated = pd.Series(np.roll(accounts, offset * 997), index=accounts)
    return base.assign(
        dt=pd.Timestamp(day),
        ended_at=base["ended_at"] + shift,
        started_at=base["started_at"] + shift,
        account_id=base["account_id"].map(rotated).astype(base["account_id"].dtype),
    )


def explain_kpis(warehouse, day: dt.date) -> dict[str, list[dict]]:
    """EXPLAIN of every KPI query for one day: table, access type, key, rows estimate."""
    plans = {}
    queries = {**kpis.queries_for_day(day), **lifecycle.queries_for_day(day)}
    with warehouse.engine.connect() as conn:
        for name, statement in queries.items():
            compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
            rows = conn.exec_driver_sql(f"EXPLAIN {compiled}").mappings().all()
            plans[name] = [
                {k: row.get(k) for k in ("table", "type", "key", "rows", "Extra")} for row in rows
            ]
    return plans


def table_bytes(warehouse) -> dict[str, int]:
    frame = warehouse.read_frame(
        "SELECT TABLE_NAME AS t, DATA_LENGTH + INDEX_LENGTH AS b FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('fact_streams', 'agg_account_daily')"
    )
    return {str(r.t): int(r.b) for r in frame.itertuples()}
