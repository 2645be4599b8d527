"""Daily UTC partitions: an event's partition is the UTC date of the moment it ended."""

import datetime as dt
import math
import os
from collections.abc import Mapping, Sequence

import pandas as pd
from dagster import AssetExecutionContext, AssetKey, DailyPartitionsDefinition, MaterializeResult

DEFAULT_PARTITIONS_START = "2010-01-01"
# Each day of a range gets its own figures up to this many days. Dagster works out the run's
# partition keys again at every per-partition addition (2 ms for ten years of days), so the
# cost grows with the square of the range: years of history in one run keep their figures on
# the last day only.
DAY_FIGURES_UP_TO = 400

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


def day_figures(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, dict[str, object]]:
    """Each day's values of `columns` in a day-keyed frame, by partition key; a NULL (a ratio
    without a denominator) is left out rather than shown as NaN."""
    figures: dict[str, dict[str, object]] = {}
    for row in frame[["dt", *columns]].itertuples(index=False):
        values = {}
        for column, value in zip(columns, row[1:], strict=True):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            values[column] = float(value) if isinstance(value, float) else int(value)
        figures[pd.Timestamp(row[0]).date().isoformat()] = values
    return figures


def run_summary(
    context: AssetExecutionContext,
    metadata: dict,
    per_day: Mapping[str, Mapping[str, object]] | None = None,
    asset_key: AssetKey | None = None,
) -> MaterializeResult:
    """The run's figures, and each day's own (`per_day`, by partition key) on its day;
    `asset_key` names the asset in a step of several.

    A one-day run's on its day. A range's run figures go on its last day only, with the range
    named: returned for a range, they would be copied onto every day of it, as if each day had
    the range's totals and the last day's preview."""
    partitioned = context.has_partition_key or context.has_partition_key_range
    keys = list(context.partition_keys) if partitioned else []
    per_day = per_day or {}
    if len(keys) <= 1:
        own = per_day.get(keys[0], {}) if keys else {}
        return MaterializeResult(asset_key=asset_key, metadata={**own, **metadata})
    add_day_metadata(context, per_day, asset_key, metadata, keys)
    return MaterializeResult(asset_key=asset_key)


def add_day_metadata(
    context: AssetExecutionContext,
    per_day: Mapping[str, Mapping[str, object]],
    asset_key: AssetKey | None = None,
    last: Mapping[str, object] | None = None,
    keys: Sequence[str] | None = None,
) -> None:
    """Each day's own metadata (`per_day`, by partition key) on its own materialization, and
    `last` with the range named on the range's last day. A range of more than
    DAY_FIGURES_UP_TO days keeps only its last day's."""
    keys = list(context.partition_keys) if keys is None else keys
    if len(keys) <= DAY_FIGURES_UP_TO:
        for key in keys[:-1]:
            if per_day.get(key):
                context.add_asset_metadata(
                    dict(per_day[key]), asset_key=asset_key, partition_key=key
                )
    named = {"run_range": f"{keys[0]}..{keys[-1]}"} if len(keys) > 1 else {}
    context.add_asset_metadata(
        {**per_day.get(keys[-1], {}), **named, **(last or {})},
        asset_key=asset_key,
        partition_key=keys[-1],
    )


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
