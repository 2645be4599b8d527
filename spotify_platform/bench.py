"""`make bench`: the platform's day, backfill and KPI figures against the seed-style path.

Every measured path runs in a subprocess of its own on the same simulated input and the same
MariaDB server, so peak RSS is that path's own (`os.wait4` gives each child's `ru_maxrss`) and a
sampler thread attributes RSS to stages. The platform path is the real code: the Dagster job of
`spotify_platform.cli.run_range` with the resources of the code location; the seed-style path
is `read_json(lines=True)` with pandas' default engine, a pandas clean, `to_sql(chunksize=10000)`
and KPIs in pandas, as the portfolio pipeline this platform grew from did it.

    python -m spotify_platform.bench                      # all sections, default sizes
    python -m spotify_platform.bench --only day --events 1000000
    python -m spotify_platform.bench --full               # the backfill with 1M events a day

Results print as tables and land as JSON in `.bench/` (one file per run plus `latest.json`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spotify_platform.bench_history import SHAPES, history_section, history_worker

BENCH_DIR = Path(".bench")
DAY = dt.date(2026, 3, 10)
SEED = 7
HMAC_KEY = "bench-key-not-secret"
DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/"
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
GIB = 1024 * MIB

TARGET_DAY_SPEEDUP = 5.0
TARGET_LOAD_ROWS_PER_S = 100_000
TARGET_PEAK_RSS = 1.5 * GIB
TARGET_BACKFILL_SPEEDUP = 3.0
TARGET_KPI_SECONDS = 2.0
QUIET_INSTANCE = {"telemetry": {"enabled": False}}


# --------------------------------------------------------------------------- measuring


class RssSampler:
    """Samples this process's RSS every few milliseconds, to attribute peaks to stages."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * PAGE

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self.rss()))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float, end: float) -> int:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        before = [rss for t, rss in self.samples if t < start][-1:]
        return max(inside + before, default=0)


class Stages:
    """Wall time and peak RSS of named stages, in order."""

    def __init__(self, sampler: RssSampler) -> None:
        self.sampler = sampler
        self.rows: list[dict[str, Any]] = []

    @contextmanager
    def __call__(self, name: str, rows: int | None = None) -> Iterator[dict[str, Any]]:
        record: dict[str, Any] = {"stage": name, "rows": rows}
        start = time.time()
        yield record
        end = time.time()
        record.update(seconds=end - start, start=start, end=end)
        record["peak_rss"] = max(self.sampler.peak(start, end), RssSampler.rss())
        self.rows.append(record)


# --------------------------------------------------------------------------- workers


def _warehouse(url: str):
    from spotify_platform.defs.resources.warehouse import WarehouseResource

    return WarehouseResource(url=url)


def generate_worker(spec: dict) -> dict:
    """Simulate the days and land them as raw JSON lines files, one per day."""
    from spotify_platform.core.sources.raw import encode_jsonl_gz
    from spotify_platform.core.sources.simulator import ListeningSimulator

    first = dt.date.fromisoformat(spec["first"])
    accounts = ListeningSimulator.accounts_for(spec["events"])
    simulator = ListeningSimulator(
        accounts=accounts, seed=SEED, epoch=first - dt.timedelta(days=35)
    )
    counts = {}
    for i in range(spec["days"]):
        day = first + dt.timedelta(days=i)
        target = Path(spec["lake"]) / raw_key(day)
        events = simulator.day(day)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        tmp.write_bytes(encode_jsonl_gz(events))
        tmp.rename(target)
        counts[day.isoformat()] = len(events)
    return {"accounts": accounts, "events_by_day": counts}


def raw_key(day: dt.date) -> str:
    from spotify_platform.core.lake.layout import raw_key as key

    return key(day, "simulator", "events")


