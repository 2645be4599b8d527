"""KPIs computed straight from raw records with plain pandas, independently of the platform.

Written from the KPI definitions alone, so a test that compares the warehouse to these numbers
checks the platform's whole path, not a copy of its code.
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
    return {k: (len(g), g["account"].nunique(), g["ms"].sum() / 60000) for k, g in grouped}


def top_tracks(frame: pd.DataFrame, day: pd.Timestamp) -> list[tuple[int, str, int]]:
    """(rank, Spotify track id, streams) of the day's top tracks (tracks with an id)."""
    return [(rank, key, n) for rank, key, _, _, n in _top_tracks(frame, day)]


def period_start(day: pd.Timestamp, kind: str) -> pd.Timestamp:
    if kind == "week":
        return day - pd.Timedelta(days=day.dayofweek)
    return day.replace(day=1)


def growth_accounting(frame: pd.DataFrame, kind: str, last_day: pd.Timestamp) -> dict:
    """{period start: (active, new, retained, resurrected, churned)} for every period from the
    first with a stream to the one holding `last_day`, as docs/kpis.md defines them."""
    streams = frame[frame["stream"]]
    active: dict[pd.Timestamp, set] = {}
    for account, day in zip(streams["account"], streams["day"], strict=True):
        active.setdefault(period_start(day, kind), set()).add(account)
    if not active:
        return {}
    start, last = min(active), period_start(last_day, kind)
    result, seen, previous = {}, set(), set()
    while start <= last:
        current = active.get(start, set())
        new = current - seen
        retained = current & previous
        resurrected = current - previous - new
        result[start] = (
            len(current),
            len(new),
            len(retained),
            len(resurrected),
            len(previous - current),
        )
        seen |= current
        previous = current
        start = start + pd.Timedelta(days=7) if kind == "week" else start + pd.offsets.MonthBegin()
    return result


def listeners_at_risk(frame: pd.DataFrame, day: pd.Timestamp) -> dict:
    """{(country, platform): (active_28d, at_risk)} on `day`: each account in the segment with
    most of its streams of [day-27, day], ties to the smaller country, then platform."""
    window = frame[
        frame["stream"] & (frame["day"] <= day) & (frame["day"] >= day - pd.Timedelta(days=27))
    ]
    result: dict[tuple[str, str], list[int]] = {}
    for _, plays in window.groupby("account"):
        counts = plays.groupby(["country", "platform"]).size()
        segment = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))[0][0]
        lapsed = plays["day"].max() < day - pd.Timedelta(days=6)
        totals = result.setdefault(segment, [0, 0])
        totals[0] += 1
        totals[1] += int(lapsed)
    return {segment: tuple(totals) for segment, totals in result.items()}


def sessions(frame: pd.DataFrame) -> pd.DataFrame:
    """Every session (account, day, plays, minutes): plays in order of start, a new session when
    one starts more than 30 minutes after the latest end among the earlier plays; its day is
    the UTC date of its first start."""
    rows = []
    gap = pd.Timedelta(minutes=30)
    for account, plays in frame.groupby("account"):
        latest_end = None
        ordered = sorted(zip(plays["started"], plays["ended"], plays["ms"], strict=True))
        for started, ended, ms in ordered:
            if latest_end is None or started > latest_end + gap:
                rows.append([account, started.tz_localize(None).normalize(), 0, 0.0])
                latest_end = ended
            latest_end = max(latest_end, ended)
            rows[-1][2] += 1
            rows[-1][3] += ms / 60000
    return pd.DataFrame(rows, columns=["account", "day", "plays", "minutes"])


def sessions_on(all_sessions: pd.DataFrame, day: pd.Timestamp) -> dict:
    today = all_sessions[all_sessions["day"] == day]
    if today.empty:
        return {"sessions": 0, "listeners": 0, "minutes": 0.0, "median": None, "plays": None}
    return {
        "sessions": len(today),
        "listeners": today["account"].nunique(),
        "minutes": today["minutes"].sum(),
        "median": today["minutes"].median(),
        "plays": today["plays"].sum() / len(today),
    }
