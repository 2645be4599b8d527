"""The daily schedule: yesterday's UTC partition, shortly after midnight UTC."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from spotify_platform.checks import FRESHNESS_CHECKS
from spotify_platform.partitions import daily_partitions

daily_pipeline_job = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.groups("raw", "staging", "warehouse", "kpis", "reports")
    - AssetSelection.assets(["lake", "raw_recently_played"])
    - AssetSelection.checks(*FRESHNESS_CHECKS),
    partitions_def=daily_partitions,
    description=(
        "Raw → staging → warehouse → KPIs → dashboard for a day or, as one run, a range of days."
    ),
)

daily_schedule = build_schedule_from_partitioned_job(
    daily_pipeline_job, hour_of_day=1, minute_of_hour=15, name="daily_pipeline_schedule"
)