def seed_worker(spec: dict) -> dict:
    """The seed-style day: read_json, a pandas clean, to_sql(chunksize=10000), pandas KPIs."""
    import numpy as np
    import pandas as pd

    from spotify_platform.core.kpis import measures as kpis
    from spotify_platform.core.sources.countries import local_hour
    from spotify_platform.core.sources.identity import event_ids, name_ids, pseudonymise
    from spotify_platform.core.sources.platforms import normalise_platform
    from spotify_platform.core.sources.simulator import build_catalog
    from spotify_platform.core.staging.canonical import SKIP_REASONS, STAGING_COLUMNS, STREAM_MIN_MS

    day = dt.date.fromisoformat(spec["day"])
    warehouse = _warehouse(spec["url"])
    warehouse.init_schema()
    engine = warehouse.engine
    with RssSampler() as sampler:
        stage = Stages(sampler)
        started = time.time()
        with stage("read_json") as s:
            raw = pd.read_json(Path(spec["lake"]) / raw_key(day), lines=True)
            s["rows"] = len(raw)
        with stage("clean") as s:
            raw = raw.dropna(subset=["ts", "ms_played", "account_id"])
            ended = pd.to_datetime(raw["ts"], utc=True, format="ISO8601")
            ms = raw["ms_played"].astype("int64")
            track_uri = raw["spotify_track_uri"]
            is_track = track_uri.notna() | raw["master_metadata_track_name"].notna()
            is_episode = ~is_track & (
                raw["spotify_episode_uri"].notna() | raw["episode_name"].notna()
            )
            artist = raw["master_metadata_album_artist_name"]
            track = raw["master_metadata_track_name"]
            track_id = track_uri.str.removeprefix("spotify:track:")
            track_id = track_id.where(track_id.notna(), name_ids(artist, track)).where(is_track)
            content_key = track_uri.where(
                track_uri.notna(),
                raw["spotify_episode_uri"].fillna(raw["audiobook_chapter_uri"]),
            )
            account = pseudonymise(raw["account_id"], HMAC_KEY.encode())
            country = raw["conn_country"].str.upper().fillna("ZZ")
            start = ended - pd.to_timedelta(ms, unit="ms")
            fact = pd.DataFrame(
                {
                    "event_id": event_ids(account, ended, content_key, ms),
                    "account_id": account,
                    "source": "simulator",
                    "ended_at": ended.dt.tz_localize(None),
                    "started_at": start.dt.tz_localize(None),
                    "ms_played": ms,
                    "content_type": np.select(
                        [is_track, is_episode], ["track", "episode"], "audiobook"
                    ),
                    "track_id": track_id,
                    "track_name": track.where(is_track),
                    "artist_id": name_ids(artist.where(is_track)),
                    "artist_name": artist.where(is_track),
                    "album_name": raw["master_metadata_album_album_name"].where(is_track),
                    "episode_name": raw["episode_name"].fillna(raw["audiobook_chapter_title"]),
                    "show_name": raw["episode_show_name"].fillna(raw["audiobook_title"]),
                    "country": country,
                    "platform": normalise_platform(raw["platform"]),
                    "reason_start": raw["reason_start"],
                    "reason_end": raw["reason_end"],
                    "shuffle": raw["shuffle"],
                    "skipped": raw["skipped"].fillna(False).astype(bool)
                    | raw["reason_end"].isin(SKIP_REASONS),
                    "offline": raw["offline"],
                    "incognito": raw["incognito_mode"],
                    "is_stream": is_track & (ms >= STREAM_MIN_MS),
                    "dt": day,
                    "utc_hour": start.dt.hour,
                    "local_hour": local_hour(start, country),
                }
            )[STAGING_COLUMNS].drop_duplicates("event_id")
            del raw
            s["rows"] = len(fact)
        with stage("to_sql fact_streams", len(fact)):
            fact.to_sql("fact_streams", engine, if_exists="append", index=False, chunksize=10000)
        with stage("kpis (pandas)") as s:
            written = _seed_kpis(fact, day, engine, build_catalog(seed=SEED).artists, kpis)
            s["rows"] = written
        total = time.time() - started
    return {"stages": stage.rows, "seconds": total, "fact_rows": len(fact)}


