"""The daily schedule: yesterday's UTC partition, shortly after midnight UTC."""

from dagster import (
    AssetSelection,
    build_schedule_from_partitioned_job,
    define_asset_job,
    multiprocess_executor,
)

from spotify_platform.assets.api import RECENTLY_PLAYED
from spotify_platform.assets.uploads import UPLOADS
from spotify_platform.checks import FRESHNESS_CHECKS
from spotify_platform.partitions import daily_partitions

daily_pipeline_job = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.groups("raw", "staging", "warehouse", "kpis", "reports")
    - AssetSelection.assets(RECENTLY_PLAYED, UPLOADS)
    - AssetSelection.checks(*FRESHNESS_CHECKS),
    partitions_def=daily_partitions,
    # Launched runs (the UI, schedules, backfills) run independent steps side by side. Steps
    # fork from a server that has imported the code location once: a fresh interpreter per
    # step would spend about 3 s importing pandas, pandera and Dagster before any work.
    # In-process runs (`spotify-platform run`, tests) are not affected.
    executor_def=multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": ["spotify_platform.definitions"]}}}
    ),
    description=(
        "Raw → staging → warehouse → KPIs → dashboard for a day or, as one run, a range of days."
    ),
)

daily_schedule = build_schedule_from_partitioned_job(
    daily_pipeline_job, hour_of_day=1, minute_of_hour=15, name="daily_pipeline_schedule"
)
