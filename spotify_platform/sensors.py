"""Sensors notice and request runs; the runs do the work, since a tick times out after 60 s.

Uploads go through two runs the UI shows apart: `import_upload` lands one export in raw/, then
`daily_pipeline` runs the days it landed. The days are known only once the export is read, and
a run's partition range is fixed when it is launched, so one run cannot do both.
"""

import datetime as dt

from dagster import (
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    build_sensor_for_freshness_checks,
    sensor,
)

from spotify_platform.assets.uploads import UPLOADS, import_run_config, import_upload_job
from spotify_platform.checks import FRESHNESS_CHECKS, quietly_superseded
from spotify_platform.ingest import UPLOADS_PREFIX, Upload, pending_uploads
from spotify_platform.partitions import merge_ranges, range_tags
from spotify_platform.resources.lake import LakeResource
from spotify_platform.schedules import daily_pipeline_job

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
    # The folder is the account's real name: logs name the file only (DESIGN §4).
    names = ", ".join(repr(u.file_name) for u in uploads)
    context.log.info(f"{len(uploads)} uploads waiting: {names}")
    return SensorResult(run_requests=[import_request(u) for u in uploads])


def _ranges(metadata: dict) -> list[tuple[dt.date, dt.date]]:
    return [
        (dt.date.fromisoformat(a), dt.date.fromisoformat(b)) for a, b in metadata["day_ranges"]
    ]


@sensor(
    job=daily_pipeline_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "After each upload import, runs the daily pipeline over the days it landed: one run per "
        "range of days, imports seen in the same tick merged."
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
    ranges: list[tuple[dt.date, dt.date]] = []
    files: list[str] = []
    for record in records:
        metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        files.append(str(metadata["file"]))
        ranges.extend(_ranges(metadata))
    origin = f"imports-{records[0].storage_id}-{records[-1].storage_id}"
    upload = files[0] if len(files) == 1 else f"{len(files)} uploads"
    requests = [
        RunRequest(
            run_key=f"{origin}:{first.isoformat()}:{last.isoformat()}",
            job_name=daily_pipeline_job.name,
            tags={**range_tags(first, last), UPLOAD_TAG: upload, TRIGGER_TAG: "uploads"},
        )
        for first, last in merge_ranges(ranges)
    ]
    context.log.info(
        f"{len(records)} uploads imported ({', '.join(map(repr, files))}): "
        f"{len(requests)} runs requested"
    )
    return SensorResult(run_requests=requests, cursor=str(records[-1].storage_id))


freshness_sensor = quietly_superseded(
    build_sensor_for_freshness_checks,
    freshness_checks=FRESHNESS_CHECKS,
    name="freshness_checks_sensor",
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
)
