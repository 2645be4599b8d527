"""Warehouse layer: the star schema loaded from staging, one day at a time, atomically."""

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Backoff,
    Failure,
    Jitter,
    MaterializeResult,
    RetryPolicy,
    asset,
)

from spotify_platform.core.contracts.schemas import (
    AggAccountDaily,
    AggAccountHourly,
    AggAccountSegmentDaily,
    AggAccountSessions,
    AggArtistDaily,
    AggTrackDaily,
    DimAccounts,
    DimArtists,
    DimTracks,
)
from spotify_platform.core.contracts.tables import TABLE_DEFS, TABLES
from spotify_platform.core.kpis import aggregates, lifecycle, names, sessions
from spotify_platform.core.kpis import measures as kpis
from spotify_platform.core.lake.layout import api_raw_key
from spotify_platform.core.lake.staged import (
    StagedTables,
    joined_frame,
    staged_frames,
    staged_tables,
)
from spotify_platform.core.memory import release_memory
from spotify_platform.core.sources.api_payloads import parse_artists, parse_tracks
from spotify_platform.defs.partitions import daily_partitions, days_of
from spotify_platform.defs.resources.catalog import (
    ARTIST_COLUMNS,
    TRACK_COLUMNS,
    SpotifyCatalogResource,
)
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.spotify_web_api import SpotifyRateLimited
from spotify_platform.defs.resources.warehouse import (
    WAREHOUSE_POOL,
    WarehouseResource,
    WarehouseUnavailable,
    typed_frame,
)

STAGING = AssetKey(["lake", "staging_streams"])
IN_CHUNK = 1000
COMMON = {
    "group_name": "warehouse",
    "kinds": {"mysql", "pandas"},
    "partitions_def": daily_partitions,
    "backfill_policy": BackfillPolicy.single_run(),
    "pool": WAREHOUSE_POOL,
}


def day_batches(
    tables: StagedTables, batch_rows: int
) -> Iterator[tuple[list[dt.date], pd.DataFrame | None]]:
    """Consecutive days' staged rows put together until there are `batch_rows` of them;
    None for a batch of days without staged rows.

    Each batch is loaded in one transaction: years of small days go in a few, and a big
    day alone.
    """
    batch: list[dt.date] = []
    parts: list[pa.Table] = []
    weight = 0
    for day, table in tables:
        batch.append(day)
        if table is not None:
            parts.append(table)
            weight += table.num_rows
        if weight >= batch_rows:
            yield batch, joined_frame(parts)
            batch, parts, weight = [], [], 0
    if batch:
        yield batch, joined_frame(parts)


def _load_batches(
    warehouse: WarehouseResource,
    table: str,
    days: list[dt.date],
    tables: StagedTables,
    build: Callable[[pd.DataFrame], pd.DataFrame] = lambda frame: frame,
    log: logging.Logger | None = None,
) -> dict[str, int]:
    """Replace `table`'s rows for `days` by `build` of their staged rows, batch by batch;
    rows loaded per day. Each batch is logged as it is committed, with its rate.

    `build` sees a whole batch at once (it groups by dt among its keys), so a month of small
    days is built in a few calls rather than thirty; days without staged rows lose any rows
    they had.
    """
    per_day: dict[str, int] = {}
    started, plays = time.monotonic(), 0
    for batch, staged in day_batches(tables, warehouse.batch_rows):
        plays += staged.shape[0] if staged is not None else 0
        frame = build(staged) if staged is not None else pd.DataFrame({"dt": []})
        del staged
        counts = pd.to_datetime(frame["dt"]).value_counts()
        try:
            rows = warehouse.replace_days(table, batch, frame)
        except WarehouseUnavailable as exc:
            raise _lost_warehouse(exc, table, batch, sorted(per_day), len(days)) from None
        per_day.update({d.isoformat(): int(counts.get(pd.Timestamp(d), 0)) for d in batch})
        del frame
        release_memory(rows)
        if log is not None:
            log.info(_progress_line(table, batch, rows, len(per_day), len(days), plays, started))
    return per_day


