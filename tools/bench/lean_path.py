"""The lean path the issue sets the platform's target against: the least a pandas script does to
get a day's listening and its headline KPIs into MySQL, with nothing of the platform's.

Exactly as the issue words it: `read_json(lines=True)` with the default engine per raw
`.jsonl.gz` file of the day, `concat`; rows without a track name dropped; `ts` to naive UTC;
a stream flag `ms_played >= 30000`; the listening columns kept and renamed; `to_sql` with
`chunksize=10000` into the table it creates itself (TEXT columns, no key, no index); the day's
streams, listeners, minutes and top 50 artists computed in pandas and written with `to_sql`.
"""

import datetime as dt
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from tools.bench.measure import RssSampler, Stages

STREAM_MS = 30_000
TOP_ARTISTS = 50
LISTENING_COLUMNS = {
    "ts": "ended_at",
    "account_id": "account_id",
    "ms_played": "ms_played",
    "master_metadata_track_name": "track_name",
    "master_metadata_album_artist_name": "artist_name",
    "master_metadata_album_album_name": "album_name",
    "spotify_track_uri": "track_uri",
    "conn_country": "country",
    "platform": "platform",
    "reason_start": "reason_start",
    "reason_end": "reason_end",
    "shuffle": "shuffle",
    "skipped": "skipped",
    "is_stream": "is_stream",
}


def raw_files(lake: Path, day: dt.date) -> list[Path]:
    """The day's raw `.jsonl.gz` files, whatever their source: what a script would glob."""
    from spotify_platform.core.lake.layout import raw_prefix

    return sorted((lake / raw_prefix(day)).glob("**/*.jsonl.gz"))


def lean_kpis(listening: pd.DataFrame, day: dt.date) -> dict[str, pd.DataFrame]:
    """The day's streams, listeners and minutes, and its top artists by streams."""
    streams = listening[listening["is_stream"]]
    daily = pd.DataFrame(
        {
            "dt": [pd.Timestamp(day)],
            "streams": [len(streams)],
            "listeners": [streams["account_id"].nunique()],
            "minutes_played": [listening["ms_played"].sum() / 60_000],
        }
    )
    top = (
        streams.groupby("artist_name")
        .agg(
            streams=("ms_played", "size"),
            listeners=("account_id", "nunique"),
            ms_played=("ms_played", "sum"),
        )
        .reset_index()
        .sort_values(["streams", "artist_name"], ascending=[False, True])
        .head(TOP_ARTISTS)
    )
    top = top.assign(
        dt=pd.Timestamp(day),
        rank=range(1, len(top) + 1),
        minutes_played=top["ms_played"] / 60_000,
    )[["dt", "rank", "artist_name", "streams", "listeners", "minutes_played"]]
    return {"lean_daily_kpis": daily, "lean_top_artists": top}


def lean_worker(spec: dict) -> dict:
    """The lean day: read_json per file, a minimal clean, to_sql, KPIs in pandas."""
    day = dt.date.fromisoformat(spec["day"])
    engine = sa.create_engine(spec["url"], poolclass=sa.NullPool)
    files = raw_files(Path(spec["lake"]), day)
    with RssSampler() as sampler:
        stage = Stages(sampler)
        started = time.time()
        with stage("read_json") as s:
            raw = pd.concat([pd.read_json(path, lines=True) for path in files], ignore_index=True)
            s["rows"] = len(raw)
        with stage("clean") as s:
            raw = raw.dropna(subset=["master_metadata_track_name"])
            raw["ts"] = pd.to_datetime(raw["ts"], utc=True).dt.tz_localize(None)
            raw["is_stream"] = raw["ms_played"] >= STREAM_MS
            listening = raw[list(LISTENING_COLUMNS)].rename(columns=LISTENING_COLUMNS)
            del raw
            s["rows"] = len(listening)
        with stage("to_sql listening_events", len(listening)):
            listening.to_sql(
                "listening_events", engine, if_exists="append", index=False, chunksize=10000
            )
        with stage("KPIs (pandas, to_sql)") as s:
            frames = lean_kpis(listening, day)
            for table, frame in frames.items():
                frame.to_sql(table, engine, if_exists="append", index=False, chunksize=10000)
            s["rows"] = sum(len(frame) for frame in frames.values())
        total = time.time() - started
    engine.dispose()
    return {
        "stages": stage.rows,
        "seconds": total,
        "files": len(files),
        "raw_rows": int(stage.rows[0]["rows"]),
        "listening_rows": len(listening),
        "stream_rows": int(listening["is_stream"].sum()),
    }
