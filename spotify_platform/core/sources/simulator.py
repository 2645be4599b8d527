"""Deterministic simulator of Spotify "Extended Streaming History" records.

Real listening exports cannot be shared, yet the platform needs realistic raw data at any scale
to develop, test and benchmark against. This module fabricates it: a catalog of artists, albums,
tracks and podcast episodes, a population of accounts that sign up, lapse, return and churn with
the seasons, and per-day event
frames in the raw export's record layout (including its quirks: mixed-unit offline timestamps,
nullable ``skipped``, raw platform strings, unsorted rows).

Everything is vectorised with numpy so one day of about a million events takes seconds, and every
day is seeded from ``(seed, day ordinal)`` so any day can be regenerated alone, byte-identically.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

RAW_COLUMNS: list[str] = [
    "ts",
    "platform",
    "ms_played",
    "conn_country",
    "ip_addr",
    "master_metadata_track_name",
    "master_metadata_album_artist_name",
    "master_metadata_album_album_name",
    "spotify_track_uri",
    "episode_name",
    "episode_show_name",
    "spotify_episode_uri",
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
    "reason_start",
    "reason_end",
    "shuffle",
    "skipped",
    "offline",
    "offline_timestamp",
    "incognito_mode",
    "account_id",
]

# (ISO alpha-2, IANA zone of the capital or main market, relative share of listeners).
_COUNTRIES: tuple[tuple[str, str, float], ...] = (
    ("US", "America/New_York", 16.0),
    ("BR", "America/Sao_Paulo", 8.0),
    ("GB", "Europe/London", 5.0),
    ("DE", "Europe/Berlin", 5.0),
    ("MX", "America/Mexico_City", 5.0),
    ("IN", "Asia/Kolkata", 5.0),
    ("ID", "Asia/Jakarta", 4.0),
    ("FR", "Europe/Paris", 3.5),
    ("ES", "Europe/Madrid", 3.0),
    ("PH", "Asia/Manila", 3.0),
    ("IT", "Europe/Rome", 2.5),
    ("JP", "Asia/Tokyo", 2.5),
    ("CA", "America/Toronto", 2.5),
    ("AU", "Australia/Sydney", 2.0),
    ("PL", "Europe/Warsaw", 2.0),
    ("TR", "Europe/Istanbul", 2.0),
    ("AR", "America/Argentina/Buenos_Aires", 2.0),
    ("NL", "Europe/Amsterdam", 1.5),
    ("CO", "America/Bogota", 1.5),
    ("VN", "Asia/Ho_Chi_Minh", 1.5),
    ("SE", "Europe/Stockholm", 1.2),
    ("CL", "America/Santiago", 1.2),
    ("TH", "Asia/Bangkok", 1.2),
    ("ZA", "Africa/Johannesburg", 1.0),
    ("SA", "Asia/Riyadh", 1.0),
    ("KR", "Asia/Seoul", 0.8),
    ("NG", "Africa/Lagos", 0.8),
    ("EG", "Africa/Cairo", 0.8),
    ("MY", "Asia/Kuala_Lumpur", 0.8),
    ("PE", "America/Lima", 0.8),
    ("BE", "Europe/Brussels", 0.8),
    ("PT", "Europe/Lisbon", 0.7),
    ("NO", "Europe/Oslo", 0.6),
    ("DK", "Europe/Copenhagen", 0.6),
    ("AT", "Europe/Vienna", 0.6),
    ("CH", "Europe/Zurich", 0.6),
    ("AE", "Asia/Dubai", 0.5),
    ("FI", "Europe/Helsinki", 0.5),
    ("IE", "Europe/Dublin", 0.5),
    ("NZ", "Pacific/Auckland", 0.4),
)
_COUNTRY_CODES = np.array([c for c, _, _ in _COUNTRIES], dtype=object)
_COUNTRY_P = np.array([w for _, _, w in _COUNTRIES]) / sum(w for _, _, w in _COUNTRIES)

# Relative listening intensity by local hour: quiet at night, building through the day, peaking
# in the evening.
_LOCAL_HOUR_WEIGHTS = np.array(
    [3.0, 1.8, 1.0, 0.6, 0.5, 0.6, 1.2, 2.8, 4.2, 4.5, 4.6, 4.8,
     5.0, 5.0, 5.0, 5.2, 5.5, 6.0, 6.6, 7.2, 7.5, 7.4, 6.2, 4.6]
)  # fmt: skip
_LOCAL_HOUR_CDF = np.cumsum(_LOCAL_HOUR_WEIGHTS) / _LOCAL_HOUR_WEIGHTS.sum()

# Monday=0: people listen more on Friday/Saturday and less on Monday, both in how many of them
# show up and in how much they play.
_WEEKDAY_ACTIVITY = np.array([0.93, 0.97, 0.98, 1.0, 1.05, 1.08, 1.0])
_WEEKDAY_VOLUME = np.array([0.97, 0.99, 1.0, 1.0, 1.02, 1.04, 1.0])

# Lifecycles: after the launch wave, a share of accounts signs up over the following years, more
# of them around the new year; accounts lapse now and then for one to eight weeks, more often in
# summer, and come back; everyone listens a little more in winter. So growth accounting, churn
# and listeners at risk move like a real service's rather than staying flat.
_LATE_SIGNUP_SHARE = 0.5  # of the accounts signing up after the epoch
_LATE_SIGNUP_DAYS = 5 * 365
_SIGNUP_SEASON = 0.5  # relative swing of late sign-ups around their mean, peaking on 1 January
_LAPSE_BLOCK_DAYS = 28  # a lapse starts in a block with the account's lapse rate...
_LAPSE_MIN_DAYS = 7
_LAPSE_MEAN_EXTRA_DAYS = 14.0
_LAPSE_MAX_DAYS = 2 * _LAPSE_BLOCK_DAYS  # ...so any lapse began in one of the last three blocks
_LAPSE_SEASON = 0.6  # relative swing of lapse starts, peaking in mid-July
_ACTIVITY_SEASON = 0.06  # relative swing of daily activity, peaking in late December
_LAPSE_PEAK_DAY_OF_YEAR = 196
_ACTIVITY_PEAK_DAY_OF_YEAR = 355

# Population shape; _EVENTS_PER_ACCOUNT_DAY is the measured events per account per day divided
# by plays_per_active_day, over the first two months after the epoch (used by accounts_for).
_PRE_EPOCH_SHARE = 0.6
_SIGNUP_MEAN_DAYS_AFTER_EPOCH = 21.0
_CHURN_SHARE = 0.15
_EVENTS_PER_ACCOUNT_DAY = 0.39

_TRACK_ZIPF_EXPONENT = 1.05
_FAVOURITES_PER_ACCOUNT = 30
_TRAVEL_RATE = 0.02

_PLATFORMS_ANDROID = [
    f"Android OS {os_ver} API {api} ({maker}, {model})"
    for os_ver, api in (("11", 30), ("12", 31), ("13", 33), ("14", 34))
    for maker, model in (
        ("samsung", "SM-G991B"),
        ("samsung", "SM-S911B"),
        ("samsung", "SM-A536B"),
        ("Xiaomi", "2201117TG"),
        ("Google", "Pixel 7"),
        ("OnePlus", "CPH2449"),
        ("motorola", "moto g(60)"),
    )
]
_PLATFORMS_IOS = [
    f"iOS {os_ver} ({model})"
    for os_ver in ("16.6.1", "17.1", "17.1.2", "17.2")
    for model in ("iPhone15,2", "iPhone15,3", "iPhone14,5", "iPhone13,2", "iPhone12,1", "iPad13,1")
]
_PLATFORMS_WINDOWS = [
    "Windows 10 (10.0.19045; x64)",
    "Windows 10 (10.0.22631; x64; AppX)",
    "Windows 10 (10.0.19044; x64)",
]
_PLATFORMS_MAC = ["OS X 14.1.1 [arm 2]", "OS X 13.6.1 [x86 8]", "OS X 12.7.1 [arm 2]"]
_PLATFORMS_LINUX = ["Linux [x86-64 0]"]
_PLATFORMS_WEB = [
    "web_player windows 10;chrome 120.0.0.0;desktop",
    "web_player osx 10.15.7;safari 17.1;desktop",
    "web_player linux ;firefox 121.0;desktop",
    "web_player windows 10;microsoft edge 120.0.0.0;desktop",
]
_PLATFORMS_PARTNER = [
    "Partner sonos_ppc Sonos;Play:5",
    "Partner android_tv Sony;BRAVIA 4K",
    "Partner amazon_salmon Amazon;Echo Dot",
    "Partner tizen_tv Samsung;QE55Q80A",
    "cast_to_device",
]
# (raw strings, share as an account's main device, share as its occasional second device):
# phones dominate as the main device, the second device is more often a computer, a browser or
# a speaker/TV.
_PLATFORM_FAMILIES: tuple[tuple[list[str], float, float], ...] = (
    (_PLATFORMS_ANDROID, 0.46, 0.15),
    (_PLATFORMS_IOS, 0.31, 0.10),
    (_PLATFORMS_WINDOWS, 0.09, 0.18),
    (_PLATFORMS_MAC, 0.045, 0.10),
    (_PLATFORMS_LINUX, 0.005, 0.02),
    (_PLATFORMS_WEB, 0.05, 0.20),
    (_PLATFORMS_PARTNER, 0.04, 0.25),
)
_PLATFORMS = np.array([p for family, _, _ in _PLATFORM_FAMILIES for p in family], dtype=object)


def _platform_cdf(column: int) -> np.ndarray:
    """Spread each platform family's share evenly over its raw strings."""
    w = np.concatenate([np.full(len(f[0]), f[column] / len(f[0])) for f in _PLATFORM_FAMILIES])
    return np.cumsum(w) / w.sum()


