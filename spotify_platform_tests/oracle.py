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


def top_artists(frame: pd.DataFrame, day: pd.Timestamp) -> list[tuple[int, str, int]]:
    streams = frame[frame["stream"] & (frame["day"] == day)]
    counts = streams.groupby("artist")["account"].agg(["size", "nunique"])
    rows = sorted(counts.itertuples(), key=lambda r: (-r.size, r.Index))
    ranked, rank, previous = [], 0, None
    for row in rows[:50]:
        if row.size != previous:
            rank, previous = rank + 1, row.size
        ranked.append((rank, row.Index, int(row.size)))
    return ranked


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
    streams = frame[frame["stream"] & (frame["day"] == day)]
    counts = streams.groupby(["uri", "track", "artist"]).size().reset_index(name="n")
    rows = sorted(counts.itertuples(), key=lambda r: (-r.n, r.track, r.artist, r.uri))
    ranked, rank, previous = [], 0, None
    for row in rows[:50]:
        if row.n != previous:
            rank, previous = rank + 1, row.n
        ranked.append((rank, row.uri.split(":")[-1], int(row.n)))
    return ranked
