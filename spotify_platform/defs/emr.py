"""The Spark job as an EMR Serverless job run, through dagster-aws's Pipes client.

The application (Spark, EMR release 7.x), its execution role and the S3 lake exist already
(README, "Spark engine"). The package and its dependencies travel as a virtualenv archive
(`EMR_SERVERLESS_ARCHIVE`, unpacked as `./environment`), the job's file as a copy on S3
(`EMR_SERVERLESS_ENTRY_POINT`). Pipes messages come back through the job's CloudWatch logs
(`EMR_SERVERLESS_LOG_GROUP`). The HMAC key never travels: the job reads it from AWS Secrets
Manager by the id `ACCOUNT_HMAC_KEY_SECRET_ID` names.
"""

from dagster import AssetExecutionContext, Failure, PipesClientCompletedInvocation

from spotify_platform.core.lake.store import LakeStore
from spotify_platform.defs.engine import SparkSettings

PYTHON = "./environment/bin/python"


def start_job_run_params(settings: SparkSettings, name: str) -> dict:
    """`StartJobRun`'s parameters for the job: what the settings name, and why one is missing."""
    missing = [
        variable
        for variable, value in (
            ("EMR_SERVERLESS_EXECUTION_ROLE_ARN", settings.emr_execution_role_arn),
            ("EMR_SERVERLESS_ENTRY_POINT", settings.emr_entry_point),
            ("EMR_SERVERLESS_ARCHIVE", settings.emr_archive),
            ("EMR_SERVERLESS_LOG_GROUP", settings.emr_log_group),
            ("ACCOUNT_HMAC_KEY_SECRET_ID", settings.hmac_secret_id),
        )
        if not value
    ]
    if missing:
        raise Failure(
            "PROCESSING_ENGINE=spark with EMR_SERVERLESS_APPLICATION_ID also needs "
            + ", ".join(missing)
        )
    conf = {
        "spark.archives": f"{settings.emr_archive}#environment",
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": PYTHON,
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": PYTHON,
        "spark.executorEnv.PYSPARK_PYTHON": PYTHON,
        "spark.emr-serverless.driverEnv.ACCOUNT_HMAC_KEY_SECRET_ID": settings.hmac_secret_id,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
    }
    return {
        "applicationId": settings.emr_application_id,
        "executionRoleArn": settings.emr_execution_role_arn,
        "name": name,
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": settings.emr_entry_point,
                "sparkSubmitParameters": " ".join(f"--conf {k}={v}" for k, v in conf.items()),
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {
                "cloudWatchLoggingConfiguration": {
                    "enabled": True,
                    "logGroupName": settings.emr_log_group,
                }
            }
        },
    }


def run_on_emr_serverless(
    context: AssetExecutionContext, settings: SparkSettings, lake: LakeStore, extras: dict
) -> PipesClientCompletedInvocation:
    """Run the job on the configured application and wait for it; its Pipes messages."""
    if not lake.is_s3:
        raise Failure(f"EMR Serverless reads the lake from S3; LAKE_URL is {lake.url}")
    import boto3
    from dagster_aws.pipes import PipesEMRServerlessClient

    client = PipesEMRServerlessClient(
        client=boto3.client("emr-serverless", region_name=lake.region_name)
    )
    params = start_job_run_params(settings, f"spotify-platform-staging-{context.run_id[:8]}")
    return client.run(context=context, start_job_run_params=params, extras=extras)
