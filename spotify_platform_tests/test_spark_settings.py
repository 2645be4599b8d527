"""The engine settings, the local `spark-submit` command and the EMR Serverless job run, as
far as they can be checked without Spark or AWS."""

import datetime as dt
import json
import shlex

import pytest
from dagster import Failure

from spotify_platform.core.lake.layout import staging_stats_key
from spotify_platform.core.lake.store import Lake
from spotify_platform.defs import engine
from spotify_platform.defs.emr import run_on_emr_serverless, start_job_run_params
from spotify_platform.defs.engine import (
    SparkSettings,
    fact_streams_mode,
    processing_engine,
    read_reported_stats,
    spark_submit_command,
)

EMR = {
    "EMR_SERVERLESS_APPLICATION_ID": "00fabc123",
    "EMR_SERVERLESS_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/spotify-emr",
    "EMR_SERVERLESS_ENTRY_POINT": "s3://artifacts/spark/job.py",
    "EMR_SERVERLESS_ARCHIVE": "s3://artifacts/spark/env.tar.gz",
    "EMR_SERVERLESS_LOG_GROUP": "/emr-serverless/spotify",
    "ACCOUNT_HMAC_KEY_SECRET_ID": "spotify/hmac-key",
}


def test_the_engine_is_pandas_unless_set_and_a_typo_is_refused(monkeypatch):
    monkeypatch.delenv("PROCESSING_ENGINE", raising=False)
    monkeypatch.delenv("WAREHOUSE_FACT_STREAMS", raising=False)
    assert processing_engine() == "pandas" and fact_streams_mode() == "load"
    monkeypatch.setenv("PROCESSING_ENGINE", " Spark ")
    assert processing_engine() == "spark" and engine.aggregates_from_lake()
    monkeypatch.setenv("PROCESSING_ENGINE", "sprak")
    with pytest.raises(ValueError, match="PROCESSING_ENGINE='sprak'"):
        processing_engine()
    monkeypatch.setenv("WAREHOUSE_FACT_STREAMS", "drop")
    with pytest.raises(ValueError, match="WAREHOUSE_FACT_STREAMS='drop'"):
        fact_streams_mode()


def test_the_local_job_is_spark_submit_of_the_packages_job_file(monkeypatch):
    monkeypatch.setenv("SPARK_MASTER", "local[4]")
    monkeypatch.setenv("SPARK_DRIVER_MEMORY", "3g")
    monkeypatch.setenv("SPARK_SUBMIT", "/opt/spark/bin/spark-submit")
    command = spark_submit_command(SparkSettings.from_env())
    assert command[:5] == ["/opt/spark/bin/spark-submit", "--master", "local[4]",
                           "--driver-memory", "3g"]
    assert command[-1].endswith("spotify_platform/spark/job.py")
    assert "spark.sql.shuffle.partitions=8" in command
    assert not SparkSettings.from_env().on_emr


def test_the_emr_job_run_names_the_archive_the_secret_and_the_log_group(monkeypatch):
    for name, value in EMR.items():
        monkeypatch.setenv(name, value)
    settings = SparkSettings.from_env()
    assert settings.on_emr
    params = start_job_run_params(settings, "spotify-platform-staging-abc")
    assert params["applicationId"] == "00fabc123"
    assert params["executionRoleArn"] == EMR["EMR_SERVERLESS_EXECUTION_ROLE_ARN"]
    submit = params["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == "s3://artifacts/spark/job.py"
    conf = dict(
        part.split("=", 1) for part in shlex.split(submit["sparkSubmitParameters"])
        if part != "--conf"
    )
    assert conf["spark.archives"] == "s3://artifacts/spark/env.tar.gz#environment"
    assert conf["spark.executorEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert conf["spark.emr-serverless.driverEnv.ACCOUNT_HMAC_KEY_SECRET_ID"] == "spotify/hmac-key"
    logging = params["configurationOverrides"]["monitoringConfiguration"]
    assert logging["cloudWatchLoggingConfiguration"] == {
        "enabled": True,
        "logGroupName": "/emr-serverless/spotify",
    }
    assert "ACCOUNT_HMAC_KEY=" not in json.dumps(params)


def test_an_emr_job_run_without_its_settings_names_what_is_missing(monkeypatch):
    monkeypatch.setenv("EMR_SERVERLESS_APPLICATION_ID", "00fabc123")
    for name in list(EMR)[1:]:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(Failure, match="EMR_SERVERLESS_EXECUTION_ROLE_ARN, .*ACCOUNT_HMAC_KEY"):
        start_job_run_params(SparkSettings.from_env(), "x")


def test_emr_refuses_a_lake_on_this_machine(tmp_path):
    lake = Lake(url=f"file://{tmp_path}")
    with pytest.raises(Failure, match="reads the lake from S3"):
        run_on_emr_serverless(None, SparkSettings(emr_application_id="x"), lake, {})


def test_stats_in_the_lake_must_add_up_to_what_the_job_reported(tmp_path):
    lake = Lake(url=f"file://{tmp_path}")
    day = dt.date(2026, 3, 2)
    stats = {"raw_records": 10, "staged_rows": 7, "quarantined_rows": 2, "duplicates_removed": 1}
    lake.write_bytes(staging_stats_key(day), json.dumps(stats).encode())
    report = {"staged_days": [day.isoformat()], "totals": stats}
    assert read_reported_stats(lake, report) == {day: stats}
    stale = {**stats, "staged_rows": 8}
    with pytest.raises(Failure, match="not what the Spark job reported"):
        read_reported_stats(lake, {**report, "totals": stale})


def test_the_emr_job_run_request_is_valid_for_the_emr_serverless_api(monkeypatch):
    """Checked against botocore's own model of `StartJobRun`, offline (the Pipes client adds
    its tags and driver environment to the same request)."""
    import boto3
    from botocore.validate import validate_parameters

    for name, value in EMR.items():
        monkeypatch.setenv(name, value)
    params = start_job_run_params(SparkSettings.from_env(), "spotify-platform-staging-abc")
    client = boto3.client(
        "emr-serverless", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    shape = client.meta.service_model.operation_model("StartJobRun").input_shape
    validate_parameters({**params, "clientToken": "t"}, shape)
    with pytest.raises(Exception, match="entryPoint"):
        broken = {**params, "jobDriver": {"sparkSubmit": {"entryPointArguments": []}}}
        validate_parameters({**broken, "clientToken": "t"}, shape)
