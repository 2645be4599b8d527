"""Daily UTC partitions: an event's partition is the UTC date of the moment it ended."""

import datetime as dt
import os

from dagster import AssetExecutionContext, DailyPartitionsDefinition, MaterializeResult

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


def run_summary(context: AssetExecutionContext, metadata: dict) -> MaterializeResult:
    """The run's figures: a one-day run's on its day; a range's on its last day only, with
    the range named. Returned for a range, they would be copied onto every day of it, as if
    each day had the range's totals and the last day's preview."""
    keys = context.partition_keys if context.has_partition_key_range else []
    if len(keys) <= 1:
        return MaterializeResult(metadata=metadata)
    context.add_asset_metadata(
        {"run_range": f"{keys[0]}..{keys[-1]}", **metadata}, partition_key=keys[-1]
    )
    return MaterializeResult()


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# Dagster's run tags for a single run over a partition range: the form its maintainers show for
# launching one from a schedule or sensor; 1.13 exports no constant and RunRequest no argument.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# The tags Dagster gives a run of one partition and each run of a backfill.
PARTITION_TAG = "dagster/partition"
BACKFILL_TAG = "dagster/backfill"


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Tags that make a run of a daily job cover first..last as one single-run backfill."""
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}
