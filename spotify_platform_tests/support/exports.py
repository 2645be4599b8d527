"""Synthetic Spotify exports, small but with the real quirks.

Unsorted records, `offline_timestamp` in seconds and in milliseconds, podcast rows with null
track fields and the older `username` / decrypted IP fields. Tests compute their expected values
from these records, independently of the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from spotify_platform.core.sources.exports import ExportFile

AUDIOBOOK_FIELDS = (
    "audiobook_title", "audiobook_uri", "audiobook_chapter_uri", "audiobook_chapter_title",
)
OLD_PERSONAL = {
    "username": "alice.private",
    "ip_addr_decrypted": "203.0.113.7",
    "user_agent_decrypted": "Spotify/8.8.0 Android/31 (SM-G991B)",
}
IP = "198.51.100.23"


def play(
    ts: str,
    ms: int,
    track: str | None = "Halo",
    artist: str | None = "Beyoncé",
    uri: str | None = "spotify:track:4JehYebiI9JE8sR8MisGVb",
    episode: str | None = None,
    show: str | None = None,
    offline_timestamp: int | None = 1672574400,
    country: str = "SE",
    reason_end: str = "trackdone",
) -> dict:
    """One record of the newest extended export (with audiobook fields)."""
    return {
        "ts": ts,
        "platform": "Android OS 12 API 31 (samsung, SM-G991B)",
        "ms_played": ms,
        "conn_country": country,
        "ip_addr": IP,
        "master_metadata_track_name": track,
        "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": "I Am... Sasha Fierce" if track else None,
        "spotify_track_uri": uri,
        "episode_name": episode,
        "episode_show_name": show,
        "spotify_episode_uri": "spotify:episode:0Q86acNRm6V9GYx55SXKwf" if episode else None,
        "audiobook_title": None,
        "audiobook_uri": None,
        "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None,
        "reason_start": "clickrow",
        "reason_end": reason_end,
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "offline_timestamp": offline_timestamp,
        "incognito_mode": False,
    }


def podcast(ts: str, ms: int) -> dict:
    return play(ts, ms, track=None, artist=None, uri=None, episode="Ep. 12: Sound",
                show="The Daily Noise")


# Unsorted on purpose; days 2023-01-01 and 2023-01-02 (UTC); offline_timestamp in s and ms.
EXTENDED_RECORDS = [
    play("2023-01-02T08:00:00Z", 200_000, offline_timestamp=1672646000123),
    play("2023-01-01T21:15:00Z", 29_999, track="Single Ladies", offline_timestamp=1672607600),
    podcast("2023-01-01T22:30:00Z", 1_800_000),
    play("2023-01-01T09:00:00Z", 30_000, track="If I Were a Boy",
         uri="spotify:track:26CuY5O8cbsrMIymEOmx4A", reason_end="fwdbtn"),
    play("2023-01-01T23:59:59Z", 0, track="Sweet Dreams", offline_timestamp=None),
]
LEGACY_MUSIC_RECORDS = [
    {"endTime": "2023-01-01 10:05", "artistName": "Daft Punk", "trackName": "One More Time",
     "msPlayed": 320_000},
    {"endTime": "2022-12-31 23:58", "artistName": "ABBA", "trackName": "Happy New Year",
     "msPlayed": 12_000},
    {"endTime": "2023-01-01 00:01", "artistName": "Daft Punk", "trackName": "Digital Love",
     "msPlayed": 45_000},
]
LEGACY_PODCAST_RECORDS = [
    {"endTime": "2023-01-01 07:30", "podcastName": "Morning Brief",
     "episodeName": "Monday, Jan 1", "msPlayed": 900_000},
    {"endTime": "2023-01-02 07:30", "podcastName": "Morning Brief",
     "episodeName": "Tuesday, Jan 2", "msPlayed": 60_000},
]


def older(record: dict) -> dict:
    """An older extended record: no audiobook fields, plus username and decrypted fields."""
    trimmed = {k: v for k, v in record.items() if k not in AUDIOBOOK_FIELDS}
    return {**trimmed, **OLD_PERSONAL}


def every_export_shape() -> dict[str, list[dict]]:
    """One export file of each shape Spotify has shipped, by its usual name."""
    return {
        "Streaming_History_Audio_2023_0.json": EXTENDED_RECORDS,
        "endsong_0.json": [older(r) for r in EXTENDED_RECORDS],
        "StreamingHistory_music_0.json": LEGACY_MUSIC_RECORDS,
        "StreamingHistory_podcast_0.json": LEGACY_PODCAST_RECORDS,
    }


def write_json(path: Path, records: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def utc_day(ts: str) -> dt.date:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(dt.UTC).date()


def one(files: list[ExportFile]) -> ExportFile:
    assert len(files) == 1, [f.name for f in files]
    return files[0]