_PRIMARY_PLATFORM_CDF = _platform_cdf(1)
_SECONDARY_PLATFORM_CDF = _platform_cdf(2)

# Documentation-only address ranges (RFC 5737), so no real address ever appears.
_IP_POOL = np.array(
    [f"{net}.{host}" for net in ("192.0.2", "198.51.100", "203.0.113") for host in range(256)],
    dtype=object,
)

_REASON_END = np.array(
    ["trackdone", "fwdbtn", "backbtn", "endplay", "logout", "unexpected-exit", "remote"],
    dtype=object,
)
_RE_TRACKDONE, _RE_FWD, _RE_BACK, _RE_ENDPLAY, _RE_LOGOUT, _RE_EXIT, _RE_REMOTE = range(7)
_REASON_START = np.array(
    ["trackdone", "fwdbtn", "backbtn", "clickrow", "playbtn", "appload", "remote"], dtype=object
)
_RS_TRACKDONE, _RS_FWD, _RS_BACK, _RS_CLICKROW, _RS_PLAYBTN, _RS_APPLOAD, _RS_REMOTE = range(7)
# How the next play starts given how the previous one in the session ended (endplay is resolved
# separately into clickrow/playbtn).
_START_AFTER_END = np.array(
    [_RS_TRACKDONE, _RS_FWD, _RS_BACK, _RS_CLICKROW, _RS_APPLOAD, _RS_APPLOAD, _RS_REMOTE]
)
_SESSION_FIRST_START = np.array([_RS_CLICKROW, _RS_PLAYBTN, _RS_APPLOAD, _RS_REMOTE])
_SESSION_FIRST_START_CDF = np.cumsum([0.35, 0.30, 0.25, 0.10])
_PARTIAL_END = np.array([_RE_ENDPLAY, _RE_LOGOUT, _RE_EXIT, _RE_REMOTE])
_PARTIAL_END_CDF = np.cumsum([0.55, 0.17, 0.2, 0.08])

_GENRES = np.array(
    [
        "pop", "dance pop", "hip hop", "rap", "trap", "rock", "indie rock", "alternative",
        "k-pop", "j-pop", "latin", "reggaeton", "sertanejo", "funk carioca", "edm", "house",
        "techno", "r&b", "soul", "jazz", "classical", "country", "metal", "punk", "lo-fi",
        "afrobeats", "amapiano", "bollywood", "arabic pop", "turkish pop", "mandopop", "folk",
        "singer-songwriter", "blues", "reggae", "drill", "grime", "ambient", "synthwave",
        "schlager", "chanson", "opm",
    ],
    dtype=object,
)  # fmt: skip
_EXPLICIT_HEAVY_GENRES = frozenset({"hip hop", "rap", "trap", "drill", "grime", "funk carioca"})

