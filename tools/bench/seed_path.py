"""The seed-style path the platform is measured against: one day read with
`read_json(lines=True)`, cleaned in pandas, written with `to_sql(chunksize=10000)`, KPIs in pandas.

Its clean is not the platform's staging, on purpose: it is the baseline, the way the
portfolio pipeline this platform grew from did it. It uses the package's identity, country
and platform rules, so that its fact_streams rows must equal the platform path's (the day
section compares their digests).
"""

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd

from spotify_platform.core.kpis import measures as kpis
from spotify_platform.core.sources.countries import local_hour
from spotify_platform.core.sources.identity import event_ids, name_ids, pseudonymise
from spotify_platform.core.sources.platforms import normalise_platform
from spotify_platform.core.sources.simulator import build_catalog
from spotify_platform.core.staging.canonical import SKIP_REASONS, STAGING_COLUMNS, STREAM_MIN_MS
from spotify_platform.defs.resources.warehouse import WarehouseResource
from tools.bench.generate import simulator_key
from tools.bench.measure import RssSampler, Stages
from tools.bench.settings import HMAC_KEY, SEED


def seed_worker(spec: dict) -> dict:
    """The seed-style day: read_json, a pandas clean, to_sql(chunksize=10000), pandas KPIs."""
    day = dt.date.fromisoformat(spec["day"])
    warehouse = WarehouseResource(url=spec["url"])
    warehouse.init_schema()
    engine = warehouse.engine
    with RssSampler() as sampler:
        stage = Stages(sampler)
        started = time.time()
        with stage("read_json") as s:
            raw = pd.read_json(Path(spec["lake"]) / simulator_key(day), lines=True)
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
            written = seed_kpis(fact, day, engine, build_catalog(seed=SEED).artists)
            s["rows"] = written
        total = time.time() - started
    return {"stages": stage.rows, "seconds": total, "fact_rows": len(fact)}


def seed_kpis(fact: pd.DataFrame, day: dt.date, engine, artists: pd.DataFrame) -> int:
    """The ten KPI tables computed from the day's frame in pandas, written with to_sql."""
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