def _seed_kpis(fact, day: dt.date, engine, artists, kpis) -> int:
    """The ten KPI tables computed from the day's frame in pandas, written with to_sql."""
    import pandas as pd

    stamp = pd.Timestamp(day)
    fact = fact.assign(dt=stamp)
    streams = fact[fact["is_stream"]]
    tracks = fact[fact["content_type"] == "track"]
    listeners = streams["account_id"].nunique()
    frames = {
        "kpi_daily_streams": pd.DataFrame(
            {
                "dt": [stamp],
                "plays": [len(fact)],
                "streams": [len(streams)],
                "listeners": [listeners],
                "minutes_played": [fact["ms_played"].sum() / kpis.MS_PER_MINUTE],
                "skip_rate": [tracks["skipped"].mean() if len(tracks) else None],
            }
        ),
        "kpi_active_users": pd.DataFrame(
            {"dt": [stamp], "dau": listeners, "wau": listeners, "mau": listeners}
        ).assign(stickiness=1.0 if listeners else None),
        "kpi_churn": pd.DataFrame(
            {"dt": [stamp], "base_accounts": [0], "churned_accounts": [0], "churn_rate": [None]}
        ),
        # One day of history: one cohort, its week 0.
        "kpi_retention": pd.DataFrame(
            {
                "cohort_week": [stamp - pd.Timedelta(days=stamp.weekday())],
                "week_offset": [0],
                "cohort_size": [listeners],
                "retained_accounts": [listeners],
                "retention_rate": [1.0],
            }
        ).iloc[: 1 if listeners else 0],
    }

    def grouped(keys: list[str]) -> pd.DataFrame:
        return (
            streams.groupby(["dt", *keys])
            .agg(
                streams=("event_id", "size"),
                listeners=("account_id", "nunique"),
                ms_played=("ms_played", "sum"),
            )
            .reset_index()
        )

    frames["kpi_engagement_by_region_hour"] = kpis.engagement(
        grouped(["country", "local_hour"]), ["country", "local_hour"]
    )
    frames["kpi_engagement_by_utc_hour"] = kpis.engagement(grouped(["utc_hour"]), ["utc_hour"])
    frames["kpi_top_artists"] = kpis.top_list(grouped(["artist_name"]), ["artist_name"])[
        ["dt", "rank", "artist_name", "streams", "listeners", "minutes_played"]
    ]
    by_track = (
        streams.groupby(["dt", "track_id"])
        .agg(
            track_name=("track_name", "min"),
            artist_name=("artist_name", "min"),
            streams=("event_id", "size"),
            listeners=("account_id", "nunique"),
            ms_played=("ms_played", "sum"),
        )
        .reset_index()
    )
    frames["kpi_top_tracks"] = kpis.top_list(by_track, ["track_name", "artist_name", "track_id"])[
        ["dt", "rank", "track_id", "track_name", "artist_name", "streams", "listeners"]
        + ["minutes_played"]
    ]
    genre_of = artists.assign(
        genre=artists["genres"].map(lambda g: g[0] if len(g) else "unknown")
    ).set_index("artist_name")["genre"]
    genres = streams.assign(genre=streams["artist_name"].map(genre_of).fillna("unknown"))
    frames["kpi_genre_share"] = kpis.shares(
        genres.groupby(["dt", "genre"]).size().rename("streams").reset_index(), "streams"
    )
    frames["kpi_platform_mix"] = kpis.shares(
        fact.groupby(["dt", "platform"]).size().rename("plays").reset_index(), "plays"
    )
    written = 0
    for table, frame in frames.items():
        frame.to_sql(table, engine, if_exists="append", index=False, chunksize=10000)
        written += len(frame)
    return written


STEP_STAGES = {
    "lake__raw_listening_events": "raw (list landed files)",
    "staging_streams": "staging (parse, stage, validate, Parquet)",
    "warehouse__fact_streams": "fact_streams load",
    "warehouse__agg_account_daily": "aggregates",
    "warehouse__agg_artist_daily": "aggregates",
    "warehouse__agg_track_daily": "aggregates",
    "warehouse__agg_account_hourly": "aggregates",
    "warehouse__dim_tracks": "dimensions",
    "warehouse__dim_artists": "dimensions",
    "warehouse__dim_accounts": "dimensions",
    "lake__dashboard": "dashboard",
}
STAGE_ORDER = [
    "raw (list landed files)",
    "staging (parse, stage, validate, Parquet)",
    "fact_streams load",
    "aggregates",
    "dimensions",
    "KPIs",
    "dashboard",
    "checks",
]


def _stage_of(step_key: str) -> str:
    """Asset steps by layer; every other step of the job is an asset check."""
    if step_key in STEP_STAGES:
        return STEP_STAGES[step_key]
    from spotify_platform.core.contracts.tables import TABLES

    if step_key.removeprefix("warehouse__") in TABLES and step_key.startswith("warehouse__kpi_"):
        return "KPIs"
    return "checks"


