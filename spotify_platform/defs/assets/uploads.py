"""Raw layer fed by uploads: one Spotify export dropped into `uploads/<account>/`, per run.

The uploads sensor only lists the folder and requests a run per upload; the unzip, parsing and
landing happen here, in a run, where they are logged, can take as long as a multi-year export
needs and are retried on a transient failure. Run config names the upload by an id (a hash of
its key and version), never by its key: the key holds the account name.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Backoff,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    RunConfig,
    asset,
)
from pydantic import Field

from spotify_platform.core.lake.ingest import (
    REJECTED,
    UPLOADS_PREFIX,
    import_upload,
    pending_uploads,
)
from spotify_platform.core.lake.layout import RAW_ROOT
from spotify_platform.defs.resources.lake import LakeResource

UPLOADS = AssetKey(["lake", "export_uploads"])
READABLE_CHECK = "every_record_readable"
SHOWN_PROBLEMS = 20


class UploadConfig(Config):
    upload_id: str = Field(description="Which upload to import: `Upload.upload_id`.")


def import_run_config(upload_id: str) -> RunConfig:
    return RunConfig(ops={"lake__export_uploads": UploadConfig(upload_id=upload_id)})


@asset(
    key=UPLOADS,
    group_name="raw",
    kinds={"s3", "json"},
    retry_policy=RetryPolicy(max_retries=2, delay=15, backoff=Backoff.EXPONENTIAL),
    check_specs=[
        AssetCheckSpec(
            READABLE_CHECK,
            asset=UPLOADS,
            description=(
                "Warns when some records of an imported upload were bad and left out; the list "
                "is beside the file in uploads/_imported/, as .errors.txt."
            ),
        )
    ],
    description=(
        "Spotify exports dropped into uploads/<account>/ (zip, json, json.gz), landed in "
        "raw/listening_events by UTC day. One materialization per upload; the "
        "imported_days_sensor then runs its first_day .. last_day."
    ),
)
def export_uploads(
    context: AssetExecutionContext, config: UploadConfig, lake: LakeResource
) -> MaterializeResult:
    lake.check()
    upload = next((u for u in pending_uploads(lake) if u.upload_id == config.upload_id), None)
    if upload is None:
        raise Failure(
            description=(
                f"upload {config.upload_id} is no longer waiting under {UPLOADS_PREFIX}: it was "
                "imported or rejected already, or replaced by a newer file, which gets a run of "
                "its own"
            ),
            allow_retries=False,
        )
    size = lake.size(upload.key)
    context.log.info(f"importing {upload.file_name!r} ({size:,} bytes)")
    result = import_upload(lake, upload)
    report = result.report
    if result.status == "rejected":
        reason = (result.reason or "").splitlines()[0][:300]
        raise Failure(
            description=(
                f"upload {upload.file_name!r} rejected and moved under "
                f"{UPLOADS_PREFIX}{REJECTED}/ beside a .reason.txt: {reason}"
            ),
            allow_retries=False,
        )
    context.log.info(
        f"{upload.file_name!r}: {report.records:,} plays over {len(report.days)} days from "
        f"{len(report.files)} files landed in {RAW_ROOT}, {len(report.errors)} problems"
    )
    problems = report.errors[:SHOWN_PROBLEMS]
    return MaterializeResult(
        metadata={
            "file": upload.file_name,
            "bytes": size,
            "export_files": len(report.files),
            "failed_files": len(report.failed_files),
            "plays": report.records,
            "days": len(report.days),
            "first_day": report.first_day.isoformat() if report.first_day else "none",
            "last_day": report.last_day.isoformat() if report.last_day else "none",
            "raw_files": len(report.keys),
            "dagster/uri": lake.uri(RAW_ROOT),
        },
        check_results=[
            AssetCheckResult(
                check_name=READABLE_CHECK,
                passed=not report.errors,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "problems": len(report.errors),
                    "first_problems": MetadataValue.json(problems),
                },
            )
        ],
    )

