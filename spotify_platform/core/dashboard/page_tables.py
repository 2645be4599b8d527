"""The dashboard's tables as plain text cells: top artists and tracks, listeners at risk, and the
history's year rows. The page's template writes them out, escaping every cell."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from spotify_platform.core.dashboard.data import TOP_ROWS, HistoryData, days_of
from spotify_platform.core.dashboard.insights import segment_label

RISK_ROWS = 10
# Cells holding names from the data: isolated (<bdi>) so right-to-left names keep the row's order.
NAME_KEYS = {"artist_name", "track_name", "segment"}


@dataclass(frozen=True)
class Cell:
    key: str | None  # the cell's class, which the page's style sheet sizes by
    text: str
    bar: float | None = None  # width in % of a bar drawn behind the text

    @property
    def isolated(self) -> bool:
        return self.key in NAME_KEYS


@dataclass(frozen=True)
class Table:
    columns: list[tuple[str | None, str]]  # (class, title) of each column
    rows: list[list[Cell]]
    kind: str = "table"


Columns = list[tuple[str, str, Callable[[object], str]]]


def count(value: object) -> str:
    return f"{int(value):,}"


def minutes(value: object) -> str:
    return f"{float(value):,.0f}"


def name(value: object) -> str:
    return str(value)


ARTIST_COLUMNS: Columns = [
    ("rank", "#", count),
    ("artist_name", "Artist", name),
    ("streams", "Streams", count),
    ("listeners", "Listeners", count),
    ("minutes_played", "Minutes", minutes),
]
TRACK_COLUMNS: Columns = [
    ("rank", "#", count),
    ("track_name", "Track", name),
    ("artist_name", "Artist", name),
    ("streams", "Streams", count),
    ("listeners", "Listeners", count),
]
YEAR_ARTIST_COLUMNS: Columns = [
    ("artist_name", "Artist", name),
    ("streams", "Streams", count),
    ("minutes_played", "Minutes", minutes),
]
YEAR_TRACK_COLUMNS: Columns = [
    ("track_name", "Track", name),
    ("artist_name", "Artist", name),
    ("streams", "Streams", count),
]


def top_artists(frame: pd.DataFrame) -> pd.DataFrame:
    """The day's TOP_ROWS artists by rank, equal ranks by name."""
    if frame.empty:
        return frame
    return frame.sort_values(["rank", "artist_name"], kind="mergesort").head(TOP_ROWS)


def top_tracks(frame: pd.DataFrame) -> pd.DataFrame:
    """The day's TOP_ROWS tracks by rank, equal ranks by name, artist and id."""
    if frame.empty:
        return frame
    order = ["rank", "track_name", "artist_name", "track_id"]
    return frame.sort_values(order, kind="mergesort").head(TOP_ROWS)


def top_table(rows: pd.DataFrame, columns: Columns) -> Table | None:
    """A ranked table with a bar behind the stream count, or None without rows."""
    if rows.empty:
        return None
    peak = max(int(rows["streams"].max()), 1)
    body = []
    for _, row in rows.iterrows():
        cells = []
        for key, _, fmt in columns:
            bar = 100 * int(row["streams"]) / peak if key == "streams" else None
            cells.append(Cell(key, fmt(row[key]), bar))
        body.append(cells)
    return Table([(key, title) for key, title, _ in columns], body)


def at_risk_table(at_risk: pd.DataFrame, day: dt.date) -> Table | None:
    """The RISK_ROWS segments with the most listeners at risk on `day`, or None."""
    if at_risk.empty:
        return None
    rows = at_risk[days_of(at_risk) == pd.Timestamp(day)]
    if rows.empty or int(rows["at_risk"].sum()) == 0:
        return None
    top = sorted(
        rows.itertuples(),
        key=lambda r: (-int(r.at_risk), -float(r.at_risk_share), r.country, r.platform),
    )[:RISK_ROWS]
    columns: list[tuple[str | None, str]] = [
        ("segment", "Segment"),
        ("at_risk", "At risk"),
        ("active_28d", "Listeners (28 days)"),
        ("share", "Share"),
    ]
    body = [
        [
            Cell("segment", segment_label(r.country, r.platform)),
            Cell("at_risk", f"{int(r.at_risk):,}"),
            Cell("active_28d", f"{int(r.active_28d):,}"),
            Cell("share", f"{float(r.at_risk_share):.0%}"),
        ]
        for r in top
    ]
    return Table(columns, body)


def year_table(years: pd.DataFrame, history: HistoryData) -> Table:
    """A row per year of `data.by_period(daily, "Y")` with the year's top artist."""
    titles = ("Year", "Days with plays", "Plays", "Streams", "Minutes", "Top artist")
    body = []
    for row in years.itertuples(index=False):
        year = int(row.period.year)
        artists = history.top_artists[history.top_artists["year"] == year]
        top = str(artists.iloc[0]["artist_name"]) if len(artists) else "—"
        texts = [
            str(year),
            count(row.days_with_plays),
            count(row.plays),
            count(row.streams),
            minutes(row.minutes_played),
        ]
        body.append([*(Cell(None, text) for text in texts), Cell("artist_name", top)])
    return Table([(None, title) for title in titles], body)