def platform_worker(spec: dict) -> dict:
    """The real Dagster job over landed raw files: one run for the whole range of days."""
    from dagster import DagsterInstance

    from spotify_platform.cli import run_range
    from spotify_platform.definitions import build_definitions

    first = dt.date.fromisoformat(spec["first"])
    last = dt.date.fromisoformat(spec["last"])
    resources = _resources(spec)
    resources["warehouse"].init_schema()
    defs = build_definitions(resources)
    ranges = [(first, last)] if spec.get("single_run", True) else _each_day(first, last)
    with tempfile.TemporaryDirectory() as home, RssSampler() as sampler:
        instance = DagsterInstance.local_temp(home, overrides=QUIET_INSTANCE)
        started = time.time()
        for a, b in ranges:
            if not run_range(a, b, defs=defs, instance=instance):
                raise RuntimeError(f"run for {a}..{b} failed")
        seconds = time.time() - started
        steps = []
        for run in instance.get_runs():
            for stat in instance.get_run_step_stats(run.run_id):
                steps.append(
                    {
                        "step": stat.step_key,
                        "seconds": (stat.end_time or 0) - (stat.start_time or 0),
                        "peak_rss": sampler.peak(stat.start_time or 0, stat.end_time or 0),
                    }
                )
        instance.dispose()
    counts = resources["warehouse"].read_frame("SELECT COUNT(*) AS n FROM fact_streams").iloc[0, 0]
    return {
        "seconds": seconds,
        "runs": len(ranges),
        "steps": steps,
        "stages": _group_steps(steps),
        "fact_rows": int(counts),
    }


def _each_day(first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date]]:
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return [(d, d) for d in days]


def _group_steps(steps: list[dict]) -> list[dict]:
    stages = {
        name: {"stage": name, "seconds": 0.0, "peak_rss": 0, "steps": 0} for name in STAGE_ORDER
    }
    for step in steps:
        row = stages[_stage_of(step["step"])]
        row["seconds"] += step["seconds"]
        row["peak_rss"] = max(row["peak_rss"], step["peak_rss"])
        row["steps"] += 1
    return [row for row in stages.values() if row["steps"]]


def _resources(spec: dict) -> dict:
    from spotify_platform.defs.resources import (
        IdentityResource,
        LakeResource,
        SimulatorResource,
        WarehouseResource,
    )
    from spotify_platform.defs.resources.catalog import OfflineCatalogResource
    from spotify_platform.defs.resources.spotify_accounts import SpotifyAccountsResource

    return {
        "lake": LakeResource(url=f"file://{Path(spec['lake']).absolute()}"),
        "warehouse": WarehouseResource(url=spec["url"]),
        "identity": IdentityResource(hmac_key=HMAC_KEY),
        "simulator": SimulatorResource(accounts=0),
        "spotify": OfflineCatalogResource(seed=SEED),
        "spotify_accounts": SpotifyAccountsResource(),
    }


