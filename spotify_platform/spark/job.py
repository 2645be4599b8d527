"""The Spark engine's job, run by `spark-submit` and reporting back to Dagster through Pipes.

Dagster starts it (locally `PipesSubprocessClient` running `spark-submit --master local[2]`,
in production `PipesEMRServerlessClient`) with the days and the lake in the Pipes extras; the
HMAC key comes from the environment (`ACCOUNT_HMAC_KEY`) or, on EMR Serverless, from AWS
Secrets Manager (`ACCOUNT_HMAC_KEY_SECRET_ID`), never through extras or logs. The job writes
each day's staged rows, quarantine, stats and aggregates to the lake and reports its totals
and the days it staged; the Dagster side reads each day's stats from the lake.

Only `dagster_pipes` is imported from Dagster: the job runs where Dagster is not installed.
"""

import datetime as dt
import os

from dagster_pipes import PipesContext, open_dagster_pipes

from spotify_platform.spark.engine import spark_session, stage_days_on_spark

TOTALS = ("raw_records", "staged_rows", "quarantined_rows", "duplicates_removed")


def hmac_key() -> bytes:
    """The pseudonymisation key, from the environment or the secret it names."""
    key = os.environ.get("ACCOUNT_HMAC_KEY")
    if key:
        return key.encode("utf-8")
    secret = os.environ.get("ACCOUNT_HMAC_KEY_SECRET_ID")
    if secret:
        import boto3

        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret)
        return value["SecretString"].strip().encode("utf-8")
    raise RuntimeError(
        "the Spark job has no HMAC key: set ACCOUNT_HMAC_KEY or ACCOUNT_HMAC_KEY_SECRET_ID"
    )


def run(pipes: PipesContext) -> dict:
    """Stage the days the extras name; the report sent back."""
    days = [dt.date.fromisoformat(day) for day in pipes.get_extra("days")]
    lake = pipes.get_extra("lake")
    spark = spark_session()
    try:
        stats = stage_days_on_spark(spark, lake, hmac_key(), days, log=pipes.log.info)
    finally:
        spark.stop()
    report = {
        "staged_days": sorted(day.isoformat() for day in stats),
        "totals": {name: sum(s[name] for s in stats.values()) for name in TOTALS},
    }
    pipes.log.info(
        f"{len(stats)} of {len(days)} days staged: "
        + ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in report["totals"].items())
    )
    return report


def main() -> None:
    with open_dagster_pipes() as pipes:
        pipes.report_custom_message(run(pipes))


if __name__ == "__main__":
    main()
