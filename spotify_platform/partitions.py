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
