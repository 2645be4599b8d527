"""A corrupt upload is reported once, set aside with the reason, and blocks nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_sensor_context,
)

from spotify_platform.definitions import build_definitions
from spotify_platform.defs.automation import uploads_sensor
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform_tests.harness import (
    import_run,
    make_resources,
)
from spotify_platform_tests.support.records import play

DAY = dt.date(2026, 3, 2)


def test_a_corrupt_upload_is_reported_once_set_aside_with_why_and_blocks_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    lake = LakeResource(url=f"file://{tmp_path}/lake")
    defs = build_definitions(make_resources(tmp_path, accounts=0))
    instance = DagsterInstance.ephemeral()
    good = [
        {k: v for k, v in play(f"{DAY}T08:{i:02d}:00Z").items() if k != "account_id"}
        for i in range(3)
    ]
    lake.write_bytes("uploads/zoe.private/my_spotify_data.zip", b"PK\x03\x04 cut short")
    lake.write_bytes("uploads/yann/Streaming_History_Audio_2026.json", json.dumps(good).encode())

    def tick() -> SensorResult | SkipReason:
        return uploads_sensor(build_sensor_context(resources={"lake": lake}, instance=instance))

    first = tick()
    assert isinstance(first, SensorResult) and len(first.run_requests) == 2
    capfd.readouterr()
    outcomes = {
        r.tags["spotify_platform/upload"]: import_run(defs, r, instance) for r in first.run_requests
    }
    log = capfd.readouterr().err
    assert outcomes["Streaming_History_Audio_2026.json"].success, "the bad upload blocks nothing"
    (failure,) = outcomes["my_spotify_data.zip"].get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert "'my_spotify_data.zip' rejected" in message and "_rejected/" in message
    assert "zoe.private" not in log + message, "logs name the file, not the account"
    rejected = "uploads/_rejected/zoe.private/my_spotify_data.zip"
    assert lake.list_keys("uploads/_rejected/") == [rejected, f"{rejected}.reason.txt"]
    reason = lake.read_bytes(f"{rejected}.reason.txt").decode()
    assert "my_spotify_data.zip" in reason and len(reason.strip()) > len("my_spotify_data.zip")

    assert isinstance(tick(), SkipReason), "reported once, not every tick"

    later_upload = "uploads/zoe.private/Streaming_History_Audio_2026.json"
    lake.write_bytes(later_upload, json.dumps(good[:2]).encode())
    later = tick()
    assert isinstance(later, SensorResult) and len(later.run_requests) == 1
    assert import_run(defs, later.run_requests[0], instance).success
    assert lake.list_keys("uploads/_imported/zoe.private/") == [
        "uploads/_imported/zoe.private/Streaming_History_Audio_2026.json"
    ]