def kpi_worker(spec: dict) -> dict:
    """Fill fact_streams and the aggregates with `days` days, then time each KPI asset.

    The days are the staged Parquet of one simulated day, shifted day by day with the
    accounts rotated, loaded through `WarehouseResource.replace_days` (so the load rate at a
    growing table is measured too). Then every KPI asset is materialized for the last day,
    and EXPLAIN shows how MariaDB answers each KPI query.
    """
    import pandas as pd
    from dagster import AssetSelection, DagsterInstance, materialize

    from spotify_platform.cli import QUIET_RUN_CONFIG
    from spotify_platform.core.kpis import lifecycle, sessions
    from spotify_platform.core.kpis import measures as kpis
    from spotify_platform.core.lake.layout import staging_key
    from spotify_platform.defs.assets import kpis as kpi_assets

    resources = _resources(spec)
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
            frame = _shifted(base, day, accounts, i)
            started = time.time()
            warehouse.replace_days("fact_streams", [day], frame)
            load_s = time.time() - started
            warehouse.replace_days("agg_account_daily", [day], kpis.account_daily(frame))
            warehouse.replace_days("agg_artist_daily", [day], kpis.artist_daily(frame))
            warehouse.replace_days("agg_track_daily", [day], kpis.track_daily(frame))
            warehouse.replace_days("agg_account_hourly", [day], kpis.account_hourly(frame))
            warehouse.replace_days(
                "agg_account_segment_daily", [day], lifecycle.account_segment_daily(frame)
            )
            warehouse.replace_days("agg_account_sessions", [day], sessions.account_sessions(frame))
            loads.append({"day": day.isoformat(), "rows": len(frame), "seconds": load_s})
        warehouse.read_frame(
            "ANALYZE TABLE fact_streams, agg_account_daily, agg_artist_daily, agg_track_daily, "
            "agg_account_hourly, agg_account_segment_daily, agg_account_sessions"
        )
        defs_assets = [
            a
            for a in kpi_assets.__dict__.values()
            if hasattr(a, "keys") and hasattr(a, "op") and getattr(a, "partitions_def", None)
        ]
        timings = {}
        with tempfile.TemporaryDirectory() as home:
            instance = DagsterInstance.local_temp(home, overrides=QUIET_INSTANCE)
            for asset in defs_assets:
                started = time.time()
                result = materialize(
                    [asset],
                    selection=AssetSelection.assets(asset),
                    partition_key=days[-1].isoformat(),
                    resources={"warehouse": warehouse},
                    instance=instance,
                    run_config=QUIET_RUN_CONFIG,
                )
                assert result.success
                timings[asset.key.to_user_string()] = time.time() - started
            instance.dispose()
    plans = explain_kpis(warehouse, days[-1])
    total = warehouse.read_frame("SELECT COUNT(*) AS n FROM fact_streams").iloc[0, 0]
    return {
        "fact_rows": int(total),
        "loads": loads,
        "kpi_seconds": timings,
        "explain": plans,
        "table_bytes": _table_bytes(warehouse),
        "rows_per_day": int(pd.Series([r["rows"] for r in loads]).mean()),
    }


def _shifted(base, day: dt.date, accounts, offset: int):
    """The base day's rows moved to `day`, each account replaced by another one."""
    import numpy as np
    import pandas as pd

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
    from spotify_platform.core.kpis import lifecycle
    from spotify_platform.core.kpis import measures as kpis

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


def _table_bytes(warehouse) -> dict[str, int]:
    frame = warehouse.read_frame(
        "SELECT TABLE_NAME AS t, DATA_LENGTH + INDEX_LENGTH AS b FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('fact_streams', 'agg_account_daily')"
    )
    return {str(r.t): int(r.b) for r in frame.itertuples()}


WORKERS: dict[str, Callable[[dict], dict]] = {
    "generate": generate_worker,
    "seed": seed_worker,
    "platform": platform_worker,
    "kpi": kpi_worker,
    "history": history_worker,
}


# --------------------------------------------------------------------------- orchestration


class Server:
    """Creates and drops the bench's own databases (`spt_bench_*`) on the MariaDB server."""

    def __init__(self, url: str, keep: bool) -> None:
        import sqlalchemy as sa

        self.url = sa.make_url(url)
        self.keep = keep
        self.engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        self.created: list[str] = []

    def database(self, purpose: str) -> str:
        import sqlalchemy as sa

        name = f"spt_bench_{purpose}_{secrets.token_hex(3)}"
        with self.engine.connect() as conn:
            conn.execute(
                sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            )
        self.created.append(name)
        query = {**self.url.query, "charset": "utf8mb4", "local_infile": "1"}
        return self.url.set(database=name, query=query).render_as_string(hide_password=False)

    def checksum(self, db_url: str) -> dict[str, Any]:
        """Order-independent digest of fact_streams: the same rows give the same figures."""
        import sqlalchemy as sa

        from spotify_platform.core.contracts.tables import TABLES

        columns = ", ".join(f"COALESCE(`{c.name}`, '~')" for c in TABLES["fact_streams"].columns)
        engine = sa.create_engine(db_url, poolclass=sa.NullPool)
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT COUNT(*) AS n, SUM(ms_played) AS ms, "
                    f"SUM(CRC32(CONCAT_WS('|', {columns}))) AS digest FROM fact_streams"
                )
            ).one()
        engine.dispose()
        return {"rows": int(row.n), "ms_played": int(row.ms or 0), "digest": int(row.digest or 0)}

    def drop_all(self) -> None:
        import sqlalchemy as sa

        if self.keep:
            return
        with self.engine.connect() as conn:
            for name in self.created:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        self.created.clear()