# Word lists cover emoji, CJK, accented, right-to-left and quote/apostrophe cases on purpose:
# they are what breaks encoders, CSV writers and SQL quoting downstream.
_WORDS: dict[str, np.ndarray] = {
    key: np.array(words, dtype=object)
    for key, words in {
        "a": [
            "Midnight", "Golden", "Electric", "Velvet", "Neon", "Silent", "Broken", "Wild",
            "Crystal", "Lonely", "Burning", "Frozen", "Cosmic", "Sweet", "Dark", "Blue",
            "Crimson", "Hollow", "Endless", "Lucky", "Secret", "Paper", "Silver", "Summer",
            "Tender", "Young", "Lost", "Brave", "Dreamy", "Quiet", "Último", "Doré", "Schöne",
            "Mágica", "Fría", "Éternel",
        ],
        "n": [
            "Heart", "Night", "River", "Fire", "Dream", "Light", "Shadow", "Ocean", "City",
            "Rain", "Moon", "Star", "Road", "Echo", "Garden", "Mirror", "Wave", "Storm", "Sky",
            "Kiss", "Ghost", "Highway", "Paradise", "Thunder", "Flower", "Island", "Winter",
            "Signal", "Memory", "Horizon", "Corazón", "Canción", "Café", "Lumière", "Sehnsucht",
            "Saudade", "Façade", "Mañana", "Fiesta",
        ],
        "v": [
            "Dance", "Run", "Fall", "Hold", "Chase", "Feel", "Break", "Dream", "Fly", "Burn",
            "Wait", "Shine", "Breathe", "Remember", "Forget", "Call",
        ],
        "f": [
            "Luna", "Mateo", "Aiko", "Noah", "Amara", "Lukas", "Sofía", "Yuki", "Omar", "Chloé",
            "Leon", "Zoë", "Ravi", "Ingrid", "Kwame", "Mei", "Diego", "Freya", "Jonas",
            "Aaliyah", "Hiro", "Nina", "Tomás", "Björn", "Léa", "Emre", "Ji-woo", "Priya",
            "Malik", "Anaïs",
        ],
        "l": [
            "Rivers", "Stone", "Vega", "Tanaka", "Okafor", "Müller", "Lindqvist", "Moreau",
            "Kowalski", "Haddad", "Silva", "Park", "Nakamura", "Eriksen", "Costa", "Novak",
            "Reyes", "Kaya", "Mensah", "O'Connor", "D'Angelo", "Ó Briain", "Jiménez", "Øster",
            "Śliwa",
        ],
        "c": [
            "夜に駆ける", "사랑", "星空", "東京の夜", "꿈", "青い春", "월광", "花火", "桜の雨",
            "달빛", "未来へ", "하늘", "月光", "恋の歌", "바람",
        ],
        "r": ["حبيبي", "ليل", "قمر", "يا سلام", "אהבה", "שיר", "לילה", "שמש"],
        "e": ["🔥", "💜", "✨", "🌙", "🎧", "💔", "🌊", "🖤"],
        "q": [
            "Don't Stop", "Rock 'n' Roll", 'The "Real" One', "Ain't Nobody's", "Y'all",
            'It\'s "Complicated"', "Rock'n'Roll",
        ],
        "k": [str(i) for i in range(1, 400)],
        "y": [str(y) for y in range(1990, 2024)],
    }.items()
}  # fmt: skip
_WORDS["n2"] = _WORDS["n"]
_WORDS["f2"] = _WORDS["f"]

_ARTIST_TEMPLATES: tuple[tuple[str, float], ...] = (
    ("{f} {l}", 0.30),
    ("The {a} {n}s", 0.12),
    ("{a} {n}", 0.12),
    ("DJ {n}", 0.05),
    ("{f}", 0.08),
    ("{n} & the {n2}s", 0.05),
    ("Lil {n}", 0.04),
    ("MC {f}", 0.03),
    ("{f} {l} Trio", 0.03),
    ("{c}", 0.07),
    ("{r}", 0.03),
    ("{a} {n} {e}", 0.04),
    ("{q}", 0.02),
    ("{f} {e}", 0.02),
)
_ALBUM_TEMPLATES: tuple[tuple[str, float], ...] = (
    ("{a} {n}", 0.30),
    ("{n}", 0.15),
    ("{n} of {n2}", 0.10),
    ("{a} {n}s (Deluxe Edition)", 0.06),
    ("Songs for {f}", 0.05),
    ("{k}", 0.04),
    ("{c}", 0.08),
    ("{r}", 0.03),
    ("{n} {e}", 0.06),
    ("{q}", 0.05),
    ("Live in {n} City", 0.04),
    ("{v} ({y} Remastered)", 0.04),
)
_TRACK_TEMPLATES: tuple[tuple[str, float], ...] = (
    ("{a} {n}", 0.25),
    ("{n}", 0.10),
    ("{v} {n}", 0.10),
    ("{v} Me {a}", 0.06),
    ("{n} (feat. {f} {l})", 0.06),
    ("{n} - {a} Mix", 0.04),
    ("{n} of {n2}", 0.06),
    ("Don't {v}", 0.04),
    ("{a} {n} {e}", 0.06),
    ("{c}", 0.07),
    ("{c} {e}", 0.02),
    ("{r}", 0.03),
    ("{q}", 0.04),
    ("{f}'s {n}", 0.04),
    ("{n} - Remastered {y}", 0.03),
)
_SHOW_TEMPLATES: tuple[tuple[str, float], ...] = (
    ("The {n} Podcast", 0.20),
    ("{a} Minds", 0.12),
    ("Daily {n}", 0.12),
    ("{f} & {f2} Talk", 0.12),
    ("Unfiltered with {f} {l}", 0.10),
    ("True Crime {n}", 0.08),
    ("{n} Stories {e}", 0.08),
    ("{c}", 0.08),
    ("{r}", 0.05),
    ("The {q} Show", 0.05),
)
_EPISODE_TEMPLATES: tuple[tuple[str, float], ...] = (
    ("Ep. {k}: {a} {n}", 0.30),
    ("#{k} - {v} the {n}", 0.25),
    ("{a} {n} (with {f} {l})", 0.20),
    ("{q}: a conversation", 0.08),
    ("{c} {e}", 0.07),
    ("{r}", 0.05),
    ("Bonus: {n} Q&A", 0.05),
)
_BOOK_TEMPLATES: tuple[tuple[str, float], ...] = (
    ("The {a} {n}", 0.35),
    ("A {n} of {n2}", 0.25),
    ("{f}'s {n}", 0.20),
    ("{c}", 0.10),
    ("{q}", 0.10),
)
_CHAPTER_LABELS = np.array(["Chapter {k}", "Kapitel {k}", "Capítulo {k}", "第{k}章"], dtype=object)

