"""Aggregate tables from staged plays: each day's agg_* rows, computed in Arrow and pandas.

The KPI queries (`measures`) read these tables instead of the facts. Nothing here imports
Dagster; the aggregate assets and the benchmark call these functions.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spotify_platform.core.kpis import names


def _encoded(table: pa.Table, columns: Sequence[str]) -> tuple[pa.Table, dict[str, pa.Array]]:
    """The columns replaced by their dictionary codes, and the dictionaries to decode them.

    Arrow hashes int32 codes several times as fast as 32-character ids.
    """
    dictionaries = {}
    for name in columns:
        encoded = pc.dictionary_encode(table.column(name).combine_chunks())
        table = table.set_column(table.schema.get_field_index(name), name, encoded.indices)
        dictionaries[name] = encoded.dictionary
    return table, dictionaries


def _grouped(
    table: pa.Table,
    keys: list[str],
    measures: dict[str, tuple[str, str]],
    kept: dict[str, str],
    encode: Sequence[str] = (),
    latest: Sequence[str] = (),
) -> pd.DataFrame:
    """Arrow's hash aggregation of `table` by `keys`: each measure (column, how) as int64 under
    its name, each kept column by its function (as SQL's MIN), rows in key order.

    `encode` names text columns to group or count by their dictionary codes (`_encoded`);
    key columns among them are decoded before the rows are put in order. `latest` names
    columns taken from each group's latest play (`names.latest_rows`), for which the table
    holds `ended_at`; the play's position rides through the aggregation as a minimum.
    """
    aggregations = [*measures.values(), *kept.items()]
    table, dictionaries = _encoded(table, encode)
    if latest:
        rows = names.latest_rows(table, names.group_codes(table, keys), latest)
        spellings = table.select(latest)
        others = np.ones(len(table), dtype=bool)
        others[rows] = False
        latest_play = pa.array(np.arange(len(table), dtype=np.int64), mask=others)
        table = table.drop_columns([*latest, "ended_at"]).append_column("_latest", latest_play)
        aggregations.append(("_latest", "min"))
    grouped = table.group_by(keys, use_threads=False).aggregate(aggregations)
    for name, dictionary in dictionaries.items():
        if name in keys:
            position = grouped.schema.get_field_index(name)
            grouped = grouped.set_column(position, name, pc.take(dictionary, grouped[name]))
    if latest:
        picked = grouped["_latest_min"]
        grouped = grouped.drop_columns(["_latest_min"])
        for name in latest:
            grouped = grouped.append_column(name, spellings[name].take(picked))
    grouped = grouped.sort_by([(key, "ascending") for key in keys])
    frame = grouped.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    frame = frame.rename(
        columns={
            **{f"{column}_{how}": name for name, (column, how) in measures.items()},
            **{f"{name}_{how}": name for name, how in kept.items()},
        }
    )
    frame["dt"] = pd.to_datetime(frame["dt"]).astype("datetime64[ns]")
    for name in measures:
        frame[name] = frame[name].fillna(0).astype("int64")
    return frame


def _content_daily(
    plays: pd.DataFrame, key: str, latest: list[str], columns: list[str]
) -> pd.DataFrame:
    """Streams, listeners and ms_played per day and identity `key`, named by the `latest`
    columns of that day's latest play of it (a stream or not); only rows with a stream.

    Arrow's hash aggregation over the day's plays of the identity, the measures masked to
    streams: pandas would take a distinct count of a million accounts through Python objects.
    """
    table = pa.Table.from_pandas(
        plays[["dt", key, "ended_at", *latest, "account_id", "is_stream", "ms_played"]],
        preserve_index=False,
    )
    is_stream = pc.fill_null(table["is_stream"], False)
    masked = {
        "stream": pc.cast(is_stream, pa.int64()),
        "stream_account": pc.if_else(is_stream, table["account_id"], None),
        "stream_ms_played": pc.if_else(is_stream, pc.cast(table["ms_played"], pa.int64()), 0),
    }
    table = table.drop_columns(["account_id", "is_stream", "ms_played"])
    for name, values in masked.items():
        table = table.append_column(name, values)
    measures = {
        "streams": ("stream", "sum"),
        "listeners": ("stream_account", "count_distinct"),
        "ms_played": ("stream_ms_played", "sum"),
    }
    frame = _grouped(
        table, ["dt", key], measures, {}, encode=[key, "stream_account"], latest=latest
    )
    # Plays without the identity (episodes, audiobooks) make one group of no streams.
    return frame.loc[frame["streams"] > 0, columns].reset_index(drop=True)


def artist_daily(plays: pd.DataFrame) -> pd.DataFrame:
    """agg_artist_daily rows from staged plays: streams per day and artist id, under the
    name of the day's latest play of the artist."""
    return _content_daily(
        plays,
        "artist_id",
        ["artist_name"],
        ["dt", "artist_id", "artist_name", "streams", "listeners", "ms_played"],
    )


def track_daily(plays: pd.DataFrame) -> pd.DataFrame:
    """agg_track_daily rows from staged plays: per day and track id, with the track and
    artist names of the day's latest play of the track."""
    return _content_daily(
        plays,
        "track_id",
        ["track_name", "artist_name"],
        ["dt", "track_id", "track_name", "artist_name", "streams", "listeners", "ms_played"],
    )


HOURLY_KEYS = ["dt", "account_id", "utc_hour", "country", "local_hour", "platform"]


def account_hourly(plays: pd.DataFrame) -> pd.DataFrame:
    """agg_account_hourly rows from staged plays: per account, hour, country and platform.

    About 150k rows for a 1M-play day: the engagement and platform KPIs group these instead
    of scanning and sorting the day's facts, and listeners stay exact (a distinct count of
    accounts over the rows of a group).
    """
    is_stream = plays["is_stream"].astype(bool)
    table = pa.Table.from_pandas(
        plays[HOURLY_KEYS].assign(
            is_stream=is_stream.astype("int64"),
            stream_ms_played=plays["ms_played"].where(is_stream, 0).astype("int64"),
        ),
        preserve_index=False,
    )
    measures = {
        "plays": ("is_stream", "count"),
        "streams": ("is_stream", "sum"),
        "stream_ms_played": ("stream_ms_played", "sum"),
    }
    frame = _grouped(table, HOURLY_KEYS, measures, {})
    for hour in ("utc_hour", "local_hour"):
        frame[hour] = frame[hour].astype("Int8")
    return frame[[*HOURLY_KEYS, "plays", "streams", "stream_ms_played"]]


def account_daily(streams: pd.DataFrame) -> pd.DataFrame:
    """agg_account_daily rows from staged streams: one row per account and day."""
    columns = [
        "dt",
        "account_id",
        "plays",
        "track_plays",
        "skipped_track_plays",
        "streams",
        "ms_played",
        "stream_ms_played",
        "country",
        "streamed",
    ]
    if streams.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns}).astype(
            {
                "dt": "datetime64[ns]",
                "plays": "int64",
                "track_plays": "int64",
                "skipped_track_plays": "int64",
                "streams": "int64",
                "ms_played": "int64",
                "stream_ms_played": "int64",
                "streamed": bool,
            }
        )
    is_track = streams["content_type"].eq("track")
    frame = pd.DataFrame(
        {
            "dt": streams["dt"],
            "account_id": streams["account_id"],
            "plays": 1,
            "track_plays": is_track.astype("int64"),
            "skipped_track_plays": (is_track & streams["skipped"]).astype("int64"),
            "streams": streams["is_stream"].astype("int64"),
            "ms_played": streams["ms_played"].astype("int64"),
            "stream_ms_played": streams["ms_played"].where(streams["is_stream"], 0).astype("int64"),
        }
    )
    sums = frame.groupby(["dt", "account_id"], sort=True).sum().reset_index()
    country = (
        streams.groupby(["dt", "account_id", "country"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["dt", "account_id", "n", "country"], ascending=[True, True, False, True])
        .drop_duplicates(["dt", "account_id"])[["dt", "account_id", "country"]]
    )
    sums["streamed"] = sums["streams"] > 0
    return sums.merge(country, on=["dt", "account_id"], how="left")[columns]
