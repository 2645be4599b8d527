"""Sensors: Spotify export files dropped into the lake's uploads/ become runs of their days."""

import datetime as dt
import hashlib
from pathlib import PurePosixPath

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from spotify_platform.ingest import REJECTED, UPLOADS_PREFIX, import_uploads
from spotify_platform.resources.lake import LakeResource
from spotify_platform.schedules import daily_pipeline_job

MERGE_GAP_DAYS = 7


def day_ranges(days: list[dt.date], gap: int = MERGE_GAP_DAYS) -> list[tuple[dt.date, dt.date]]:
    """Contiguous ranges covering `days`; ranges closer than `gap` days merge into one run."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if ranges and (day - ranges[-1][1]).days <= gap:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def range_run_request(first: dt.date, last: dt.date, origin: str) -> RunRequest:
    """One run of the daily pipeline for first..last (a single-run backfill of the range)."""
    return RunRequest(
        run_key=f"{origin}:{first.isoformat()}:{last.isoformat()}",
        job_name=daily_pipeline_job.name,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
            "spotify_platform/trigger": "uploads",
        },
    )


@sensor(
    job=daily_pipeline_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Imports export files from uploads/<account>/ into raw/ and runs the days they touch. "
        "Corrupt uploads move to uploads/_rejected/ beside a .reason.txt and block nothing."
    ),
)
def uploads_sensor(context: SensorEvaluationContext, lake: LakeResource):
    results = import_uploads(lake)
    if not results:
        return SkipReason("no new uploads")
    imported = [r for r in results if r.status == "imported"]
    rejected = [r for r in results if r.status == "rejected"]
    for result in rejected:
        # The folder is the account's real name: logs name the file only (DESIGN §4).
        context.log.warning(
            f"upload {PurePosixPath(result.key).name!r} rejected and moved under "
            f"{UPLOADS_PREFIX}{REJECTED}/ beside a .reason.txt saying why"
        )
    days = sorted({day for r in imported for day in r.report.days})
    origin = hashlib.sha256("|".join(sorted(r.moved_to for r in imported)).encode()).hexdigest()
    requests = [range_run_request(a, b, f"uploads-{origin[:12]}") for a, b in day_ranges(days)]
    context.log.info(
        f"{len(imported)} uploads imported ({sum(r.report.records for r in imported)} plays, "
        f"{len(days)} days), {len(rejected)} rejected; {len(requests)} runs requested"
    )
    if not requests:
        return SkipReason(f"{len(rejected)} uploads rejected, nothing to run")
    return SensorResult(run_requests=requests)