def run_worker(kind: str, spec: dict) -> dict:
    """Run one worker in a fresh interpreter; its own peak RSS comes from wait4."""
    with tempfile.NamedTemporaryFile("w+", suffix=".json", delete=False) as handle:
        out = handle.name
    command = [sys.executable, "-m", "spotify_platform.bench", "--worker", kind, json.dumps(spec)]
    started = time.time()
    process = subprocess.Popen([*command, out])
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - started
    try:
        if process.returncode != 0:
            raise RuntimeError(f"bench worker {kind} failed with exit code {process.returncode}")
        result = json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)
    result["process_peak_rss"] = usage.ru_maxrss * 1024
    result["process_wall_seconds"] = wall
    return result


def landed(lake: Path, first: dt.date, days: int, events: int) -> dict:
    """Raw input for the days, generated once and reused by later bench runs."""
    marker = lake / f"_generated_{first}_{days}_{events}.json"
    if marker.exists():
        return json.loads(marker.read_text())
    started = time.time()
    info = run_worker(
        "generate", {"lake": str(lake), "first": first.isoformat(), "days": days, "events": events}
    )
    info["seconds"] = time.time() - started
    marker.write_text(json.dumps(info))
    return info


def _fmt_rate(rows: int | None, seconds: float) -> str:
    return f"{rows / seconds:>10,.0f}" if rows and seconds > 0 else f"{'':>10}"


def print_stages(title: str, stages: list[dict], total: float, peak: int) -> None:
    print(f"\n{title}")
    print(f"  {'stage':<44} {'seconds':>8} {'rows/s':>10} {'peak RSS':>10}")
    for row in stages:
        rate = _fmt_rate(row.get("rows"), row["seconds"])
        print(
            f"  {row['stage']:<44} {row['seconds']:>8.2f} {rate} {row['peak_rss'] / MIB:>7.0f} MiB"
        )
    print(f"  {'total (process peak RSS)':<44} {total:>8.2f} {'':>10} {peak / MIB:>7.0f} MiB")


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def day_section(args: argparse.Namespace, server: Server, report: dict) -> None:
    events = args.events
    lake = BENCH_DIR / "data" / f"day_{events}"
    gen = landed(lake, DAY, 1, events)
    raw_events = gen["events_by_day"][DAY.isoformat()]
    print(f"\n== Day comparison: {raw_events:,} simulated events of {DAY} on MariaDB ==")
    seed_url = server.database("seed")
    seed = run_worker("seed", {"lake": str(lake), "day": DAY.isoformat(), "url": seed_url})
    plat_url = server.database("platform")
    platform = platform_run(lake, DAY, DAY, plat_url, raw_events)
    same = server.checksum(seed_url) == server.checksum(plat_url)
    print_stages(
        "seed-style path (read_json, clean, to_sql, KPIs in pandas)",
        seed["stages"],
        seed["seconds"],
        seed["process_peak_rss"],
    )
    print_stages(
        "platform path (Dagster job daily_pipeline, one run)",
        platform["stages"],
        platform["seconds"],
        platform["process_peak_rss"],
    )
    speedup = seed["seconds"] / platform["seconds"]
    load = next(s for s in platform["stages"] if s["stage"] == "fact_streams load")
    load_rate = platform["fact_rows"] / load["seconds"]
    peak = platform["process_peak_rss"]
    print("\n  target                                         measured        verdict")
    print(
        f"  end to end >= {TARGET_DAY_SPEEDUP:.0f}x seed path"
        f"                       {speedup:>6.1f}x         {verdict(speedup >= TARGET_DAY_SPEEDUP)}"
    )
    print(
        f"  fact_streams load >= {TARGET_LOAD_ROWS_PER_S:,} rows/s"
        f"              {load_rate:>9,.0f}       {verdict(load_rate >= TARGET_LOAD_ROWS_PER_S)}"
    )
    print(
        f"  peak RSS <= {TARGET_PEAK_RSS / GIB:.1f} GiB                             "
        f"{peak / GIB:>6.2f} GiB     {verdict(peak <= TARGET_PEAK_RSS)}"
    )
    print(
        f"  same fact_streams rows (count, ms, digest)            {str(same):>6}"
        f"         {verdict(same)}"
    )
    report["day"] = {
        "events": raw_events,
        "seed": seed,
        "platform": platform,
        "speedup": speedup,
        "fact_load_rows_per_s": load_rate,
        "same_fact_rows": same,
    }


