"""Reading the staged layer: which days have staged rows, and those rows.

A day without raw files has no staged files at all (staging writes nothing for it), so a
range of years costs a listing per year here, and a Parquet read per day that had plays.
"""

import datetime as dt
from collections.abc import Callable

import pandas as pd

from spotify_platform.layout import STAGING_ROOT, staging_key
from spotify_platform.resources.lake import LakeResource

StagedReader = Callable[[dt.date], pd.DataFrame | None]


def staged_days(lake: LakeResource, days: list[dt.date]) -> set[dt.date]:
    """The days among `days` whose staged rows exist."""
    return {
        day
        for day, keys in lake.keys_by_day(STAGING_ROOT, days).items()
        if staging_key(day) in keys
    }


def staged_reader(
    lake: LakeResource, days: list[dt.date], columns: list[str] | None = None
) -> StagedReader:
    """A day's staged columns, text left in Arrow (the aggregates hand it straight back to
    Arrow), or None for a day that has no staged rows."""
    present = staged_days(lake, days)

    def read(day: dt.date) -> pd.DataFrame | None:
        if day not in present:
            return None
        return lake.read_parquet(staging_key(day), columns=columns, arrow_strings=True)

    return read


def staged_frames(lake: LakeResource, days: list[dt.date], columns: list[str]) -> pd.DataFrame:
    """The staged columns of all `days` in one frame (no rows where none were staged)."""
    read = staged_reader(lake, days, columns)
    frames = [frame for frame in map(read, days) if frame is not None]
    if not frames:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    return pd.concat(frames, ignore_index=True)
