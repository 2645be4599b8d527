"""Daily UTC partitions: an event's partition is the UTC date of the moment it ended."""

import datetime as dt
import os

from dagster import AssetExecutionContext, DailyPartitionsDefinition

DEFAULT_PARTITIONS_START = "2010-01-01"

daily_partitions = DailyPartitionsDefinition(
    start_date=os.environ.get("PARTITIONS_START", DEFAULT_PARTITIONS_START),
    timezone="UTC",
    fmt="%Y-%m-%d",
)


def days_of(context: AssetExecutionContext) -> list[dt.date]:
    """The days this run covers: one for a partition run, many for a single-run backfill."""
    window = context.partition_time_window
    first = window.start.date()
    count = (window.end.date() - first).days
    return [first + dt.timedelta(days=i) for i in range(count)]


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# Dagster's run tags for a single run over a partition range: the form its maintainers show for
# launching one from a schedule or sensor; 1.13 exports no constant and RunRequest no argument.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Tags that make a run of a daily job cover first..last as one single-run backfill."""
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}
