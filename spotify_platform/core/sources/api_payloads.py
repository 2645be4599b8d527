"""Spotify Web API JSON to platform frames and raw listening records: pure, no Dagster, no I/O.

Since 2026 the Web API leaves out track `popularity` / `available_markets` and artist
`followers` / `popularity` for development-mode apps, and artist `genres` cannot be relied on,
so every field is read as optional: a payload missing any of them still parses.
"""

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import pandas as pd

TRACK_FIELDS = (
    "track_id", "track_name", "spotify_artist_id", "artist_name", "album_name", "duration_ms",
    "popularity", "explicit",
)
ARTIST_FIELDS = ("spotify_artist_id", "artist_name", "genres")
_TRACK_DTYPES = {
    "track_id": object, "track_name": object, "spotify_artist_id": object, "artist_name": object,
    "album_name": object, "duration_ms": "Int64", "popularity": "Int64", "explicit": "boolean",
}
WEB_API_PLATFORM = "web_api"


def _objects(payloads: Iterable[object]) -> Iterator[dict]:
    """Dict payloads with an id, first occurrence only: batch answers hold nulls for unknown ids."""
    seen: set[str] = set()
    for payload in payloads:
        if not isinstance(payload, dict):
            continue
        object_id = payload.get("id")
        if not object_id or object_id in seen:
            continue
        seen.add(object_id)
        yield payload


def _first(items: object) -> dict:
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return {}


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_tracks(payloads: Iterable[object]) -> pd.DataFrame:
    """Track objects (`GET /tracks/{id}` bodies or batch items) to rows with TRACK_FIELDS."""
    rows = []
    for track in _objects(payloads):
        artist = _first(track.get("artists"))
        album = track.get("album") if isinstance(track.get("album"), dict) else {}
        explicit = track.get("explicit")
        rows.append(
            {
                "track_id": track["id"],
                "track_name": track.get("name"),
                "spotify_artist_id": artist.get("id"),
                "artist_name": artist.get("name"),
                "album_name": album.get("name"),
                "duration_ms": _int_or_none(track.get("duration_ms")),
                "popularity": _int_or_none(track.get("popularity")),
                "explicit": explicit if isinstance(explicit, bool) else None,
            }
        )
    frame = pd.DataFrame(rows, columns=list(TRACK_FIELDS))
    return frame.astype(_TRACK_DTYPES)


def parse_artists(payloads: Iterable[object]) -> pd.DataFrame:
    """Artist objects to rows with ARTIST_FIELDS; `genres` is always a list, possibly empty."""
    rows = []
    for artist in _objects(payloads):
        genres = artist.get("genres")
        rows.append(
            {
                "spotify_artist_id": artist["id"],
                "artist_name": artist.get("name"),
                "genres": [g for g in genres if isinstance(g, str)]
                if isinstance(genres, list)
                else [],
            }
        )
    return pd.DataFrame(rows, columns=list(ARTIST_FIELDS)).astype(object)


def played_at_to_ts(played_at: str) -> str:
    """`played_at` ("2026-03-01T12:34:56.789Z") as an export-style `ts` at second precision."""
    moment = datetime.fromisoformat(played_at.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recently_played_records(items: Iterable[dict], account_id: str) -> list[dict]:
    """`/me/player/recently-played` items as raw listening records (RAW_FIELDS).

    The endpoint reports no play length, country, IP or start/end reasons: `ms_played` is the
    track's full `duration_ms` (an upper bound, so skips look like full plays), and the other
    fields are None. `ts` is `played_at`; Spotify does not document whether that marks the start
    or the end of the play, while an export's `ts` marks the end.
    Duplicate (played_at, uri) pairs, as overlapping pages return, are kept once.
    """
    records = []
    seen: set[tuple[str, str | None]] = set()
    for item in items:
        played_at = item.get("played_at") if isinstance(item, dict) else None
        track = item.get("track") if isinstance(item, dict) else None
        if not played_at or not isinstance(track, dict):
            continue
        uri = track.get("uri") or (f"spotify:track:{track['id']}" if track.get("id") else None)
        key = (played_at, uri)
        if key in seen:
            continue
        seen.add(key)
        records.append(_record(played_at, track, uri, account_id))
    return records


def _record(played_at: str, track: dict, uri: str | None, account_id: str) -> dict:
    is_episode = track.get("type") == "episode"
    album = track.get("album") if isinstance(track.get("album"), dict) else {}
    show = track.get("show") if isinstance(track.get("show"), dict) else {}
    artist = _first(track.get("artists")) or _first(album.get("artists"))
    return {
        "ts": played_at_to_ts(played_at),
        "platform": WEB_API_PLATFORM,
        "ms_played": _int_or_none(track.get("duration_ms")),
        "conn_country": None,
        "ip_addr": None,
        "master_metadata_track_name": None if is_episode else track.get("name"),
        "master_metadata_album_artist_name": None if is_episode else artist.get("name"),
        "master_metadata_album_album_name": None if is_episode else album.get("name"),
        "spotify_track_uri": None if is_episode else uri,
        "episode_name": track.get("name") if is_episode else None,
        "episode_show_name": show.get("name") if is_episode else None,
        "spotify_episode_uri": uri if is_episode else None,
        "audiobook_title": None,
        "audiobook_uri": None,
        "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None,
        "reason_start": None,
        "reason_end": None,
        "shuffle": None,
        "skipped": None,
        "offline": None,
        "offline_timestamp": None,
        "incognito_mode": None,
        "account_id": account_id,
    }
