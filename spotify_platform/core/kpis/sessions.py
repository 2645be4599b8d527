"""Listening sessions (kpi_sessions) and the per-day runs they are built from.

A session is an account's run of plays, in order of start, where each play starts at most 30
minutes after the latest end among the run's earlier plays; it belongs to the UTC day its first
play starts on. Put differently, sessions are the connected stretches of the intervals
[start, end + 30 min] of an account's plays, so runs cut from part of the plays join into
sessions by the same rule: `agg_account_sessions` holds each day's plays cut on their own, and
the KPI joins those runs again across midnight, reading a few rows per account instead of
every play.

Pure: pandas and numpy, plus the SQL that reads the runs; no Dagster and no I/O.
"""

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

GAP_MS = 30 * 60 * 1000
MS_PER_DAY = 86_400_000
MS_PER_MINUTE = 60_000.0
RUN_COLUMNS = ["start_ms", "end_ms", "plays", "ms_played"]
KPI_COLUMNS = [
    "dt",
    "sessions",
    "listeners",
    "minutes",
    "avg_session_minutes",
    "median_session_minutes",
    "avg_plays_per_session",
]


def _codes(column: pd.Series) -> np.ndarray:
    """Integer codes of a column's values; text goes through Arrow's dictionary encoding,
    which hashes the account ids without a Python object per value."""
    if pd.api.types.is_string_dtype(column.dtype) or column.dtype == object:
        array = pa.array(column, type=pa.string())
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        indices = pc.dictionary_encode(array).indices
        return indices.to_numpy(zero_copy_only=False).astype("int64")
    return pd.factorize(column)[0].astype("int64")


def merge_runs(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """One row per session within each `by` group of `frame`'s rows (plays or runs of plays,
    each with start_ms, end_ms, plays, ms_played): its first start, latest end and sums.

    Rows are taken in order of start; a row opens a session when it starts more than GAP_MS
    after the latest end before it in its group. (Rows starting together join one session
    whatever their order, so ties need no rule.)
    """
    columns = [*by, *RUN_COLUMNS]
    if frame.empty:
        return frame[columns].iloc[0:0].reset_index(drop=True)
    group = np.zeros(len(frame), dtype="int64")
    for name in by:
        codes = _codes(frame[name])
        group = group * (int(codes.max()) + 1) + codes
    start = frame["start_ms"].to_numpy(dtype="int64")
    end = frame["end_ms"].to_numpy(dtype="int64")
    order = np.lexsort((start, group))
    group, start, end = group[order], start[order], end[order]
    reach = pd.Series(end).groupby(group, sort=False).cummax().to_numpy()
    first_in_group = np.r_[True, group[1:] != group[:-1]]
    opens = first_in_group | (start > np.r_[0, reach[:-1]] + GAP_MS)
    bounds = np.flatnonzero(opens)
    keys = frame[list(by)].iloc[order[bounds]].reset_index(drop=True)
    return keys.assign(
        start_ms=start[bounds],
        end_ms=np.maximum.reduceat(end, bounds),
        plays=np.add.reduceat(frame["plays"].to_numpy(dtype="int64")[order], bounds),
        ms_played=np.add.reduceat(frame["ms_played"].to_numpy(dtype="int64")[order], bounds),
    )


def _epoch_ms(stamps: pd.Series) -> np.ndarray:
    return stamps.dt.as_unit("ms").astype("int64").to_numpy()


def _utc(ms: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ms, unit="ms", utc=True)).dt.as_unit("ns")


def account_sessions(plays: pd.DataFrame) -> pd.DataFrame:
    """agg_account_sessions rows from staged plays: each account's plays of each day (`dt`, the
    day they ended) cut into sessions on their own."""
    columns = ["dt", "account_id", "started_at", "ended_at", "plays", "ms_played"]
    if plays.empty:
        return pd.DataFrame(
            {
                "dt": pd.Series(dtype="datetime64[ns]"),
                "account_id": pd.Series(dtype=object),
                "started_at": pd.Series(dtype="datetime64[ns, UTC]"),
                "ended_at": pd.Series(dtype="datetime64[ns, UTC]"),
                "plays": pd.Series(dtype="int64"),
                "ms_played": pd.Series(dtype="int64"),
            }
        )[columns]
    runs = merge_runs(
        pd.DataFrame(
            {
                "dt": pd.to_datetime(plays["dt"]).to_numpy(dtype="datetime64[ns]"),
                "account_id": plays["account_id"],
                "start_ms": _epoch_ms(plays["started_at"]),
                "end_ms": _epoch_ms(plays["ended_at"]),
                "plays": 1,
                "ms_played": plays["ms_played"].to_numpy(dtype="int64"),
            }
        ),
        ["dt", "account_id"],
    )
    return runs.assign(started_at=_utc(runs["start_ms"]), ended_at=_utc(runs["end_ms"]))[columns]


