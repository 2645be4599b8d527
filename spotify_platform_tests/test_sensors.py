"""Sensors notice and request; the runs they request import uploads and build the days."""

import datetime as dt
import gzip
import io
import json
import time
import zipfile

from dagster import (
    DagsterInstance,
    RunRequest,
    SensorResult,
    SkipReason,
    build_sensor_context,
)

from spotify_platform.core.sources.histories import HistorySpec, active_days, export_files
from spotify_platform.core.sources.simulator import ListeningSimulator
from spotify_platform.definitions import build_definitions
from spotify_platform.defs.automation import UPLOAD_TAG, imported_days_sensor, uploads_sensor
from spotify_platform.defs.resources import LakeResource
from spotify_platform_tests.harness import make_resources

FIRST = dt.date(2026, 5, 4)
LAST = dt.date(2026, 5, 17)
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def _export() -> list[dict]:
    """One simulated listener's plays over two weeks, shaped like an extended export."""
    simulator = ListeningSimulator(accounts=40, seed=3, epoch=dt.date(2026, 1, 1))
    name = simulator.accounts()["account_id"].iloc[2]
    plays = [frame[frame["account_id"] == name] for _, frame in simulator.days(FIRST, LAST)]
    records = [r for frame in plays for r in json.loads(frame.to_json(orient="records"))]
    for record in records:
        record.pop("account_id")
        record["username"] = "real-user-name"
    return records


def _execute(defs, request: RunRequest, instance: DagsterInstance):
    """Run a sensor's request as the daemon would: its job, config and tags."""
    return defs.resolve_job_def(request.job_name).execute_in_process(
        run_config=request.run_config,
        tags=request.tags,
        instance=instance,
        raise_on_error=False,
    )


def _error(result) -> str:
    (failure,) = result.get_step_failure_events()
    return failure.step_failure_data.error.message


def _raw_days(lake: LakeResource) -> set[str]:
    return {k.split("/")[2].removeprefix("dt=") for k in lake.list_keys("raw/listening_events/")}


def _raw_lines(lake: LakeResource) -> int:
    keys = lake.list_keys("raw/listening_events/")
    return sum(len(gzip.decompress(lake.read_bytes(k)).splitlines()) for k in keys)


def _tick(lake: LakeResource, instance: DagsterInstance):
    return uploads_sensor(build_sensor_context(resources={"lake": lake}, instance=instance))


def test_uploads_become_import_runs_then_runs_of_the_days_they_landed(tmp_path, project_instance):
    resources = make_resources(tmp_path, accounts=0)
    lake: LakeResource = resources["lake"]
    export = _export()
    lake.write_bytes("uploads/alice/Streaming_History_Audio_2026.json", json.dumps(export).encode())
    lake.write_bytes("uploads/bob/StreamingHistory_music_0.json", b'[{"endTime": "2026-05-0')
    lake.write_bytes("uploads/bob/notes.json", b"this is not json")
    instance = project_instance
    defs = build_definitions(resources)

    first = _tick(lake, instance)
    assert isinstance(first, SensorResult)
    assert {r.job_name for r in first.run_requests} == {"import_upload"}
    by_file = {r.tags[UPLOAD_TAG]: r for r in first.run_requests}
    assert set(by_file) == {
        "Streaming_History_Audio_2026.json",
        "StreamingHistory_music_0.json",
        "notes.json",
    }
    assert _raw_days(lake) == set(), "the tick lands nothing"
    for request in first.run_requests:
        shown = json.dumps([request.run_key, request.run_config, request.tags])
        assert "alice" not in shown and "bob" not in shown, "account folders stay out of the UI"
    again = _tick(lake, instance)
    assert sorted(r.run_key for r in again.run_requests) == sorted(
        r.run_key for r in first.run_requests
    ), "a file seen by two ticks before its run is still one run"
    lake.write_bytes("uploads/bob/notes.json", b"this is not JSON")
    replaced = {r.tags[UPLOAD_TAG]: r.run_key for r in _tick(lake, instance).run_requests}
    assert replaced["notes.json"] != by_file["notes.json"].run_key, "same size, new content"
    by_file["notes.json"] = next(
        r for r in _tick(lake, instance).run_requests if r.tags[UPLOAD_TAG] == "notes.json"
    )

    imported = _execute(defs, by_file["Streaming_History_Audio_2026.json"], instance)
    assert imported.success
    days = sorted({r["ts"][:10] for r in export})
    assert _raw_days(lake) == set(days)
    assert _raw_lines(lake) == len(export)
    for name in ("StreamingHistory_music_0.json", "notes.json"):
        rejected = _execute(defs, by_file[name], instance)
        assert not rejected.success
        assert name in _error(rejected) and "bob" not in _error(rejected)
    assert lake.list_keys("uploads/_rejected/bob/") == [
        "uploads/_rejected/bob/StreamingHistory_music_0.json",
        "uploads/_rejected/bob/StreamingHistory_music_0.json.reason.txt",
        "uploads/_rejected/bob/notes.json",
        "uploads/_rejected/bob/notes.json.reason.txt",
    ]
    assert isinstance(_tick(lake, instance), SkipReason), "nothing is left to request"
    repeated = _execute(defs, by_file["Streaming_History_Audio_2026.json"], instance)
    assert not repeated.success and "no longer waiting" in _error(repeated)
    assert _raw_lines(lake) == len(export), "a repeated run lands nothing twice"

    follow = imported_days_sensor(build_sensor_context(instance=instance))
    assert isinstance(follow, SensorResult)
    (daily,) = follow.run_requests
    assert daily.job_name == "daily_pipeline"
    assert (daily.tags[RANGE_START], daily.tags[RANGE_END]) == (days[0], days[-1])
    assert daily.tags[UPLOAD_TAG] == "Streaming_History_Audio_2026.json"
    later = imported_days_sensor(build_sensor_context(instance=instance, cursor=follow.cursor))
    assert isinstance(later, SkipReason), "each import's days are requested once"

    resources["warehouse"].init_schema()
    assert _execute(defs, daily, instance).success
    facts = resources["warehouse"].read_frame(
        "SELECT dt, COUNT(*) AS n FROM fact_streams GROUP BY dt"
    )
    plays = {(r["ts"], r["spotify_track_uri"], r["ms_played"]) for r in export}
    assert int(facts["n"].sum()) == len(plays)
    assert sorted(str(d)[:10] for d in facts["dt"]) == days


