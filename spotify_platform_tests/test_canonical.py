"""Staging several small days at once gives each day what staging it alone gives it."""

import datetime as dt
import gzip
import json

import pandas as pd
import pyarrow as pa
import pytest

from spotify_platform.core.sources.raw import encode_jsonl_gz, parse_jsonl
from spotify_platform.core.sources.simulator import ListeningSimulator
from spotify_platform.core.staging.one_day import stage_day
from spotify_platform.core.staging.small_days import stage_days

FIRST = dt.date(2026, 2, 27)
KEY = b"test-key"


def _raw_files(malformed: bool = True) -> dict[dt.date, dict[str, bytes]]:
    """Three simulated days, with duplicates, a record to quarantine, an empty day and (if
    `malformed`) lines that are not JSON or not typed as the raw schema says."""
    simulator = ListeningSimulator(accounts=30, seed=4, epoch=dt.date(2026, 1, 1))
    files: dict[dt.date, dict[str, bytes]] = {}
    for day, frame in simulator.days(FIRST, FIRST + dt.timedelta(days=2)):
        prefix = f"raw/listening_events/dt={day}"
        files[day] = {f"{prefix}/source=simulator/events.jsonl.gz": encode_jsonl_gz(frame)}
    day = FIRST + dt.timedelta(days=1)
    record = json.loads(
        simulator.day(day).head(3).to_json(orient="records", date_format="iso")
    )
    lines = [json.dumps(r) for r in record]
    lines.append(lines[0])
    if malformed:
        lines += ["{not json", json.dumps({**record[1], "ms_played": "lots"})]
    lines.append(json.dumps({**record[2], "ts": None, "surprise_field": 1}))
    files[day][f"raw/listening_events/dt={day}/source=export/me.jsonl.gz"] = gzip.compress(
        "\n".join(lines).encode()
    )
    files[FIRST + dt.timedelta(days=3)] = {}
    return files


def _parsed(files: dict[str, bytes]) -> dict:
    return {key: parse_jsonl(data) for key, data in files.items()}


@pytest.mark.parametrize("malformed", [True, False], ids=["a malformed file", "all clean"])
def test_staging_days_together_equals_staging_each_day_alone(malformed):
    """Files that all parse whole are joined as Arrow; one with a bad line is not."""
    files = _raw_files(malformed)
    if not malformed:
        assert all(b.table is not None for f in files.values() for b in _parsed(f).values())
    together = stage_days({day: _parsed(f) for day, f in files.items()}, key=KEY)
    assert set(together) == set(files)
    quarantined = 0
    for day, day_files in files.items():
        alone = stage_day(_parsed(day_files), key=KEY, day=day)
        both = together[day]
        pd.testing.assert_frame_equal(both.streams, alone.streams)
        if len(both.streams):  # what is written to the lake for the day
            expected = pa.Table.from_pandas(alone.streams, preserve_index=False)
            assert both.table.equals(expected, check_metadata=True)
        pd.testing.assert_frame_equal(
            both.quarantine.reset_index(drop=True), alone.quarantine.reset_index(drop=True)
        )
        assert (both.raw_records, both.duplicates, sorted(both.files)) == (
            alone.raw_records,
            alone.duplicates,
            sorted(alone.files),
        )
        assert both.reason_counts() == alone.reason_counts()
        assert (both.unknown_fields, both.missing_fields) == (
            alone.unknown_fields,
            alone.missing_fields,
        )
        assert both.raw_records == len(both.streams) + both.rejected + both.duplicates
        quarantined += both.rejected
        if day_files:
            assert (both.streams["dt"] == pd.Timestamp(day)).all() and len(both.streams)
    assert quarantined >= (3 if malformed else 1)
    assert sum(staged.duplicates for staged in together.values()) >= 1
