"""Warehouse layer, dimensions: tracks, artists (described by the Spotify catalog where it
knows them, named after the latest play) and accounts (summaries of their days)."""

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Backoff,
    Failure,
    Jitter,
    MaterializeResult,
    RetryPolicy,
    multi_asset,
)

from spotify_platform.core.contracts.schemas import DimAccounts, DimArtists, DimTracks
from spotify_platform.core.contracts.tables import TABLE_DEFS, TABLES
from spotify_platform.core.kpis import measures as kpis
from spotify_platform.core.kpis import names
from spotify_platform.core.lake.chunks import staged_batches
from spotify_platform.core.lake.layout import api_raw_key
from spotify_platform.core.sources.api_payloads import parse_artists, parse_tracks
from spotify_platform.core.warehouse.frames import typed_frame
from spotify_platform.defs.assets.facts import COMMON, warehouse_spec
from spotify_platform.defs.partitions import days_of
from spotify_platform.defs.resources.catalog import (
    ARTIST_COLUMNS,
    TRACK_COLUMNS,
    SpotifyCatalogResource,
)
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.spotify_web_api import SpotifyRateLimited
from spotify_platform.defs.resources.warehouse import WarehouseResource

IN_CHUNK = 1000
TRACKS = AssetKey(["warehouse", "dim_tracks"])
ARTISTS = AssetKey(["warehouse", "dim_artists"])
ACCOUNTS = AssetKey(["warehouse", "dim_accounts"])


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
    lake: LakeResource,
    warehouse: WarehouseResource,
    days: list[dt.date],
    key: str,
    name_columns: list[str],
    also: list[str],
) -> pd.DataFrame:
    """The latest play of each `key` in the staged `days`, with its `name_seen_at`.

    Read a batch of days or a big day's chunk at a time: the latest play of each batch's
    latest plays is the latest of all (`names.latest_rows` orders plays totally, ties by
    position, and the candidates keep the order of the plays)."""
    columns = [key, *name_columns, *also, "ended_at"]
    candidates = [
        names.latest_plays(frame, [key], name_columns)
        for batch in staged_batches(lake, days, columns, warehouse.batch_rows, warehouse.chunk_rows)
        for frame in batch.frames()
    ]
    if not candidates:
        empty = pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
        return empty.rename(columns={"ended_at": names.SEEN_AT})
    plays = candidates[0] if len(candidates) == 1 else pd.concat(candidates, ignore_index=True)
    seen = plays if len(candidates) == 1 else names.latest_plays(plays, [key], name_columns)
    seen[names.SEEN_AT] = names.seen_at(seen.pop("ended_at"))
    return seen


def _dim_tracks(
    context: AssetExecutionContext,
    lake: LakeResource,
    warehouse: WarehouseResource,
    spotify: SpotifyCatalogResource,
    days: list[dt.date],
) -> MaterializeResult:
    track_names = ["track_name", "artist_name"]
    seen = _seen(lake, warehouse, days, "track_id", track_names, ["artist_id", "album_name"])
    if seen.empty:
        return MaterializeResult(
            asset_key=TRACKS,
            metadata={"new_tracks": 0, "described_by_catalog": 0, "renamed_tracks": 0},
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
        asset_key=TRACKS,
        metadata={
            "new_tracks": len(new),
            "described_by_catalog": int(known.sum()),
            "renamed_tracks": len(renamed),
        },
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


def _dim_artists(
    lake: LakeResource,
    warehouse: WarehouseResource,
    spotify: SpotifyCatalogResource,
    days: list[dt.date],
) -> MaterializeResult:
    seen = _seen(lake, warehouse, days, "artist_id", ["artist_name"], [])
    if seen.empty:
        return MaterializeResult(
            asset_key=ARTISTS, metadata={"new_artists": 0, "renamed_artists": 0}
        )
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
    return MaterializeResult(
        asset_key=ARTISTS, metadata={"new_artists": len(rows), "renamed_artists": len(renamed)}
    )


def _spotify_artist_ids(warehouse: WarehouseResource, artist_ids: list[str]) -> pd.DataFrame:
    links = _select_in(
        warehouse, "dim_tracks", ["artist_id", "spotify_artist_id"], "artist_id", artist_ids
    )
    return (
        links.dropna(subset=["spotify_artist_id"])
        .sort_values(["artist_id", "spotify_artist_id"])
        .drop_duplicates("artist_id")
    )


# Every day of the accounts that streamed or played in the run's days, in one statement: IN
# lists of a thousand ids each are much slower for a big day's tens of thousands of accounts.
ACCOUNT_HISTORY_SQL = """
SELECT account_id, dt, streams, country FROM agg_account_daily
WHERE account_id IN (
    SELECT account_id FROM agg_account_daily WHERE dt BETWEEN :first AND :last
)
"""


def _dim_accounts(warehouse: WarehouseResource, days: list[dt.date]) -> MaterializeResult:
    # Another run may be loading other days of these accounts: summaries are computed and
    # written in turns, so the last writer has seen every day the other one loaded.
    with warehouse.exclusive("dim_accounts"):
        history = warehouse.read_frame(
            kpis.query(ACCOUNT_HISTORY_SQL, first=days[0], last=days[-1])
        )
        frame = DimAccounts.validate(account_summary(history))
        warehouse.upsert("dim_accounts", frame)
    return MaterializeResult(asset_key=ACCOUNTS, metadata={"accounts_updated": len(frame)})


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


@multi_asset(
    name="warehouse_dimensions",
    specs=[
        warehouse_spec(
            TRACKS,
            "Tracks seen in plays, described by the Spotify catalog where it knows them; "
            "names from the latest play seen.",
        ),
        warehouse_spec(
            ARTISTS,
            "Artists seen in plays, with their primary genre ('unknown' where none); "
            "names from the latest play seen.",
            (TRACKS,),
        ),
        warehouse_spec(
            ACCOUNTS,
            "Pseudonymous accounts: first and latest stream day, active days, home country.",
            (AssetKey(["warehouse", "agg_account_daily"]),),
        ),
    ],
    can_subset=True,
    retry_policy=NETWORK_RETRY,
    partitions_def=COMMON["partitions_def"],
    backfill_policy=COMMON["backfill_policy"],
    pool=COMMON["pool"],
)
def warehouse_dimensions(
    context: AssetExecutionContext,
    lake: LakeResource,
    warehouse: WarehouseResource,
    spotify: SpotifyCatalogResource,
) -> Iterator[MaterializeResult]:
    """The three dimensions: accounts (from agg_account_daily) in a thread of their own beside
    tracks and then artists (the catalog's artists are found through the tracks). On SQLite,
    one writer at a time, accounts come last."""
    days = days_of(context)
    selected = context.selected_asset_keys
    beside = warehouse.writes_side_by_side
    with ThreadPoolExecutor(1, thread_name_prefix="dim-accounts") as pool:
        accounts = None
        if ACCOUNTS in selected and beside:
            accounts = pool.submit(_dim_accounts, warehouse, days)
        failure = None
        try:
            if TRACKS in selected:
                yield _dim_tracks(context, lake, warehouse, spotify, days)
            if ARTISTS in selected:
                yield _dim_artists(lake, warehouse, spotify, days)
        except Exception as exc:
            # Accounts do not depend on the catalog: they are reported before the failure.
            failure = exc
        if ACCOUNTS in selected:
            try:
                yield accounts.result() if accounts else _dim_accounts(warehouse, days)
            except Exception as exc:
                if failure is None:
                    raise
                context.log.error(f"dim_accounts failed too: {exc}")
        if failure is not None:
            raise failure