def test_imports_finished_by_one_tick_share_one_run_of_their_days(tmp_path):
    resources = make_resources(tmp_path, accounts=0)
    lake: LakeResource = resources["lake"]
    export = _export()
    early = [r for r in export if r["ts"][:10] <= "2026-05-08"]
    lake.write_bytes("uploads/alice/a.json", json.dumps(export).encode())
    lake.write_bytes("uploads/carol/b.json", json.dumps(early).encode())
    instance = DagsterInstance.ephemeral()
    defs = build_definitions(resources)
    for request in _tick(lake, instance).run_requests:
        assert _execute(defs, request, instance).success

    follow = imported_days_sensor(build_sensor_context(instance=instance))
    days = sorted({r["ts"][:10] for r in export})
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in follow.run_requests] == [
        (days[0], days[-1])
    ]


def _multi_year_zip() -> tuple[bytes, HistorySpec]:
    spec = HistorySpec(
        account="someone", first=dt.date(2019, 1, 1), last=dt.date(2024, 12, 31), plays=60_000
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in export_files(spec):
            archive.writestr(f"Spotify Extended Streaming History/{name}", body)
    return buffer.getvalue(), spec


def test_a_multi_year_zip_is_noticed_at_once_and_imported_by_its_run(tmp_path):
    resources = make_resources(tmp_path, accounts=0)
    lake: LakeResource = resources["lake"]
    archive, spec = _multi_year_zip()
    lake.write_bytes("uploads/someone/my_spotify_data.zip", archive)
    instance = DagsterInstance.ephemeral()
    defs = build_definitions(resources)

    started = time.monotonic()
    tick = _tick(lake, instance)
    elapsed = time.monotonic() - started
    assert isinstance(tick, SensorResult) and len(tick.run_requests) == 1
    assert elapsed < 1.0, f"a tick only lists the folder, took {elapsed:.2f} s"
    assert _raw_days(lake) == set()

    assert _execute(defs, tick.run_requests[0], instance).success
    expected_days = {d.isoformat() for d in active_days(spec)}
    assert _raw_days(lake) == expected_days
    assert _raw_lines(lake) == spec.plays
    assert isinstance(_tick(lake, instance), SkipReason)

    (daily,) = imported_days_sensor(build_sensor_context(instance=instance)).run_requests
    first, last = min(expected_days), max(expected_days)
    assert (daily.tags[RANGE_START], daily.tags[RANGE_END]) == (first, last), "one run, not 35"


def test_uploads_sensor_and_import_on_an_s3_lake(tmp_path, s3_endpoint, s3_bucket):
    resources = make_resources(
        tmp_path, lake_url=f"s3://{s3_bucket}/platform", s3_endpoint_url=s3_endpoint, accounts=0
    )
    lake: LakeResource = resources["lake"]
    export = _export()[:40]
    key = "uploads/dora/Streaming_History_Audio_2026.json"
    lake.write_bytes(key, json.dumps(export).encode())
    instance = DagsterInstance.ephemeral()
    (request,) = _tick(lake, instance).run_requests

    lake.write_bytes(key, json.dumps(export[:20]).encode())
    (replaced,) = _tick(lake, instance).run_requests
    assert replaced.run_key != request.run_key, "a replaced file is a new upload"
    stale = _execute(build_definitions(resources), request, instance)
    assert not stale.success, "the run imports the version it was requested for, or nothing"

    assert _execute(build_definitions(resources), replaced, instance).success
    assert _raw_lines(lake) == 20
    assert lake.list_keys("uploads/") == [
        "uploads/_imported/dora/Streaming_History_Audio_2026.json"
    ]
    assert isinstance(_tick(lake, instance), SkipReason)


def test_an_import_without_plays_requests_no_run_and_is_not_seen_again(tmp_path):
    resources = make_resources(tmp_path, accounts=0)
    lake: LakeResource = resources["lake"]
    lake.write_bytes("uploads/erin/Streaming_History_Audio_2026.json", b"[]")
    instance = DagsterInstance.ephemeral()
    (request,) = _tick(lake, instance).run_requests
    assert _execute(build_definitions(resources), request, instance).success

    follow = imported_days_sensor(build_sensor_context(instance=instance))
    assert follow.run_requests == [] and follow.skip_reason is not None
    later = imported_days_sensor(build_sensor_context(instance=instance, cursor=follow.cursor))
    assert isinstance(later, SkipReason)