_BASE62 = np.array(list(string.digits + string.ascii_uppercase + string.ascii_lowercase))
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Catalog:
    """What the simulated accounts can play, with the metadata an API enrichment would return."""

    artists: pd.DataFrame
    albums: pd.DataFrame
    tracks: pd.DataFrame
    episodes: pd.DataFrame


def _spotify_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """22-character base62 ids, shaped like Spotify's (collisions at 62**22 are negligible)."""
    chars = np.ascontiguousarray(_BASE62[rng.integers(0, 62, size=(n, 22))])
    return chars.view("<U22").ravel().astype(object)


def _compose(
    rng: np.random.Generator, n: int, templates: Sequence[tuple[str, float]]
) -> np.ndarray:
    """Names from weighted templates over the word lists; loops per template, not per field."""
    weights = np.array([w for _, w in templates])
    choice = rng.choice(len(templates), size=n, p=weights / weights.sum())
    picks = {key: rng.integers(0, len(words), size=n) for key, words in _WORDS.items()}
    out = np.empty(n, dtype=object)
    for t, (template, _) in enumerate(templates):
        rows = np.flatnonzero(choice == t)
        keys = [field for _, field, _, _ in _FORMATTER.parse(template) if field]
        if not keys:
            out[rows] = template
            continue
        columns = [_WORDS[key][picks[key][rows]] for key in keys]
        out[rows] = [
            template.format(**dict(zip(keys, vals, strict=True)))
            for vals in zip(*columns, strict=True)
        ]
    return out


