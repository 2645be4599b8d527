"""The lake store when storage fails: a missing or denied S3 bucket, an interrupted multipart
upload, a local write killed before its rename.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.exceptions import EndpointConnectionError

from spotify_platform.core.lake.layout import (
    raw_key,
    raw_prefix,
)
from spotify_platform.core.lake.store import LakeUnavailable
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform_tests.harness import (
    make_resources,
    run_days,
)

DAY = dt.date(2026, 3, 2)


def test_a_missing_or_denied_bucket_fails_at_once_naming_it(
    tmp_path: Path,
    s3_endpoint: str,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    resources = make_resources(
        tmp_path, lake_url="s3://spt-no-such-bucket/p", s3_endpoint_url=s3_endpoint, accounts=5
    )
    started = time.monotonic()
    assert not run_days(resources, DAY, DAY)
    assert time.monotonic() - started < 60
    error = capsys.readouterr().err
    assert "step lake__raw_listening_events failed" in error
    assert "lake bucket 'spt-no-such-bucket' is not usable" in error

    iam = boto3.client("iam", endpoint_url=s3_endpoint, region_name="us-east-1")
    iam.create_user(UserName="spt-no-s3-access")
    key = iam.create_access_key(UserName="spt-no-s3-access")["AccessKey"]
    requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        lake = LakeResource(url=f"s3://{s3_bucket}/p", s3_endpoint_url=s3_endpoint)
        started = time.monotonic()
        with pytest.raises(LakeUnavailable) as denied:
            lake.check()
        assert time.monotonic() - started < 10
    finally:
        requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)
    message = str(denied.value)
    assert f"lake bucket {s3_bucket!r} is not usable (403)" in message
    assert key["SecretAccessKey"] not in message


def test_an_interrupted_s3_upload_leaves_nothing_for_readers(
    s3_endpoint: str, s3_bucket: str
) -> None:
    lake = LakeResource(url=f"s3://{s3_bucket}/p", s3_endpoint_url=s3_endpoint)
    client = lake._s3()
    real_upload_part = client.upload_part
    parts: list[int] = []

    def drop_the_second_part(**kwargs: object) -> object:
        parts.append(int(kwargs["PartNumber"]))
        if len(parts) >= 2:
            raise EndpointConnectionError(endpoint_url=s3_endpoint)
        return real_upload_part(**kwargs)

    data = os.urandom(20 * 2**20)  # over boto3's 8 MiB threshold: a multipart upload
    key = raw_key(DAY, "export", "big")
    client.upload_part = drop_the_second_part
    try:
        with pytest.raises(EndpointConnectionError):
            lake.write_bytes(key, data)
    finally:
        del client.upload_part
    assert len(parts) >= 2, "the upload really was multipart and cut in the middle"
    assert not lake.exists(key)
    assert lake.list_keys("raw/") == []
    uploads = boto3.client("s3", endpoint_url=s3_endpoint).list_multipart_uploads(Bucket=s3_bucket)
    assert uploads.get("Uploads", []) == [], "the unfinished upload was aborted"
    lake.write_bytes(key, data)
    assert lake.read_bytes(key) == data


WRITE_IN_CHILD = """
import os, sys, time
from spotify_platform.defs.resources.lake import LakeResource
def stall(source, target):
    print("written", flush=True)
    time.sleep(120)
os.replace = stall
LakeResource(url=sys.argv[1]).write_bytes(sys.argv[2], os.urandom(8 * 2**20))
"""


def test_a_local_write_killed_before_its_rename_leaves_nothing_for_readers(
    tmp_path: Path,
) -> None:
    lake = LakeResource(url=f"file://{tmp_path}/lake")
    key = raw_key(DAY, "export", "killed")
    child = subprocess.Popen(
        [sys.executable, "-c", WRITE_IN_CHILD, lake.url, key],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "written"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    leftovers = list((tmp_path / "lake").rglob("*.part"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size == 8 * 2**20
    assert not lake.exists(key)
    assert lake.list_keys(raw_prefix(DAY)) == [], "staging would read nothing half-written"
