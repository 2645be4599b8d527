"""Staging a range of days in the lake: which days go together, one by one, or side by side.

Small days are staged in groups (`stage_stored_days`): typing and validating a few dozen
plays costs about what a few thousand do. Bigger days are staged one at a time, or, when
there is enough of them and each is small enough that several fit in memory at once, in
worker processes (`workers`).
"""

import datetime as dt
from collections.abc import Iterator

from spotify_platform.core.lake.layout import RAW_ROOT
from spotify_platform.core.lake.store import LakeStore
from spotify_platform.core.progress import Log, Stopwatch
from spotify_platform.core.staging.lake_io import (
    clear_staged,
    stage_stored_day,
    stage_stored_days,
)
from spotify_platform.core.staging.workers import stage_in_workers

# Days up to this much raw gzip (about 10k plays) are staged together, GROUP_BYTES at a time.
SMALL_DAY_BYTES = 1 << 20
GROUP_BYTES = 8 << 20
# Bigger days whose raw files are all this small (gzip bytes, about 170k plays each) may be
# staged side by side; a bigger day goes alone, as two at once would double the peak memory.
SIDE_BY_SIDE_BYTES = 16 << 20
# With this much raw data in all, days are staged in worker processes; below it, starting
# them would cost more than it saves.
WORKERS_MIN_BYTES = 24 << 20


def stage_lake_days(
    lake: LakeStore, key: bytes, days: list[dt.date], log: Log | None = None
) -> dict[dt.date, dict]:
    """Stage every day of `days` that has raw files; the stats of each (`day_stats`).

    Days without raw files lose any staged files an earlier run left. `log` is told of each
    group of days as it is done, with the progress so far (a `Progress`).
    """
    raw = lake.keys_by_day(RAW_ROOT, days)
    present = [day for day in days if day in raw]
    clear_staged(lake, [day for day in days if day not in raw])
    sizes = {day: sum(raw[day].values()) for day in present}
    progress = _Progress(len(present), log or (lambda line: None))
    landed: dict[dt.date, dict] = {}
    for group in small_day_groups(present, sizes):
        group_stats = stage_stored_days(lake, key, {day: list(raw[day]) for day in group})
        landed.update(group_stats)
        progress.done(group, group_stats, landed)
    big = [day for day in present if day not in landed]
    for day, stats in zip(big, _stage_big_days(lake, key, big, raw, sizes), strict=True):
        landed[day] = stats
        progress.done([day], {day: stats}, landed)
    if len(present) < len(days):
        progress.log(f"{len(days) - len(present)} days without raw files: nothing staged")
    return landed


def small_day_groups(days: list[dt.date], sizes: dict[dt.date, int]) -> list[list[dt.date]]:
    """Runs of consecutive small days, each run at most GROUP_BYTES of raw gzip."""
    groups: list[list[dt.date]] = []
    current: list[dt.date] = []
    weight = 0
    for day in days:
        if sizes[day] > SMALL_DAY_BYTES:
            continue
        if current and weight + sizes[day] > GROUP_BYTES:
            groups.append(current)
            current, weight = [], 0
        current.append(day)
        weight += sizes[day]
    if current:
        groups.append(current)
    return groups


def side_by_side(days: list[dt.date], sizes: dict[dt.date, int]) -> bool:
    """Whether days too big to group are worth staging in worker processes."""
    return (
        len(days) > 1
        and max(sizes[day] for day in days) <= SIDE_BY_SIDE_BYTES
        and sum(sizes[day] for day in days) >= WORKERS_MIN_BYTES
    )


def _stage_big_days(
    lake: LakeStore,
    key: bytes,
    days: list[dt.date],
    raw: dict[dt.date, dict[str, int]],
    sizes: dict[dt.date, int],
) -> Iterator[dict]:
    if side_by_side(days, sizes):
        yield from stage_in_workers(lake, key, days, raw)
        return
    for day in days:
        yield stage_stored_day(lake, key, day, list(raw[day]))


class _Progress:
    """Each group's figures, and the step's progress over the days with raw files."""

    def __init__(self, days: int, log: Log) -> None:
        self.log, self.watch = log, Stopwatch(days, "days with raw files")

    def done(self, group: list[dt.date], stats: dict[dt.date, dict], landed: dict) -> None:
        span = f"{group[0]}" if len(group) == 1 else f"{group[0]}..{group[-1]} ({len(group)} days)"
        total = {
            name: sum(s[name] for s in stats.values())
            for name in ("raw_records", "staged_rows", "quarantined_rows", "duplicates_removed")
        }
        records = sum(s["raw_records"] for s in landed.values())
        line = (
            f"{span}: {total['raw_records']} raw, {total['staged_rows']} staged, "
            f"{total['quarantined_rows']} quarantined, {total['duplicates_removed']} duplicates"
        )
        self.log(self.watch.progress(line, len(landed), records))
