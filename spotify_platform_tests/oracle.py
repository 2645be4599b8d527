"""KPIs computed straight from raw records with plain pandas, independently of the platform.

Written from DESIGN §5 alone, so a test that compares the warehouse to these numbers checks
the platform's whole path, not a copy of its code.
"""

import pandas as pd

SKIP_ENDS = {"fwdbtn", "backbtn", "endplay"}


def prepare(raw: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "account": raw["account_id"],
            "ended": pd.to_datetime(raw["ts"], utc=True),
            "ms": raw["ms_played"].astype("int64"),
            "is_track": raw["spotify_track_uri"].notna()
            | raw["master_metadata_track_name"].notna(),
            "artist": raw["master_metadata_album_artist_name"],
            "track": raw["master_metadata_track_name"],
            "uri": raw["spotify_track_uri"],
            "skipped_flag": raw["skipped"].astype("boolean").fillna(False).astype(bool),
            "reason_end": raw["reason_end"],
        }
    )
    frame["day"] = frame["ended"].dt.tz_localize(None).dt.normalize()
    frame["stream"] = frame["is_track"] & (frame["ms"] >= 30_000)
    frame["skip"] = frame["is_track"] & (
        frame["skipped_flag"] | frame["reason_end"].isin(SKIP_ENDS)
    )
    return frame


def daily_streams(frame: pd.DataFrame, day: pd.Timestamp) -> dict:
    today = frame[frame["day"] == day]
    tracks = today[today["is_track"]]
    return {
        "plays": len(today),
        "streams": int(today["stream"].sum()),
        "listeners": today.loc[today["stream"], "account"].nunique(),
        "minutes_played": today["ms"].sum() / 60000,
        "skip_rate": (tracks["skip"].sum() / len(tracks)) if len(tracks) else None,
    }


def active(frame: pd.DataFrame, day: pd.Timestamp, days: int) -> int:
    window = frame[
        frame["stream"] & (frame["day"] <= day) & (frame["day"] > day - pd.Timedelta(days=days))
    ]
    return window["account"].nunique()


def _who(name: str) -> str:
    """An artist's or legacy track's identity: its name stripped and case-folded."""
    return name.strip().casefold()


def _track_key(row) -> str:
    """A track's identity: its Spotify id, else "~" and its names' identities (a surrogate id
    starts with "~", which sorts after every Spotify id's characters)."""
    if isinstance(row.uri, str):
        return row.uri.split(":")[-1]
    return "~" + _who(row.artist) + "\x1f" + _who(row.track)


def _latest(plays: pd.DataFrame, key, names) -> dict:
    """Per identity, `names(play)` of its latest play: the latest end, then the least names."""
    best = {}
    for row in plays.itertuples():
        rank = (-row.ended.value, names(row))
        who = key(row)
        if who not in best or rank < best[who]:
            best[who] = rank
    return {who: rank[1] for who, rank in best.items()}


def artist_names(frame: pd.DataFrame) -> dict[str, str]:
    """The name each artist (by identity) is shown under, from the plays in `frame`."""
    plays = frame[frame["is_track"] & frame["artist"].notna()]
    return _latest(plays, lambda r: _who(r.artist), lambda r: r.artist.strip())


def track_names(frame: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """The (track, artist) names each track (by identity) is shown under."""
    plays = frame[frame["is_track"] & frame["track"].notna()]
    return _latest(plays, _track_key, lambda r: (r.track.strip(), r.artist.strip()))


def _dense(rows: list[tuple], n: int = 50) -> list[tuple]:
    """Rows sorted already, streams first: the first n, with dense ranks by streams."""
    ranked, rank, previous = [], 0, None
    for row in rows[:n]:
        if row[0] != previous:
            rank, previous = rank + 1, row[0]
        ranked.append((rank, *row))
    return ranked


def top_artists(frame: pd.DataFrame, day: pd.Timestamp) -> list[tuple[int, str, int]]:
    today = frame[frame["day"] == day]
    shown = artist_names(today)
    streams = today[today["stream"]]
    counts = streams.groupby(streams["artist"].map(_who)).size()
    rows = sorted((-int(n), shown[who]) for who, n in counts.items())
    return [(rank, name, -minus) for rank, minus, name in _dense(rows)]


def top_track_names(frame: pd.DataFrame, day: pd.Timestamp) -> list[tuple[int, str, str, int]]:
    """(rank, track name, artist name, streams) of the day's top tracks."""
    return [(rank, track, artist, n) for rank, _, track, artist, n in _top_tracks(frame, day)]


def _top_tracks(frame: pd.DataFrame, day: pd.Timestamp) -> list[tuple]:
    today = frame[frame["day"] == day]
    shown = track_names(today)
    streams = today[today["stream"]]
    counts = streams.apply(_track_key, axis=1).value_counts()
    rows = sorted((-int(n), *shown[key], key) for key, n in counts.items())
    return [(rank, key, track, artist, -minus) for rank, minus, track, artist, key in _dense(rows)]


def churn(frame: pd.DataFrame, day: pd.Timestamp) -> tuple[int, int]:
    streams = frame[frame["stream"]]

    def accounts(start: int, end: int) -> set:
        window = streams[
            (streams["day"] >= day - pd.Timedelta(days=start))
            & (streams["day"] <= day - pd.Timedelta(days=end))
        ]
        return set(window["account"])

    base = accounts(59, 30)
    return len(base), len(base - accounts(29, 0))


def retention(frame: pd.DataFrame) -> dict[tuple[pd.Timestamp, int], tuple[int, int]]:
    streams = frame[frame["stream"]]
    monday = streams["day"] - pd.to_timedelta(streams["day"].dt.dayofweek, unit="D")
    weeks = pd.DataFrame({"account": streams["account"], "week": monday})
    first = weeks.groupby("account")["week"].min()
    last_week = weeks["week"].max()
    result = {}
    for cohort in sorted(first.unique()):
        members = set(first[first == cohort].index)
        offset = 0
        while cohort + pd.Timedelta(weeks=offset) <= last_week:
            week = cohort + pd.Timedelta(weeks=offset)
            active = set(weeks.loc[weeks["week"] == week, "account"]) & members
            result[(pd.Timestamp(cohort), offset)] = (len(members), len(active))
            offset += 1
    return result


def engagement(frame: pd.DataFrame, day: pd.Timestamp, key: str) -> dict:
    streams = frame[frame["stream"] & (frame["day"] == day)]
    grouped = streams.groupby(key)
    return {
        k: (len(g), g["account"].nunique(), g["ms"].sum() / 60000) for k, g in grouped
    }


def top_tracks(frame: pd.DataFrame, day: pd.Timestamp) -> list[tuple[int, str, int]]:
    """(rank, Spotify track id, streams) of the day's top tracks (tracks with an id)."""
    return [(rank, key, n) for rank, key, _, _, n in _top_tracks(frame, day)]
