"""Raw records → canonical stream records: typing and derivation of every staged column.

`canonicalise` types one frame of raw records at a time and marks those it cannot type with
a reason naming the field; the contract and the day's de-duplication come after it
(`quarantine`, `one_day`).
"""

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spotify_platform.core.contracts.schemas import StagingStreams
from spotify_platform.core.sources.countries import UNKNOWN_COUNTRY, local_hour
from spotify_platform.core.sources.identity import event_ids, name_ids, name_ids_where, pseudonymise
from spotify_platform.core.sources.platforms import normalise_platform
from spotify_platform.core.staging.columns import (
    coalesce,
    joined,
    labelled,
    large_strings,
    only_where,
    string_series,
    text,
)

STREAM_MIN_MS = 30_000
SKIP_REASONS = ("fwdbtn", "backbtn", "endplay")
STAGING_COLUMNS = list(StagingStreams.to_schema().columns)
_URI_PREFIX = "spotify:track:"
_TRACK_URI = r"^spotify:track:[0-9A-Za-z]{22}$"


def _instants(stamps_text: pd.Series) -> pd.Series:
    """ISO 8601 text to UTC instants; unparseable text becomes NaT.

    Arrow's cast parses the export's `...Z` timestamps about ten times faster than pandas;
    text it does not take (no zone, no seconds, invalid) goes through pandas' ISO 8601 parser.
    """
    try:
        stamps = pc.cast(pa.array(stamps_text.array), pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_datetime(stamps_text, utc=True, errors="coerce", format="ISO8601")
    return stamps.to_pandas().astype("datetime64[ns, UTC]").set_axis(stamps_text.index)


def _platforms(raw: pd.Series) -> pd.Series:
    """`normalise_platform` once per distinct raw string, as Arrow strings."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    labels = normalise_platform(pd.Series([*uniques, None], dtype=object)).tolist()
    return labelled(np.where(codes < 0, len(uniques), codes), labels, raw.index)


_FLAGS = {True: True, False: False, "true": True, "false": False}


def _flag(series: pd.Series) -> pd.Series:
    """Booleans as nullable; anything that is not a boolean (or its JSON text) is missing."""
    if isinstance(series.dtype, pd.BooleanDtype):
        return series
    return series.map(
        lambda v: (
            _FLAGS.get(v.lower() if isinstance(v, str) else v, pd.NA)
            if isinstance(v, bool | str)
            else pd.NA
        )
    ).astype("boolean")


def canonicalise(
    raw: pd.DataFrame,
    *,
    key: bytes,
    source: str | pd.Series,
    day: dt.date | pd.Series,
    pseudonyms: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Type and derive the canonical columns; adds `_reason` for records that cannot be typed.

    `source` and `day` are one value for all records, or one per record (several files of
    several days typed at once). `pseudonyms` is `pseudonymise`'s memo, shared by the slices
    of a day.
    """
    n = len(raw)
    reasons = pd.Series([None] * n, index=raw.index, dtype=object)

    def reject(mask: pd.Series, reason: str) -> None:
        reasons.loc[mask & reasons.isna()] = reason

    ts_text = text(raw["ts"])
    ended_at = _instants(ts_text)
    reject(ts_text.isna(), "ts: missing")
    reject(ended_at.isna(), "ts: not an ISO 8601 timestamp")

    ms = pd.to_numeric(raw["ms_played"], errors="coerce")
    reject(raw["ms_played"].isna(), "ms_played: missing")
    if raw["ms_played"].dtype == object:  # JSON true/false would pass as 1 and 0 ms
        booleans = raw["ms_played"].map(lambda v: isinstance(v, bool)).astype(bool)
        reject(booleans, "ms_played: not a number")
    reject(ms.isna() | (ms != np.floor(ms)), "ms_played: not a whole number")
    ms_played = ms.fillna(0).clip(-(2**62), 2**62).astype("int64")

    names = text(raw["account_id"])
    reject(names.isna(), "account_id: missing")

    track_name = text(raw["master_metadata_track_name"])
    artist_name = text(raw["master_metadata_album_artist_name"])
    album_name = text(raw["master_metadata_album_album_name"])
    track_uri = text(raw["spotify_track_uri"])
    episode_uri = text(raw["spotify_episode_uri"])
    audiobook_uri = text(raw["audiobook_chapter_uri"])
    episode_name = text(raw["episode_name"])
    show_name = text(raw["episode_show_name"])
    book_title = text(raw["audiobook_title"])
    chapter = text(raw["audiobook_chapter_title"])

    is_track = track_uri.notna() | track_name.notna()
    is_episode = ~is_track & (episode_uri.notna() | episode_name.notna())
    is_book = ~is_track & ~is_episode & (audiobook_uri.notna() | chapter.notna())
    content_type = labelled(
        np.select([is_track, is_episode, is_book], [0, 1, 2], 3),
        ["track", "episode", "audiobook", ""],
        raw.index,
    )
    reject(content_type == "", "content: no track, episode or audiobook fields")

    uris = pa.array(track_uri.array)
    from_uri = pc.fill_null(pc.match_substring_regex(uris, _TRACK_URI), False)
    uri_ids = only_where(
        string_series(pc.utf8_slice_codeunits(uris, len(_URI_PREFIX)), raw.index),
        from_uri.to_numpy(zero_copy_only=False),
    )
    # A track without a Spotify URI (old exports) is known by its names.
    named = is_track.to_numpy() & ~from_uri.to_numpy(zero_copy_only=False)
    surrogate = name_ids_where(named, artist_name, track_name)
    track_id = only_where(coalesce(uri_ids, surrogate), is_track)
    track_key = joined("name:", coalesce(artist_name, ""), "\x1f", coalesce(track_name, ""))
    other_key = coalesce(
        episode_uri,
        audiobook_uri,
        joined(
            "name:",
            coalesce(show_name, book_title, ""),
            "\x1f",
            coalesce(episode_name, chapter, ""),
        ),
    )
    content_key = coalesce(
        track_uri,
        string_series(
            pc.if_else(
                pa.array(is_track.to_numpy()), large_strings(track_key), large_strings(other_key)
            ),
            raw.index,
        ),
    )

    country = coalesce(text(raw["conn_country"]).str.upper(), UNKNOWN_COUNTRY)
    reason_end = text(raw["reason_end"])
    skipped_flag = _flag(raw["skipped"]).fillna(False).astype(bool)
    skipped = skipped_flag | reason_end.isin(SKIP_REASONS).to_numpy()

    account_id = pseudonymise(names, key, pseudonyms)
    ended = ended_at.fillna(pd.Timestamp("1970-01-01", tz="UTC"))
    started_at = ended - pd.to_timedelta(ms_played.clip(0, 10**12), unit="ms")
    frame = pd.DataFrame(
        {
            "event_id": event_ids(coalesce(account_id, ""), ended, content_key, ms_played),
            "account_id": account_id,
            "source": source
            if isinstance(source, pd.Series)
            else labelled(np.zeros(n, dtype=np.int64), [source], raw.index),
            "ended_at": ended,
            "started_at": started_at,
            "ms_played": ms_played,
            "content_type": content_type,
            "track_id": track_id,
            "track_name": only_where(track_name, is_track),
            "artist_id": name_ids(only_where(artist_name, is_track)),
            "artist_name": only_where(artist_name, is_track),
            "album_name": only_where(album_name, is_track),
            "episode_name": only_where(coalesce(episode_name, chapter), ~is_track),
            "show_name": only_where(coalesce(show_name, book_title), ~is_track),
            "country": country,
            "platform": _platforms(raw["platform"]),
            "reason_start": text(raw["reason_start"]),
            "reason_end": reason_end,
            "shuffle": _flag(raw["shuffle"]),
            "skipped": skipped.astype(bool),
            "offline": _flag(raw["offline"]),
            "incognito": _flag(raw["incognito_mode"]),
            "is_stream": ((content_type == "track") & (ms_played >= STREAM_MIN_MS)).astype(bool),
            "dt": day if isinstance(day, pd.Series) else pd.Timestamp(day),
            "utc_hour": started_at.dt.hour.astype("Int8"),
            "local_hour": local_hour(started_at, country).astype("Int8"),
            "_reason": reasons,
        },
        index=raw.index,
    )
    for name in (
        "event_id",
        "account_id",
        "source",
        "content_type",
        "track_id",
        "country",
        "platform",
    ):
        frame[name] = frame[name].astype("string[pyarrow]")
    return frame