def _zipf_cdf(n: int, exponent: float) -> np.ndarray:
    """Cumulative Zipf weights over ranks 1..n, for inverse-CDF sampling with searchsorted."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(w)
    return cdf / cdf[-1]


def _sample(rng: np.random.Generator, cdf: np.ndarray, size: int) -> np.ndarray:
    """Draw indices from a CDF; searchsorted is far faster than Generator.choice with p."""
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def _distinct(names: np.ndarray) -> np.ndarray:
    """Make repeated artist names distinct, as real acts are ("Leon & The Tides", "Leon Trio").

    Plays identify artists by name only, so two catalog artists must never share one.
    """
    used: set[str] = set()
    out = names.copy()
    for i, name in enumerate(names.tolist()):
        candidate, attempt = name, 0
        while candidate.strip().casefold() in used:
            suffix = _ACT_SUFFIXES[attempt % len(_ACT_SUFFIXES)]
            round_ = attempt // len(_ACT_SUFFIXES)
            candidate = f"{name} {suffix}" + (f" {round_ + 1}" if round_ else "")
            attempt += 1
        used.add(candidate.strip().casefold())
        out[i] = candidate
    return out


_ACT_SUFFIXES = (
    "& The Tides",
    "Trio",
    "Collective",
    "Project",
    "Ensemble",
    "Duo",
    "Sound System",
    "& Friends",
    "Band",
    "Quartet",
    "Orchestra",
    "Club",
    "Crew",
    "Family",
    "Unit",
    "Society",
)


def build_catalog(
    seed: int = 7,
    n_artists: int = 2000,
    albums_per_artist: int = 3,
    tracks_per_album: int = 8,
    n_episodes: int = 400,
) -> Catalog:
    """Build the deterministic catalog: tracks are grouped per album, albums per artist."""
    rng = np.random.default_rng([seed, 0xCA7A106])

    artist_ids = _spotify_ids(rng, n_artists)
    artist_names = _distinct(_compose(rng, n_artists, _ARTIST_TEMPLATES))
    artist_pop = np.clip(np.round(rng.beta(2.0, 3.5, n_artists) * 100), 0, 100).astype(np.int64)
    genre_p = 1.0 / np.arange(1, len(_GENRES) + 1) ** 0.8
    genre_picks = rng.choice(len(_GENRES), size=(n_artists, 4), p=genre_p / genre_p.sum())
    n_genres = np.where(rng.random(n_artists) < 0.15, 0, 1 + rng.binomial(3, 0.35, n_artists))
    genres = [
        list(dict.fromkeys(_GENRES[row[:k]].tolist()))
        for row, k in zip(genre_picks, n_genres.tolist(), strict=True)
    ]
    primary = [g[0] if g else None for g in genres]
    artists = pd.DataFrame(
        {
            "artist_id": artist_ids,
            "artist_name": artist_names,
            "genres": pd.Series(genres, dtype=object),
            "primary_genre": pd.Series(primary, dtype=object),
            "popularity": artist_pop,
        }
    )

    n_albums = n_artists * albums_per_artist
    album_artist = np.repeat(np.arange(n_artists), albums_per_artist)
    # Release dates skew recent (catalogs are dominated by the last decade) and end before 2024.
    days_back = np.minimum(rng.exponential(9 * 365.25, n_albums), 63 * 365).astype(np.int64)
    release = np.datetime64("2023-12-31") - days_back.astype("timedelta64[D]")
    albums = pd.DataFrame(
        {
            "album_id": _spotify_ids(rng, n_albums),
            "album_name": _compose(rng, n_albums, _ALBUM_TEMPLATES),
            "artist_id": artist_ids[album_artist],
            "release_date": np.datetime_as_string(release, unit="D").astype(object),
        }
    )

    n_tracks = n_albums * tracks_per_album
    track_album = np.repeat(np.arange(n_albums), tracks_per_album)
    track_artist = album_artist[track_album]
    position = np.tile(np.arange(tracks_per_album), n_albums)
    duration = np.clip(rng.lognormal(np.log(205_000), 0.28, n_tracks), 90_000, 420_000)
    heavy = np.array([p in _EXPLICIT_HEAVY_GENRES for p in primary])
    explicit = rng.random(n_tracks) < np.where(heavy[track_artist], 0.45, 0.08)
    recency = 1.0 - days_back[track_album] / (63 * 365)
    latent = (
        2.5 * artist_pop[track_artist] / 100
        + 0.5 * recency
        - 0.05 * position
        + rng.normal(0.0, 0.9, n_tracks)
    )
    rank = np.empty(n_tracks, dtype=np.int64)
    rank[np.argsort(-latent, kind="stable")] = np.arange(n_tracks)
    popularity = 100 * (1 - np.log1p(rank) / np.log1p(n_tracks)) ** 0.75
    tracks = pd.DataFrame(
        {
            "track_id": _spotify_ids(rng, n_tracks),
            "track_name": _compose(rng, n_tracks, _TRACK_TEMPLATES),
            "artist_id": artist_ids[track_artist],
            "artist_name": artist_names[track_artist],
            "album_id": albums["album_id"].to_numpy()[track_album],
            "album_name": albums["album_name"].to_numpy()[track_album],
            "duration_ms": duration.astype(np.int64),
            "popularity": np.clip(np.round(popularity), 0, 100).astype(np.int64),
            "explicit": explicit,
        }
    )

    n_shows = max(1, n_episodes // 10)
    show_names = _compose(rng, n_shows, _SHOW_TEMPLATES)
    episode_show = _sample(rng, _zipf_cdf(n_shows, 0.8), n_episodes)
    minutes = np.clip(rng.lognormal(np.log(40), 0.45, n_episodes), 10, 89)
    episodes = pd.DataFrame(
        {
            "episode_id": _spotify_ids(rng, n_episodes),
            "episode_name": _compose(rng, n_episodes, _EPISODE_TEMPLATES),
            "show_name": show_names[episode_show],
            "duration_ms": (minutes * 60_000).astype(np.int64),
        }
    )
    return Catalog(artists=artists, albums=albums, tracks=tracks, episodes=episodes)


def _timestamps(day: dt.date, second: np.ndarray) -> np.ndarray:
    """Export-style "YYYY-MM-DDTHH:MM:SSZ" strings for seconds into the UTC day.

    Big days format the day's 86,400 strings once and gather, so rows share string objects.
    """
    base = np.datetime64(day, "s")
    if len(second) >= 86_400:
        table = np.strings.add(np.datetime_as_string(base + np.arange(86_400), unit="s"), "Z")
        return table.astype(object)[second]
    return np.strings.add(np.datetime_as_string(base + second, unit="s"), "Z").astype(object)


def _season(ordinals: np.ndarray | int, peak_day_of_year: int, swing: float) -> np.ndarray:
    """1 + swing * a yearly cosine peaking on that day of the year, for day ordinals."""
    days = np.asarray(ordinals) - dt.date(2000, 1, 1).toordinal() - (peak_day_of_year - 1)
    return 1.0 + swing * np.cos(2 * np.pi * days / 365.2425)


@lru_cache(maxsize=1024)
def _utc_offsets(ordinal: int) -> np.ndarray:
    """Each country's real UTC offset in seconds at noon of that day (so DST is honoured)."""
    noon = dt.datetime.combine(dt.date.fromordinal(ordinal), dt.time(12))
    return np.array(
        [int(ZoneInfo(zone).utcoffset(noon).total_seconds()) for _, zone, _ in _COUNTRIES]
    )


def _bool_array(values: np.ndarray, mask: np.ndarray | None = None) -> pd.arrays.BooleanArray:
    """Nullable booleans, the cheap way to carry the export's true/false/null columns."""
    if mask is None:
        mask = np.zeros(len(values), dtype=bool)
    return pd.arrays.BooleanArray(values.astype(bool), mask)