def _progress_line(
    table: str, batch: list[dt.date], rows: int, done: int, total: int, plays: int, started: float
) -> str:
    """A committed batch: its days and rows, then the step so far (days, plays, rate)."""
    elapsed = max(time.monotonic() - started, 1e-9)
    span = f"{batch[0]}" if len(batch) == 1 else f"{batch[0]}..{batch[-1]}"
    return (
        f"{table}: {span} loaded ({rows:,} rows); {done:,} of {total:,} days, {plays:,} plays "
        f"in {elapsed:.1f} s ({plays / elapsed:,.0f} plays/s)"
    )


@asset(
    key=["warehouse", "fact_streams"],
    deps=[STAGING],
    description="One row per stream event; a day is replaced atomically (delete + insert).",
    **COMMON,
)
def fact_streams(
    context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> MaterializeResult:
    warehouse.check_connection()

    days = days_of(context)
    per_day = _load_batches(
        warehouse, "fact_streams", days, staged_tables(lake, days), log=context.log
    )
    _partition_row_counts(context, per_day)
    context.log.info(f"fact_streams: {sum(per_day.values())} rows over {len(per_day)} days")
    return MaterializeResult(metadata={"table": warehouse.display_url + "#fact_streams"})


def _partition_row_counts(context: AssetExecutionContext, per_day: dict[str, int]) -> None:
    """Each day's own row count on its own materialization. Metadata returned for a range is
    copied onto every day of it: a range's total (or a table of all its days) would be shown
    as each day's, and years of days would store that table once per day."""
    for day, rows in per_day.items():
        context.add_asset_metadata({"dagster/partition_row_count": rows}, partition_key=day)


def _aggregate_asset(
    table: str,
    description: str,
    columns: list[str],
    build: Callable[[pd.DataFrame], pd.DataFrame],
    model: type,
):
    """An aggregate table's asset: each day's rows computed from the staged day (the blocking
    reconciliation has proven it equal to fact_streams) rather than by scanning the facts."""

    @asset(
        key=["warehouse", table],
        deps=[STAGING, AssetKey(["warehouse", "fact_streams"])],
        description=description,
        **COMMON,
    )
    def _aggregate(
        context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
    ) -> MaterializeResult:
        days = days_of(context)
        per_day = _load_batches(
            warehouse,
            table,
            days,
            staged_tables(lake, days, columns),
            lambda staged: model.validate(build(staged)),
            log=context.log,
        )
        _partition_row_counts(context, per_day)
        return MaterializeResult()

    return _aggregate


agg_account_daily = _aggregate_asset(
    "agg_account_daily",
    "One row per account and day: the base for DAU/WAU/MAU, churn and retention.",
    ["dt", "account_id", "content_type", "skipped", "is_stream", "ms_played", "country"],
    aggregates.account_daily,
    AggAccountDaily,
)
agg_artist_daily = _aggregate_asset(
    "agg_artist_daily",
    "Streams, listeners and minutes per day and artist: top artists, genre shares.",
    ["dt", "account_id", "is_stream", "ms_played", "ended_at", "artist_id", "artist_name"],
    aggregates.artist_daily,
    AggArtistDaily,
)
agg_track_daily = _aggregate_asset(
    "agg_track_daily",
    "Streams, listeners and minutes per day and track: the top tracks' base.",
    ["dt", "account_id", "is_stream", "ms_played", "ended_at"]
    + ["track_id", "track_name", "artist_name"],
    aggregates.track_daily,
    AggTrackDaily,
)
agg_account_hourly = _aggregate_asset(
    "agg_account_hourly",
    "Plays and streams per account, hour, country and platform: engagement and platform mix.",
    [*aggregates.HOURLY_KEYS, "is_stream", "ms_played"],
    aggregates.account_hourly,
    AggAccountHourly,
)
agg_account_segment_daily = _aggregate_asset(
    "agg_account_segment_daily",
    "Streams per account, day, country and platform: the segments of listeners at risk.",
    ["dt", "account_id", "country", "platform", "is_stream"],
    lifecycle.account_segment_daily,
    AggAccountSegmentDaily,
)
agg_account_sessions = _aggregate_asset(
    "agg_account_sessions",
    "Each account's plays of the day cut into sessions on their own: kpi_sessions' base.",
    ["dt", "account_id", "started_at", "ended_at", "ms_played"],
    sessions.account_sessions,
    AggAccountSessions,
)


def _lost_warehouse(
    exc: WarehouseUnavailable, table: str, batch: list[dt.date], done: list[str], total: int
) -> Failure:
    """The warehouse went away in the middle of a range: say what stays and what to do.

    Each batch of days is its own transaction, so the days before the failure are loaded for
    good and the failing batch still holds its previous version; running the range again
    finishes it.
    """
    if len(batch) == 1:
        failed, kept = batch[0].isoformat(), "that day keeps its"
    else:
        failed, kept = f"{batch[0]}..{batch[-1]}", "those days keep their"
    return Failure(
        description=(
            f"{exc}. {table}: {len(done)} of {total} days were loaded before {failed} failed "
            f"and stay loaded; {kept} previous rows. Run the same range again to finish."
        ),
        metadata={"days_loaded": done, "failed_days": [d.isoformat() for d in batch]},
    )


def _select_in(
    warehouse: WarehouseResource, table: str, columns: list[str], key: str, ids: list[str]
) -> pd.DataFrame:
    """Rows of `table` whose `key` is in `ids`, fetched in bounded IN lists."""
    t = TABLES[table]
    frames = [
        warehouse.read_frame(
            sa.select(*(t.c[c] for c in columns)).where(t.c[key].in_(ids[i : i + IN_CHUNK]))
        )
        for i in range(0, len(ids), IN_CHUNK)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _fetch_landed(
    lake: LakeResource,
    endpoint: str,
    day: dt.date,
    ids: list[str],
    fetch: Callable[[list[str]], list[dict]],
) -> list[dict]:
    """Fetch catalog objects and land the raw JSON in the lake before anything parses it.

    A rate limit longer than the resource will wait fails the step at once, without Dagster
    retries: the wait (up to a day) is in the message, and the next scheduled run resumes.
    """
    if not ids:
        return []
    try:
        payloads = fetch(ids)
    except SpotifyRateLimited as exc:
        raise Failure(description=str(exc), allow_retries=False) from None
    name = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:20]
    lake.write_bytes(
        api_raw_key(endpoint, day, name), json.dumps(payloads, ensure_ascii=False).encode()
    )
    return payloads


NETWORK_RETRY = RetryPolicy(
    max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


def _named_rows(
    warehouse: WarehouseResource,
    table: str,
    seen: pd.DataFrame,
    name_columns: list[str],
    also: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(new, renamed): the `seen` latest plays whose ids the dimension lacks, and its rows
    that they rename (`names.renamed`), whole. Run under the table's lock, so that runs
    naming the same ids from different days take turns and the latest play wins."""
    key = TABLE_DEFS[table].primary_key[0]
    compared = [key, *name_columns, *also, names.SEEN_AT]
    stored = typed_frame(_select_in(warehouse, table, compared, key, sorted(seen[key])), table)
    new = seen[~seen[key].isin(stored[key])]
    changes = names.renamed(stored, seen, key, name_columns, also)
    columns = TABLE_DEFS[table].columns
    whole = typed_frame(_select_in(warehouse, table, columns, key, sorted(changes[key])), table)
    renamed = whole.drop(columns=compared[1:]).merge(changes, on=key)[columns]
    return new, renamed


def _written(new: pd.DataFrame, renamed: pd.DataFrame) -> pd.DataFrame:
    """A dimension's rows to write, new and renamed; an empty frame is left out, as its
    all-null columns would change the other's dtypes."""
    frames = [frame for frame in (new, renamed) if len(frame)] or [new]
    return pd.concat(frames, ignore_index=True)


def _seen(
    lake: LakeResource, days: list[dt.date], key: str, name_columns: list[str], also: list[str]
) -> pd.DataFrame:
    """The latest play of each `key` in the staged `days`, with its `name_seen_at`."""
    plays = staged_frames(lake, days, [key, *name_columns, *also, "ended_at"])
    if plays.empty:
        return plays.rename(columns={"ended_at": names.SEEN_AT})
    seen = names.latest_plays(plays, [key], name_columns)
    seen[names.SEEN_AT] = names.seen_at(seen.pop("ended_at"))
    return seen


@asset(
    key=["warehouse", "dim_tracks"],
    retry_policy=NETWORK_RETRY,
    deps=[STAGING],
    description="Tracks seen in plays, described by the Spotify catalog where it knows them; "
    "names from the latest play seen.",
    **COMMON,
)
def dim_tracks(
    context: AssetExecutionContext,
    lake: LakeResource,
    warehouse: WarehouseResource,
    spotify: SpotifyCatalogResource,
) -> MaterializeResult:
    days = days_of(context)
    track_names = ["track_name", "artist_name"]
    seen = _seen(lake, days, "track_id", track_names, ["artist_id", "album_name"])
    if seen.empty:
        return MaterializeResult(
            metadata={"new_tracks": 0, "described_by_catalog": 0, "renamed_tracks": 0}
        )
    with warehouse.exclusive("dim_tracks"):
        new, renamed = _named_rows(warehouse, "dim_tracks", seen, track_names, ["artist_id"])
        catalog_ids = [t for t in sorted(new["track_id"]) if not t.startswith("~")]
        payloads = _fetch_landed(lake, "tracks", days[-1], catalog_ids, spotify.fetch_tracks)
        described = parse_tracks(payloads).reindex(columns=TRACK_COLUMNS)
        rows = new.merge(
            described.drop(columns=["track_name", "artist_name", "album_name"], errors="ignore"),
            on="track_id",
            how="left",
        )
        known = rows["track_id"].isin(described["track_id"])
        rows["catalog_source"] = known.map({True: "catalog", False: "plays"})
        frame = DimTracks.validate(_track_rows(_written(rows, renamed)))
        warehouse.upsert("dim_tracks", frame)
    context.log.info(
        f"dim_tracks: {len(new)} new tracks ({int(known.sum())} from the catalog), "
        f"{len(renamed)} renamed"
    )
    return MaterializeResult(
        metadata={
            "new_tracks": len(new),
            "described_by_catalog": int(known.sum()),
            "renamed_tracks": len(renamed),
        }
    )


def _track_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """dim_tracks rows typed for its contract."""
    return pd.DataFrame(
        {
            "track_id": rows["track_id"],
            "track_name": rows["track_name"],
            "artist_id": rows["artist_id"],
            "artist_name": rows["artist_name"],
            names.SEEN_AT: rows[names.SEEN_AT],
            "spotify_artist_id": rows["spotify_artist_id"]
            .astype(object)
            .where(rows["spotify_artist_id"].notna(), None),
            "album_name": rows["album_name"],
            "duration_ms": pd.to_numeric(rows["duration_ms"]).astype("Int64"),
            "popularity": pd.to_numeric(rows["popularity"]).astype("Int64"),
            "explicit": rows["explicit"].astype("boolean"),
            "catalog_source": rows["catalog_source"],
        }
    ).reset_index(drop=True)


@asset(
    key=["warehouse", "dim_artists"],
    retry_policy=NETWORK_RETRY,
    deps=[AssetKey(["warehouse", "dim_tracks"])],
    description="Artists seen in plays, with their primary genre ('unknown' where none); "
    "names from the latest play seen.",
    **COMMON,
)
def dim_artists(
    context: AssetExecutionContext,
    lake: LakeResource,
    warehouse: WarehouseResource,
    spotify: SpotifyCatalogResource,
) -> MaterializeResult:
    days = days_of(context)
    seen = _seen(lake, days, "artist_id", ["artist_name"], [])
    if seen.empty:
        return MaterializeResult(metadata={"new_artists": 0, "renamed_artists": 0})
    with warehouse.exclusive("dim_artists"):
        new, renamed = _named_rows(warehouse, "dim_artists", seen, ["artist_name"])
        links = _spotify_artist_ids(warehouse, sorted(new["artist_id"]))
        new = new.merge(links, on="artist_id", how="left")
        spotify_ids = sorted(new["spotify_artist_id"].dropna().unique())
        payloads = _fetch_landed(lake, "artists", days[-1], spotify_ids, spotify.fetch_artists)
        described = parse_artists(payloads).reindex(columns=ARTIST_COLUMNS)
        new = new.merge(
            described[["spotify_artist_id", "genres"]], on="spotify_artist_id", how="left"
        )
        genres = new["genres"].map(lambda g: list(g) if isinstance(g, list | tuple) else [])
        rows = pd.DataFrame(
            {
                "artist_id": new["artist_id"],
                "artist_name": new["artist_name"],
                names.SEEN_AT: new[names.SEEN_AT],
                "spotify_artist_id": new["spotify_artist_id"]
                .astype(object)
                .where(new["spotify_artist_id"].notna(), None),
                "primary_genre": genres.map(lambda g: g[0][:64] if g else "unknown"),
                "genres": genres.map(lambda g: " | ".join(g)[:1024] if g else None),
            }
        )
        frame = DimArtists.validate(_written(rows, renamed))
        warehouse.upsert("dim_artists", frame)
    return MaterializeResult(metadata={"new_artists": len(rows), "renamed_artists": len(renamed)})


def _spotify_artist_ids(warehouse: WarehouseResource, artist_ids: list[str]) -> pd.DataFrame:
    links = _select_in(
        warehouse, "dim_tracks", ["artist_id", "spotify_artist_id"], "artist_id", artist_ids
    )
    return (
        links.dropna(subset=["spotify_artist_id"])
        .sort_values(["artist_id", "spotify_artist_id"])
        .drop_duplicates("artist_id")
    )


# Every day of the accounts that streamed or played in the run's days, in one statement (IN
# lists of a thousand ids each took 0.9 s for a 1M-play day's 44k accounts).
ACCOUNT_HISTORY_SQL = """
SELECT account_id, dt, streams, country FROM agg_account_daily
WHERE account_id IN (
    SELECT account_id FROM agg_account_daily WHERE dt BETWEEN :first AND :last
)
"""


@asset(
    key=["warehouse", "dim_accounts"],
    deps=[AssetKey(["warehouse", "agg_account_daily"])],
    description="Pseudonymous accounts: first and latest stream day, active days, home country.",
    **COMMON,
)
def dim_accounts(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    days = days_of(context)
    # Another run may be loading other days of these accounts: summaries are computed and
    # written in turns, so the last writer has seen every day the other one loaded.
    with warehouse.exclusive("dim_accounts"):
        history = warehouse.read_frame(
            kpis.query(ACCOUNT_HISTORY_SQL, first=days[0], last=days[-1])
        )
        frame = DimAccounts.validate(account_summary(history))
        warehouse.upsert("dim_accounts", frame)
    return MaterializeResult(metadata={"accounts_updated": len(frame)})


def account_summary(history: pd.DataFrame) -> pd.DataFrame:
    """dim_accounts rows from every agg_account_daily row of the accounts concerned."""
    if history.empty:
        return pd.DataFrame(
            {
                "account_id": pd.Series(dtype=object),
                "first_stream_dt": pd.Series(dtype="datetime64[ns]"),
                "last_stream_dt": pd.Series(dtype="datetime64[ns]"),
                "active_days": pd.Series(dtype="int64"),
                "home_country": pd.Series(dtype=object),
            }
        )
    history = history.assign(dt=pd.to_datetime(history["dt"]))
    streaming = history[history["streams"].astype("int64") > 0]
    spans = streaming.groupby("account_id")["dt"].agg(["min", "max", "count"])
    latest = history.sort_values("dt").drop_duplicates("account_id", keep="last")
    summary = latest[["account_id", "country"]].merge(
        spans, left_on="account_id", right_index=True, how="left"
    )
    return pd.DataFrame(
        {
            "account_id": summary["account_id"],
            "first_stream_dt": summary["min"],
            "last_stream_dt": summary["max"],
            "active_days": summary["count"].fillna(0).astype("int64"),
            "home_country": summary["country"],
        }
    ).reset_index(drop=True)
