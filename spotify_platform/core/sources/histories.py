"""Simulated personal Spotify exports: years of one person's listening, as Spotify ships it.

A real history is sparse: weeks of daily listening, then months of silence, a phone lost, a
service tried elsewhere. The benchmark and the tests need that shape (thousands of calendar
days, a fraction of them with plays) in both export formats, and deterministic. Pure: returns
file names and bytes, writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import string
from dataclasses import dataclass

import numpy as np

EXTENDED_RECORDS_PER_FILE = 12_000
LEGACY_RECORDS_PER_FILE = 10_000
_BASE62 = np.frombuffer((string.digits + string.ascii_letters).encode(), dtype=np.uint8)
_PLATFORMS = (
    "Android OS 10 API 29 (samsung, SM-G973F)",
    "iOS 16.1 (iPhone14,5)",
    "Windows 10 (10.0.19045; x64)",
    "web_player linux ;chrome 120",
    "Partner sonos_s22 Sonos Speaker",
)
_REASONS_END = ("trackdone", "trackdone", "trackdone", "fwdbtn", "endplay", "backbtn")
_SYLLABLES = ("ka", "lo", "mi", "rø", "sé", "tan", "vo", "ré", "ni", "sol", "ü", "da", "音", "楽")


@dataclass(frozen=True)
class HistorySpec:
    """One person's history: who, when, how much, and in which export shape."""

    account: str
    first: dt.date
    last: dt.date
    plays: int
    shape: str = "extended"
    country: str = "SE"
    seed: int = 0
    active_share: float = 0.6
    gap_days: int = 60


def _name(rng: np.random.Generator, words: int) -> str:
    parts = ["".join(rng.choice(_SYLLABLES, size=rng.integers(2, 4))) for _ in range(words)]
    return " ".join(p.capitalize() for p in parts)


def _library(rng: np.random.Generator, tracks: int) -> list[tuple[str, str, str, str]]:
    """(track uri, track name, artist name, album name); an artist's name sometimes appears
    in another case, as it does when Spotify's metadata changes over the years."""
    artists = [_name(rng, int(rng.integers(1, 3))) for _ in range(max(8, tracks // 6))]
    ids = _BASE62[rng.integers(0, 62, size=(tracks, 22))].view("S22").ravel()
    library = []
    for i in range(tracks):
        artist = artists[int(rng.zipf(1.6)) % len(artists)]
        if rng.random() < 0.03:
            artist = artist.upper()
        library.append(
            (f"spotify:track:{ids[i].decode()}", _name(rng, 2), artist, _name(rng, 1))
        )
    return library


def active_days(spec: HistorySpec) -> list[dt.date]:
    """Days with plays: runs of listening separated by gaps, some of them months long."""
    rng = np.random.default_rng([spec.seed, 1])
    days, day = [], spec.first
    while day <= spec.last:
        if rng.random() < 0.015:
            day += dt.timedelta(days=int(rng.integers(spec.gap_days // 2, spec.gap_days * 2)))
            continue
        if rng.random() < spec.active_share:
            days.append(day)
        day += dt.timedelta(days=1)
    return days or [spec.first]


def history_records(spec: HistorySpec) -> list[dict]:
    """The person's plays in the export's own record shape, in no particular order."""
    rng = np.random.default_rng([spec.seed, 2])
    library = _library(rng, max(50, spec.plays // 25))
    days = active_days(spec)
    per_day = rng.multinomial(spec.plays, rng.dirichlet(np.full(len(days), 2.0)))
    popularity = rng.zipf(1.3, size=spec.plays) % len(library)
    records: list[dict] = []
    for day, count in zip(days, per_day, strict=True):
        latest_start = max(1, 86_400 - int(count) * 200)
        clock = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(
            seconds=int(rng.integers(0, latest_start))
        )
        for _ in range(int(count)):
            played = int(rng.choice((rng.integers(1_000, 30_000), rng.integers(30_000, 320_000))))
            clock += dt.timedelta(milliseconds=played + int(rng.integers(0, 5_000)))
            if clock.date() != day:
                clock = dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC)
            track = library[int(popularity[len(records)])]
            records.append(_record(spec, rng, clock, played, track))
    return records


def _record(spec, rng, ended: dt.datetime, played: int, track: tuple) -> dict:
    uri, title, artist, album = track
    if spec.shape == "legacy":
        return {
            "endTime": ended.strftime("%Y-%m-%d %H:%M"),
            "artistName": artist,
            "trackName": title,
            "msPlayed": played,
        }
    return {
        "ts": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": _PLATFORMS[int(rng.integers(0, len(_PLATFORMS)))],
        "ms_played": played,
        "conn_country": spec.country,
        "ip_addr": f"10.{rng.integers(0, 255)}.{rng.integers(0, 255)}.{rng.integers(1, 255)}",
        "master_metadata_track_name": title,
        "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": album,
        "spotify_track_uri": uri,
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "reason_start": "trackdone",
        "reason_end": _REASONS_END[int(rng.integers(0, len(_REASONS_END)))],
        "shuffle": bool(rng.random() < 0.4),
        "skipped": bool(played < 30_000 and rng.random() < 0.5),
        "offline": False,
        "offline_timestamp": int(ended.timestamp()),
        "incognito_mode": False,
    }


def export_files(spec: HistorySpec) -> list[tuple[str, bytes]]:
    """The history as Spotify names and splits its files (extended per year span, legacy by
    count), records shuffled inside each file as they are in real exports."""
    records = history_records(spec)
    rng = np.random.default_rng([spec.seed, 3])
    if spec.shape == "legacy":
        records.sort(key=lambda r: r["endTime"])
        size, stem = LEGACY_RECORDS_PER_FILE, "StreamingHistory_music_{i}.json"
    else:
        records.sort(key=lambda r: r["ts"])
        size, stem = EXTENDED_RECORDS_PER_FILE, "Streaming_History_Audio_{span}_{i}.json"
    files = []
    for i in range(0, len(records), size):
        chunk = records[i : i + size]
        order = rng.permutation(len(chunk))
        first = (chunk[0].get("ts") or chunk[0].get("endTime"))[:4]
        last = (chunk[-1].get("ts") or chunk[-1].get("endTime"))[:4]
        span = first if first == last else f"{first}-{last}"
        name = stem.format(i=i // size, span=span)
        body = json.dumps([chunk[j] for j in order], ensure_ascii=False, indent=1)
        files.append((name, body.encode()))
    return files


def four_listeners(first: dt.date, last: dt.date, plays: int, seed: int = 0) -> list[HistorySpec]:
    """The shape users bring: one extended export and three legacy ones over the same years,
    plays split unevenly between them."""
    shares = (0.55, 0.2, 0.15, 0.1)
    return [
        HistorySpec(
            account=f"listener{i}",
            first=first,
            last=last,
            plays=int(plays * share),
            shape="extended" if i == 0 else "legacy",
            country=("SE", "BR", "JP", "US")[i],
            seed=seed + i,
            active_share=(0.75, 0.35, 0.5, 0.25)[i],
        )
        for i, share in enumerate(shares)
    ]