def _pick(values: np.ndarray, index: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Object column holding ``values[index]`` where ``present`` and None elsewhere."""
    out = np.full(len(index), None, dtype=object)
    out[present] = values[index[present]]
    return out


class ListeningSimulator:
    """Deterministic generator of raw listening events for a fixed account population."""

    def __init__(
        self,
        accounts: int = 2000,
        seed: int = 7,
        epoch: dt.date = dt.date(2024, 1, 1),
        plays_per_active_day: float = 30.0,
        catalog: Catalog | None = None,
    ) -> None:
        if accounts < 1:
            raise ValueError("accounts must be at least 1")
        self._n = int(accounts)
        self._seed = int(seed)
        self._epoch = epoch
        self._ppad = float(plays_per_active_day)
        self._catalog = catalog if catalog is not None else build_catalog(seed=seed)
        if self._catalog.tracks.empty or self._catalog.episodes.empty:
            raise ValueError("the catalog needs at least one track and one episode")
        self._prepare_catalog()
        self._prepare_audiobooks()
        self._prepare_accounts()
        self._accounts_frame: pd.DataFrame | None = None

    @property
    def catalog(self) -> Catalog:
        """The catalog the events play from, to enrich or check them against."""
        return self._catalog

    @staticmethod
    def accounts_for(events_per_day: int, plays_per_active_day: float = 30.0) -> int:
        """Accounts needed for roughly ``events_per_day`` (calibrated on the first two months)."""
        return max(1, round(events_per_day / (plays_per_active_day * _EVENTS_PER_ACCOUNT_DAY)))

    def _prepare_catalog(self) -> None:
        tracks = self._catalog.tracks
        self._track_name = tracks["track_name"].to_numpy(dtype=object)
        self._track_artist = tracks["artist_name"].to_numpy(dtype=object)
        self._track_album = tracks["album_name"].to_numpy(dtype=object)
        self._track_uri = ("spotify:track:" + tracks["track_id"].astype(str)).to_numpy(object)
        self._track_ms = tracks["duration_ms"].to_numpy(dtype=np.int64)
        # Play probability is Zipf over popularity rank, so a few hits dominate.
        order = np.argsort(-tracks["popularity"].to_numpy(), kind="stable")
        self._track_by_rank = order
        self._track_cdf = _zipf_cdf(len(tracks), _TRACK_ZIPF_EXPONENT)
        # Tracks grouped by artist, so an account's favourite artist maps to a track range.
        codes, _ = pd.factorize(tracks["artist_id"])
        self._artist_of_track = codes
        self._tracks_by_artist = np.argsort(codes, kind="stable")
        counts = np.bincount(codes)
        self._artist_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._artist_count = counts

        episodes = self._catalog.episodes
        self._ep_name = episodes["episode_name"].to_numpy(dtype=object)
        self._ep_show = episodes["show_name"].to_numpy(dtype=object)
        self._ep_uri = ("spotify:episode:" + episodes["episode_id"].astype(str)).to_numpy(object)
        self._ep_ms = episodes["duration_ms"].to_numpy(dtype=np.int64)
        self._ep_cdf = _zipf_cdf(len(episodes), 0.9)

    def _prepare_audiobooks(self) -> None:
        """Audiobooks are not part of Catalog; a small fixed shelf is enough for ~1% of plays."""
        rng = np.random.default_rng([self._seed, 0xB00C5])
        n_books = 30
        titles = _compose(rng, n_books, _BOOK_TEMPLATES)
        book_uris = np.array([f"spotify:show:{i}" for i in _spotify_ids(rng, n_books)], object)
        chapters = rng.integers(6, 31, n_books)
        book_of = np.repeat(np.arange(n_books), chapters)
        number = np.concatenate([np.arange(1, c + 1) for c in chapters])
        label = _CHAPTER_LABELS[rng.integers(0, len(_CHAPTER_LABELS), n_books)][book_of]
        self._ab_title = titles[book_of]
        self._ab_uri = book_uris[book_of]
        self._ab_chapter_uri = np.array(
            [f"spotify:episode:{i}" for i in _spotify_ids(rng, len(book_of))], dtype=object
        )
        self._ab_chapter_title = np.array(
            [lab.format(k=k) for lab, k in zip(label, number.tolist(), strict=True)], dtype=object
        )
        self._ab_ms = (
            np.clip(rng.lognormal(np.log(20), 0.4, len(book_of)), 5, 60) * 60_000
        ).astype(np.int64)
        # Popular books first, and listeners are far more often early in a book than late.
        w = (1.0 / (book_of + 1.0)) / chapters[book_of] * 0.93 ** (number - 1)
        self._ab_cdf = np.cumsum(w) / w.sum()

    def _prepare_accounts(self) -> None:
        """Per-account traits; fixed by (accounts, seed, epoch) whatever days are generated."""
        n = self._n
        rng = np.random.default_rng([self._seed, n, self._epoch.toordinal(), 0xACC0])
        epoch = self._epoch.toordinal()
        self._account_id = np.array([f"listener-{i:06d}" for i in range(n)], dtype=object)
        self._country = _sample(rng, np.cumsum(_COUNTRY_P), n)
        pre = rng.random(n) < _PRE_EPOCH_SHARE
        before = rng.integers(1, 3 * 365, n)
        after = np.floor(rng.exponential(_SIGNUP_MEAN_DAYS_AFTER_EPOCH, n)).astype(np.int64)
        # Lifecycle traits have a generator of their own: adding one does not reshuffle the
        # other traits of every account.
        life = np.random.default_rng([self._seed, n, epoch, 0x11FE])
        late_days = np.arange(_LATE_SIGNUP_DAYS)
        late_cdf = np.cumsum(_season(epoch + late_days, 1, _SIGNUP_SEASON))
        late = life.random(n) < _LATE_SIGNUP_SHARE
        after = np.where(late, late_days[_sample(life, late_cdf / late_cdf[-1], n)], after)
        self._lapse_rate = life.beta(1.2, 6.0, n)
        self._lapse_phase = life.integers(0, _LAPSE_BLOCK_DAYS, n)
        self._lapse_blocks: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._signup = epoch + np.where(pre, -before, after)
        churns = rng.random(n) < _CHURN_SHARE
        churn_after = 7 + np.floor(rng.exponential(75.0, n)).astype(np.int64)
        self._churn = np.where(
            churns, np.maximum(self._signup, epoch) + churn_after, np.iinfo(np.int64).max
        )
        self._propensity = rng.beta(2.0, 1.6, n)
        sigma = 0.8
        self._level = rng.lognormal(-(sigma**2) / 2, sigma, n)
        self._skip_rate = rng.beta(5.0, 15.0, n)
        self._fav_rate = rng.beta(2.0, 5.0, n)
        self._shuffle_rate = rng.beta(1.2, 1.5, n)
        self._offline_rate = np.where(
            rng.random(n) < 0.2, rng.beta(2.0, 10.0, n), rng.beta(1.0, 60.0, n)
        )
        self._incognito_rate = np.where(rng.random(n) < 0.1, rng.beta(1.0, 15.0, n), 0.002)
        self._podcast_rate = rng.beta(0.4, 6.3, n)
        self._audiobook_rate = np.where(rng.random(n) < 0.1, rng.beta(2.0, 18.0, n), 0.0)
        self._offline_in_ms = rng.random(n) < 0.5
        self._chronoshift = np.round(rng.normal(0.0, 3600.0, n)).astype(np.int64)
        self._home_ip = rng.integers(0, len(_IP_POOL), n)
        self._primary_platform = _sample(rng, _PRIMARY_PLATFORM_CDF, n)
        self._secondary_platform = _sample(rng, _SECONDARY_PLATFORM_CDF, n)
        # Favourites: half hits drawn like everyone else's, half deep cuts of a few loved artists.
        k = _FAVOURITES_PER_ACCOUNT
        hits = self._track_by_rank[_sample(rng, self._track_cdf, n * (k // 2))]
        loved_artist = self._artist_of_track[
            self._track_by_rank[_sample(rng, self._track_cdf, n * 3)]
        ].reshape(n, 3)
        artist = loved_artist[np.arange(n)[:, None], rng.integers(0, 3, (n, k - k // 2))].ravel()
        offset = np.floor(rng.random(artist.size) * self._artist_count[artist]).astype(np.int64)
        deep = self._tracks_by_artist[self._artist_start[artist] + offset]
        self._favourites = np.concatenate([hits.reshape(n, -1), deep.reshape(n, -1)], axis=1)

    def _lapse_block(self, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every account's draws for one lapse block (chance, start within it, length), seeded
        by the block alone, so a day gets the same lapses whatever days came before."""
        if block not in self._lapse_blocks:
            rng = np.random.default_rng(
                [self._seed, self._n, self._epoch.toordinal(), 0x1A95E, block]
            )
            chance = rng.random(self._n)
            start = rng.integers(0, _LAPSE_BLOCK_DAYS, self._n)
            extra = np.floor(rng.exponential(_LAPSE_MEAN_EXTRA_DAYS, self._n)).astype(np.int64)
            length = np.minimum(_LAPSE_MIN_DAYS + extra, _LAPSE_MAX_DAYS)
            if len(self._lapse_blocks) >= 16:
                self._lapse_blocks.pop(next(iter(self._lapse_blocks)))
            self._lapse_blocks[block] = (chance, start, length)
        return self._lapse_blocks[block]

    def _lapsing(self, d: int) -> np.ndarray:
        """Which accounts are in a lapse on day ordinal `d`: one that began in the account's
        current block or one of the two before it (lapses last at most two blocks)."""
        phase = self._lapse_phase
        current = (d + phase) // _LAPSE_BLOCK_DAYS
        lapsing = np.zeros(self._n, dtype=bool)
        for block in np.unique(np.concatenate([current, current - 1, current - 2])).tolist():
            chance, start, length = self._lapse_block(block)
            began = block * _LAPSE_BLOCK_DAYS - phase + start
            lapses = chance < self._lapse_rate * _season(
                began, _LAPSE_PEAK_DAY_OF_YEAR, _LAPSE_SEASON
            )
            lapsing |= lapses & (current - block <= 2) & (began <= d) & (d < began + length)
        return lapsing

    def accounts(self) -> pd.DataFrame:
        """The account population, with the raw account names the events carry."""
        if self._accounts_frame is None:
            far = np.iinfo(np.int64).max
            self._accounts_frame = pd.DataFrame(
                {
                    "account_id": self._account_id,
                    "country": _COUNTRY_CODES[self._country],
                    "signup_date": [dt.date.fromordinal(o) for o in self._signup.tolist()],
                    "churn_date": pd.Series(
                        [
                            None if o == far else dt.date.fromordinal(o)
                            for o in self._churn.tolist()
                        ],
                        dtype=object,
                    ),
                    "platform_primary": _PLATFORMS[self._primary_platform],
                }
            )
        return self._accounts_frame.copy()

    def days(self, start: dt.date, end: dt.date) -> Iterator[tuple[dt.date, pd.DataFrame]]:
        """Each day from start to end inclusive, generated lazily to bound memory."""
        for ordinal in range(start.toordinal(), end.toordinal() + 1):
            day = dt.date.fromordinal(ordinal)
            yield day, self.day(day)

    def day(self, day: dt.date) -> pd.DataFrame:
        """All raw records whose ``ts`` (play end, UTC) falls on ``day``, in shuffled order."""
        rng = np.random.default_rng([self._seed, day.toordinal()])
        d = day.toordinal()
        weekday = day.weekday()

        # Who listens today, and how many sessions and plays each of them has.
        eligible = (self._signup <= d) & (d < self._churn) & ~self._lapsing(d)
        season = _season(d, _ACTIVITY_PEAK_DAY_OF_YEAR, _ACTIVITY_SEASON)
        p_active = np.minimum(self._propensity * _WEEKDAY_ACTIVITY[weekday] * season, 1.0)
        acc = np.flatnonzero(eligible & (rng.random(self._n) < p_active))
        n_acc = len(acc)
        lam = self._level[acc] * self._ppad * _WEEKDAY_VOLUME[weekday]
        n_sess = 1 + rng.poisson(np.maximum(lam / 10.0 - 1.0, 0.0))
        travel = rng.random(n_acc) < _TRAVEL_RATE
        away = _sample(rng, np.cumsum(_COUNTRY_P), n_acc)
        away = np.where(away == self._country[acc], (away + 1) % len(_COUNTRIES), away)
        conn_acc = np.where(travel, away, self._country[acc])

        sess_slot = np.repeat(np.arange(n_acc), n_sess)
        sess_acc = acc[sess_slot]
        n_s = len(sess_slot)
        sess_len = rng.geometric(np.minimum(1.0, (n_sess / np.maximum(lam, 1e-9))[sess_slot]))
        ev_sess = np.repeat(np.arange(n_s), sess_len)
        ev_acc = sess_acc[ev_sess]
        n = len(ev_sess)
        sess_first = np.cumsum(sess_len) - sess_len
        first = np.zeros(n, dtype=bool)
        first[sess_first] = True

        # Session-level traits: device, network, shuffle, offline, incognito, local start time.
        on_primary = rng.random(n_s) < 0.88
        sess_platform = np.where(
            on_primary, self._primary_platform[sess_acc], self._secondary_platform[sess_acc]
        )
        roaming = travel[sess_slot] | (rng.random(n_s) < 0.25)
        sess_ip = np.where(roaming, rng.integers(0, len(_IP_POOL), n_s), self._home_ip[sess_acc])
        sess_shuffle = rng.random(n_s) < self._shuffle_rate[sess_acc]
        sess_offline = rng.random(n_s) < self._offline_rate[sess_acc]
        sess_incognito = rng.random(n_s) < self._incognito_rate[sess_acc]
        local_start = _sample(rng, _LOCAL_HOUR_CDF, n_s) * 3600 + rng.integers(0, 3600, n_s)
        offsets = _utc_offsets(d)
        utc_start = local_start - offsets[self._country[sess_acc]] - self._chronoshift[sess_acc]

        # What is played: ~93% tracks (favourites or the global Zipf), ~6% episodes, ~1% books.
        u_kind = rng.random(n)
        pod = self._podcast_rate[ev_acc]
        is_ep = u_kind < pod
        is_ab = ~is_ep & (u_kind < pod + self._audiobook_rate[ev_acc])
        is_tr = ~(is_ep | is_ab)
        from_fav = rng.random(n) < self._fav_rate[ev_acc]
        fav = self._favourites[ev_acc, rng.integers(0, _FAVOURITES_PER_ACCOUNT, n)]
        track = np.where(from_fav, fav, self._track_by_rank[_sample(rng, self._track_cdf, n)])
        episode = _sample(rng, self._ep_cdf, n)
        chapter = _sample(rng, self._ab_cdf, n)
        duration = np.where(
            is_tr,
            self._track_ms[track],
            np.where(is_ep, self._ep_ms[episode], self._ab_ms[chapter]),
        )

        # How it ends: skips are short, completions play the full duration, the rest stop early.
        u_out = rng.random(n)
        skip_p = np.where(is_tr, self._skip_rate[ev_acc], 0.10)
        is_skip = u_out < skip_p
        is_near30 = ~is_skip & is_tr & (u_out < skip_p + 0.02)
        done_p = np.where(is_tr, 0.78, 0.40)
        is_partial = ~is_skip & ~is_near30 & (u_out >= skip_p + (1 - skip_p) * done_p)
        skip_ms = np.round(rng.lognormal(np.log(7_000), 0.9, n)).astype(np.int64)
        near30_ms = rng.integers(29_000, 31_001, n)
        partial_ms = np.round(duration * rng.uniform(0.05, 0.95, n)).astype(np.int64)
        ms = np.select(
            [is_skip, is_near30, is_partial],
            [np.minimum(np.maximum(skip_ms, 250), duration - 1_000), near30_ms, partial_ms],
            default=duration,
        ).astype(np.int64)
        u_end = rng.random(n)
        reason_end = np.select(
            [is_skip, is_near30, is_partial],
            [
                np.where(u_end < 0.85, _RE_FWD, _RE_BACK),
                np.where(u_end < 0.6, _RE_FWD, _RE_ENDPLAY),
                _PARTIAL_END[np.searchsorted(_PARTIAL_END_CDF, u_end * _PARTIAL_END_CDF[-1])],
            ],
            default=_RE_TRACKDONE,
        )

        # How it starts follows from how the previous play in the session ended.
        prev_end = np.roll(reason_end, 1)
        u_start = rng.random(n)
        reason_start = _START_AFTER_END[prev_end]
        reason_start = np.where(
            (prev_end == _RE_ENDPLAY) & (u_start < 0.4), _RS_PLAYBTN, reason_start
        )
        opener = _SESSION_FIRST_START[np.searchsorted(_SESSION_FIRST_START_CDF, u_start * 0.9999)]
        reason_start = np.where(first, opener, reason_start)

        u_skipped = rng.random(n)
        skipped = (reason_end == _RE_FWD) & (u_skipped < 0.5)
        skipped_null = (reason_end != _RE_FWD) & (u_skipped < 0.08)

        # End times: session start plus the running total of play time and pauses, wrapped onto
        # the UTC day so every record lands on it.
        long_pause = rng.random(n) < 0.04
        gap = np.where(long_pause, rng.integers(60_000, 1_200_000, n), rng.integers(0, 3_000, n))
        gap[first] = 0
        running = np.cumsum(ms + gap)
        in_session = running - (running[sess_first] - (ms + gap)[sess_first])[ev_sess]
        second = (utc_start[ev_sess] + in_session // 1000) % 86_400

        day_start = (d - dt.date(1970, 1, 1).toordinal()) * 86_400
        offline = sess_offline[ev_sess]
        started_ms = (day_start + second) * 1000 - ms
        offline_ts = np.where(self._offline_in_ms[ev_acc], started_ms, started_ms // 1000)

        perm = rng.permutation(n)
        second, ms, ev_acc, ev_sess = second[perm], ms[perm], ev_acc[perm], ev_sess[perm]
        is_tr, is_ep, is_ab = is_tr[perm], is_ep[perm], is_ab[perm]
        track, episode, chapter = track[perm], episode[perm], chapter[perm]
        frame = pd.DataFrame(
            {
                "ts": _timestamps(day, second),
                "platform": _PLATFORMS[sess_platform[ev_sess]],
                "ms_played": ms,
                "conn_country": _COUNTRY_CODES[conn_acc[sess_slot[ev_sess]]],
                "ip_addr": _IP_POOL[sess_ip[ev_sess]],
                "master_metadata_track_name": _pick(self._track_name, track, is_tr),
                "master_metadata_album_artist_name": _pick(self._track_artist, track, is_tr),
                "master_metadata_album_album_name": _pick(self._track_album, track, is_tr),
                "spotify_track_uri": _pick(self._track_uri, track, is_tr),
                "episode_name": _pick(self._ep_name, episode, is_ep),
                "episode_show_name": _pick(self._ep_show, episode, is_ep),
                "spotify_episode_uri": _pick(self._ep_uri, episode, is_ep),
                "audiobook_title": _pick(self._ab_title, chapter, is_ab),
                "audiobook_uri": _pick(self._ab_uri, chapter, is_ab),
                "audiobook_chapter_uri": _pick(self._ab_chapter_uri, chapter, is_ab),
                "audiobook_chapter_title": _pick(self._ab_chapter_title, chapter, is_ab),
                "reason_start": _REASON_START[reason_start[perm]],
                "reason_end": _REASON_END[reason_end[perm]],
                "shuffle": _bool_array(sess_shuffle[ev_sess] & is_tr),
                "skipped": _bool_array(skipped[perm], skipped_null[perm]),
                "offline": _bool_array(offline[perm]),
                "offline_timestamp": pd.arrays.IntegerArray(offline_ts[perm], ~offline[perm]),
                "incognito_mode": _bool_array(sess_incognito[ev_sess]),
                "account_id": self._account_id[ev_acc],
            },
            columns=RAW_COLUMNS,
        )
        return frame