def platform_run(
    lake: Path, first: dt.date, last: dt.date, url: str, events: int, single_run: bool = True
) -> dict:
    result = run_worker(
        "platform",
        {
            "lake": str(lake),
            "first": first.isoformat(),
            "last": last.isoformat(),
            "url": url,
            "single_run": single_run,
        },
    )
    for row in result["stages"]:
        if row["stage"] == "fact_streams load":
            row["rows"] = result["fact_rows"]
        elif row["stage"].startswith("staging"):
            row["rows"] = events
    return result


def scaling_section(args: argparse.Namespace, server: Server, report: dict) -> None:
    print("\n== Scaling: one day, platform path ==")
    print(f"  {'events':>10} {'seconds':>8} {'us/event':>9} {'fact rows/s':>12} {'peak RSS':>10}")
    rows = []
    for events in args.scaling:
        lake = BENCH_DIR / "data" / f"day_{events}"
        gen = landed(lake, DAY, 1, events)
        raw_events = gen["events_by_day"][DAY.isoformat()]
        result = platform_run(lake, DAY, DAY, server.database("scale"), raw_events)
        load = next(s for s in result["stages"] if s["stage"] == "fact_streams load")
        rows.append(
            {
                "events": raw_events,
                "seconds": result["seconds"],
                "peak_rss": result["process_peak_rss"],
                "fact_rows_per_s": result["fact_rows"] / load["seconds"],
                "stages": result["stages"],
            }
        )
        print(
            f"  {raw_events:>10,} {result['seconds']:>8.2f} "
            f"{result['seconds'] / raw_events * 1e6:>9.2f} "
            f"{rows[-1]['fact_rows_per_s']:>12,.0f} {result['process_peak_rss'] / MIB:>6.0f} MiB"
        )
        server.drop_all()
    report["scaling"] = rows


def backfill_section(args: argparse.Namespace, server: Server, report: dict) -> None:
    days, events = args.backfill_days, args.backfill_events
    first = DAY - dt.timedelta(days=days - 1)
    lake = BENCH_DIR / "data" / f"backfill_{days}x{events}"
    gen = landed(lake, first, days, events)
    total_events = sum(gen["events_by_day"].values())
    print(
        f"\n== Backfill: {days} days x ~{events:,} events ({total_events:,} in all), "
        "one run vs one run per day =="
    )
    single_url, many_url = server.database("bf1"), server.database("bfn")
    single = platform_run(lake, first, DAY, single_url, total_events)
    many = platform_run(lake, first, DAY, many_url, total_events, single_run=False)
    same = server.checksum(single_url) == server.checksum(many_url)
    ratio = many["seconds"] / single["seconds"]
    print(f"  {'':<28} {'seconds':>8} {'runs':>5} {'peak RSS':>10}")
    for name, result in (("single run (single_run())", single), (f"{days} runs", many)):
        print(
            f"  {name:<28} {result['seconds']:>8.2f} {result['runs']:>5} "
            f"{result['process_peak_rss'] / MIB:>6.0f} MiB"
        )
    print(
        f"  one run >= {TARGET_BACKFILL_SPEEDUP:.0f}x faster than {days} runs: {ratio:.1f}x  "
        f"{verdict(ratio >= TARGET_BACKFILL_SPEEDUP)}"
    )
    print(f"  same fact_streams rows either way: {same}")
    report["backfill"] = {
        "days": days,
        "events": total_events,
        "single_run": single,
        "runs": many,
        "speedup": ratio,
        "same": same,
    }
    server.drop_all()


