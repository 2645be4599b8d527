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
