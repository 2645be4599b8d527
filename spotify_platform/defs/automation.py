"""Jobs, schedules and sensors: every way a run of the platform starts, in one place.

`daily_pipeline` is the main job, one day or a range of days as one run; the schedule runs
yesterday's day after midnight UTC. Sensors notice and request runs, the runs do the work, since
a tick times out after 60 s. Uploads go through two runs the UI shows apart: `import_upload`
lands one export in raw/, then `daily_pipeline` runs the days it landed. The days are known only
once the export is read, and a run's partition range is fixed when it is launched, so one run
cannot do both.
"""

import datetime as dt

from dagster import (
    AssetRecordsFilter,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    build_schedule_from_partitioned_job,
    build_sensor_for_freshness_checks,
    define_asset_job,
    in_process_executor,
    multiprocess_executor,
    sensor,
)

from spotify_platform.core.lake.ingest import UPLOADS_PREFIX, Upload, pending_uploads
from spotify_platform.defs.assets.api import RECENTLY_PLAYED
from spotify_platform.defs.assets.uploads import UPLOADS, import_run_config
from spotify_platform.defs.checks import FRESHNESS_CHECKS, quietly_superseded
from spotify_platform.defs.partitions import daily_partitions, range_tags
from spotify_platform.defs.resources.lake import LakeResource

daily_pipeline_job = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.groups("raw", "staging", "warehouse", "kpis", "reports")
    - AssetSelection.assets(RECENTLY_PLAYED, UPLOADS)
    - AssetSelection.checks(*FRESHNESS_CHECKS),
    partitions_def=daily_partitions,
    # Launched runs (the UI, schedules, backfills) run independent steps side by side. Steps
    # fork from a server that has imported the code location once: a fresh interpreter per
    # step would spend seconds importing pandas, pandera and Dagster before any work.
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


recently_played_job = define_asset_job(
    "recently_played",
    selection=AssetSelection.assets(RECENTLY_PLAYED),
    description="Fetch connected accounts' recently-played plays into the raw layer.",
)

recently_played_schedule = ScheduleDefinition(
    name="recently_played_schedule",
    cron_schedule="7 * * * *",
    job=recently_played_job,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
)


import_upload_job = define_asset_job(
    "import_upload",
    selection=AssetSelection.assets(UPLOADS),
    executor_def=in_process_executor,
    description="Import one upload into the raw layer (requested by the uploads_sensor).",
)

UPLOAD_TAG = "spotify_platform/upload"
TRIGGER_TAG = "spotify_platform/trigger"
IMPORTS_PER_TICK = 100


def import_request(upload: Upload) -> RunRequest:
    """A run importing this version of the upload; its run key makes it one run however many
    ticks see the file before the run moves it away."""
    return RunRequest(
        run_key=upload.upload_id,
        job_name=import_upload_job.name,
        run_config=import_run_config(upload.upload_id),
        tags={UPLOAD_TAG: upload.file_name, TRIGGER_TAG: "uploads"},
    )


@sensor(
    job=import_upload_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        f"Lists {UPLOADS_PREFIX}<account>/ and requests an import_upload run per new file. "
        "Corrupt uploads fail their run and move to uploads/_rejected/ beside a .reason.txt."
    ),
)
def uploads_sensor(context: SensorEvaluationContext, lake: LakeResource):
    uploads = pending_uploads(lake)
    if not uploads:
        return SkipReason("no new uploads")
    # The folder is the account's real name: logs name the file only.
    names = ", ".join(repr(u.file_name) for u in uploads)
    context.log.info(f"{len(uploads)} uploads waiting: {names}")
    return SensorResult(run_requests=[import_request(u) for u in uploads])


def _span(metadata: dict) -> tuple[dt.date, dt.date] | None:
    """First and last day an import landed plays on; None when it landed none."""
    first, last = str(metadata["first_day"].value), str(metadata["last_day"].value)
    if first == "none":
        return None
    return dt.date.fromisoformat(first), dt.date.fromisoformat(last)


@sensor(
    job=daily_pipeline_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "After upload imports, runs the daily pipeline once over the days they landed, first "
        "to last, as `import-history --run` does: days without plays cost next to nothing."
    ),
)
def imported_days_sensor(context: SensorEvaluationContext):
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=UPLOADS, after_storage_id=after),
        limit=IMPORTS_PER_TICK,
        ascending=True,
    ).records
    if not records:
        return SkipReason("no upload imported since the last tick")
    cursor = str(records[-1].storage_id)
    files = [str(r.asset_materialization.metadata["file"].value) for r in records]
    spans = [s for r in records if (s := _span(r.asset_materialization.metadata))]
    imported = f"{len(records)} uploads imported ({', '.join(map(repr, files))})"
    if not spans:
        return SensorResult(skip_reason=SkipReason(f"{imported}, no plays"), cursor=cursor)
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    context.log.info(f"{imported}: one run over {first} .. {last}")
    request = RunRequest(
        run_key=f"imports-{records[0].storage_id}-{cursor}",
        job_name=daily_pipeline_job.name,
        tags={
            **range_tags(first, last),
            UPLOAD_TAG: files[0] if len(files) == 1 else f"{len(files)} uploads",
            TRIGGER_TAG: "uploads",
        },
    )
    return SensorResult(run_requests=[request], cursor=cursor)


freshness_sensor = quietly_superseded(
    build_sensor_for_freshness_checks,
    freshness_checks=FRESHNESS_CHECKS,
    name="freshness_checks_sensor",
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
)


JOBS = [daily_pipeline_job, import_upload_job, recently_played_job]
SCHEDULES = [daily_schedule, recently_played_schedule]
SENSORS = [uploads_sensor, imported_days_sensor, freshness_sensor]