# Start and end as integer milliseconds since 1970, so the gap arithmetic is the same on every
# dialect and MySQL's rows arrive as integers rather than datetime objects.
EPOCH_MS = {
    "sqlite": "CAST(ROUND((julianday({column}) - 2440587.5) * 86400000) AS INTEGER)",
    "mysql": "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', {column}) DIV 1000",
}

# The runs that can belong to sessions starting in [first, last]: every run of those days, the
# previous day's runs that end late enough to reach into `first` (their sessions start earlier,
# which rules out the runs they join), and later days' runs that start by `horizon`.
RUNS_SQL = """
SELECT account_id, {started} AS start_ms, {ended} AS end_ms, plays, ms_played
FROM agg_account_sessions
WHERE dt BETWEEN :before AND :after
  AND (dt > :before OR ended_at >= :joins_from)
  AND (dt <= :last OR started_at <= :horizon)
"""


def runs_query(dialect: str, first: dt.date, last: dt.date, horizon: dt.datetime) -> sa.TextClause:
    """RUNS_SQL for sessions starting in [first, last]; `horizon` bounds the starts of later
    days' runs (a run of day Q starts on Q-1 at the earliest: plays last under a day)."""
    epoch_ms = EPOCH_MS["sqlite" if dialect == "sqlite" else "mysql"]
    day_start = dt.datetime.combine(first, dt.time())
    params = {
        "before": (first - dt.timedelta(days=1), sa.Date()),
        "after": (horizon.date() + dt.timedelta(days=1), sa.Date()),
        "last": (last, sa.Date()),
        "joins_from": (day_start - dt.timedelta(milliseconds=GAP_MS), sa.DateTime()),
        "horizon": (horizon, sa.DateTime()),
    }
    sql = RUNS_SQL.format(
        started=epoch_ms.format(column="started_at"), ended=epoch_ms.format(column="ended_at")
    )
    return sa.text(sql).bindparams(
        *(sa.bindparam(name, value, type_=kind) for name, (value, kind) in params.items())
    )


def _day_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * MS_PER_DAY


def sessions_starting(
    first: dt.date, last: dt.date, read: Callable[[dt.datetime], pd.DataFrame]
) -> pd.DataFrame:
    """The sessions (account_id, start_ms, end_ms, plays, ms_played) starting in [first, last].

    `read(horizon)` returns the runs of `runs_query` for that horizon. It starts 30 minutes
    after midnight ending `last`; a session reaching past it (hours of listening across
    midnight) is read again with the horizon moved to its reach, until none does.
    """
    horizon_ms = _day_ms(last + dt.timedelta(days=1)) + GAP_MS
    low, high = _day_ms(first), _day_ms(last + dt.timedelta(days=1))
    while True:
        horizon = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=horizon_ms)
        merged = merge_runs(read(horizon), ["account_id"])
        starting = merged[(merged["start_ms"] >= low) & (merged["start_ms"] < high)]
        reach = int(starting["end_ms"].max()) + GAP_MS if len(starting) else 0
        if reach <= horizon_ms:
            return starting.reset_index(drop=True)
        horizon_ms = reach


def daily(sessions: pd.DataFrame, days: Sequence[dt.date]) -> pd.DataFrame:
    """kpi_sessions rows for `days` from the sessions starting on them; zeros and NULL averages
    on a day without sessions."""
    wanted = pd.DatetimeIndex(pd.to_datetime(sorted(set(days))), name="dt")
    day = pd.to_datetime(sessions["start_ms"].to_numpy(dtype="int64") // MS_PER_DAY, unit="D")
    grouped = (
        pd.DataFrame(
            {
                "dt": day,
                "account_id": sessions["account_id"].to_numpy(),
                "plays": sessions["plays"].to_numpy(dtype="int64"),
                "ms_played": sessions["ms_played"].to_numpy(dtype="int64"),
            }
        )
        .groupby("dt")
        .agg(
            sessions=("plays", "size"),
            listeners=("account_id", "nunique"),
            plays=("plays", "sum"),
            ms_played=("ms_played", "sum"),
            median_ms=("ms_played", "median"),
        )
        .reindex(wanted)
    )
    count = grouped["sessions"].fillna(0).astype("int64")
    per_session = count.where(count > 0)
    minutes = grouped["ms_played"].fillna(0) / MS_PER_MINUTE
    frame = pd.DataFrame(
        {
            "sessions": count,
            "listeners": grouped["listeners"].fillna(0).astype("int64"),
            "minutes": minutes.astype(float),
            "avg_session_minutes": minutes / per_session,
            "median_session_minutes": grouped["median_ms"].astype(float) / MS_PER_MINUTE,
            "avg_plays_per_session": grouped["plays"] / per_session,
        }
    )
    return frame.reset_index()[KPI_COLUMNS]