def kpi_section(args: argparse.Namespace, server: Server, report: dict) -> None:
    days, per_day = args.kpi_days, args.kpi_events
    lake = BENCH_DIR / "data" / f"day_{per_day}"
    gen = landed(lake, DAY, 1, per_day)
    raw_events = gen["events_by_day"][DAY.isoformat()]
    url = server.database("kpi")
    # Stage the source day once through the real job; the KPI worker replicates it.
    platform_run(lake, DAY, DAY, url, raw_events)
    first = DAY + dt.timedelta(days=1)
    result = run_worker(
        "kpi",
        {
            "lake": str(lake),
            "url": url,
            "source_day": DAY.isoformat(),
            "first": first.isoformat(),
            "days": days,
        },
    )
    print(
        f"\n== KPIs for one day on a {days}-day fact_streams of {result['fact_rows']:,} rows "
        f"({sum(result['table_bytes'].values()) / GIB:.1f} GiB with indexes) =="
    )
    load_rows = sum(r["rows"] for r in result["loads"])
    load_s = sum(r["seconds"] for r in result["loads"])
    last = result["loads"][-1]
    print(
        f"  loading it: {load_rows / load_s:,.0f} rows/s overall, "
        f"{last['rows'] / last['seconds']:,.0f} rows/s for the last day"
    )
    print(f"  {'asset':<44} {'seconds':>8}  access (table:type:key)")
    worst = 0.0
    for key, seconds in result["kpi_seconds"].items():
        name = key.split("/")[-1]
        plan = result["explain"].get(name, [])
        access = ", ".join(f"{p['table']}:{p['type']}:{p['key']}" for p in plan)
        print(f"  {key:<44} {seconds:>8.2f}  {access}")
        worst = max(worst, seconds)
    # Retention cohorts span all history by definition: its read of agg_account_daily is
    # the one whole-table read, and is expected.
    full_scans = [
        (name, p["table"])
        for name, plan in result["explain"].items()
        for p in plan
        if p["type"] == "ALL" and name != "kpi_retention" and not str(p["table"]).startswith("<")
    ]
    print(
        f"  every KPI asset under {TARGET_KPI_SECONDS:.0f} s: slowest {worst:.2f} s  "
        f"{verdict(worst < TARGET_KPI_SECONDS)}; full scans of fact tables: "
        f"{full_scans or 'none'}"
    )
    report["kpi"] = result
    server.drop_all()


SECTIONS = {
    "day": day_section,
    "scaling": scaling_section,
    "backfill": backfill_section,
    "kpi": kpi_section,
    "history": history_section,
}


def _sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m spotify_platform.bench", description=__doc__)
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="repeatable")
    parser.add_argument("--events", type=int, default=1_000_000, help="day comparison size")
    parser.add_argument("--scaling", type=_sizes, default=[100_000, 1_000_000, 3_000_000])
    parser.add_argument("--backfill-days", type=int, default=30)
    parser.add_argument("--backfill-events", type=int, default=30_000, help="events per day")
    parser.add_argument("--kpi-days", type=int, default=30)
    parser.add_argument("--kpi-events", type=int, default=1_000_000, help="fact rows per day")
    parser.add_argument("--full", action="store_true", help="1M events a day in the backfill")
    parser.add_argument("--history-scale", type=float, default=1.0, help="share of the plays")
    parser.add_argument(
        "--history-shape", dest="history_shapes", action="append", choices=sorted(SHAPES)
    )
    parser.add_argument("--mysql-url", default=os.environ.get("BENCH_MYSQL_URL", DEFAULT_MYSQL_URL))
    parser.add_argument("--keep", action="store_true", help="keep the spt_bench_* databases")
    parser.add_argument(
        "--worker", nargs=3, metavar=("KIND", "SPEC", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.full:
        args.backfill_events = 1_000_000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        kind, spec, out = args.worker
        result = WORKERS[kind](json.loads(spec))
        Path(out).write_text(json.dumps(result, default=str))
        return 0
    BENCH_DIR.mkdir(exist_ok=True)
    server = Server(args.mysql_url, keep=args.keep)
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "args": {k: v for k, v in vars(args).items() if k != "worker"},
    }
    started = time.time()
    try:
        for name in args.only or list(SECTIONS):
            SECTIONS[name](args, server, report)
            server.drop_all()
    finally:
        server.drop_all()
        report["seconds"] = time.time() - started
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        text = json.dumps(report, indent=2, default=str)
        (BENCH_DIR / f"bench-{stamp}.json").write_text(text)
        (BENCH_DIR / "latest.json").write_text(text)
    print(f"\nbench finished in {report['seconds']:.0f} s; JSON in {BENCH_DIR}/latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
