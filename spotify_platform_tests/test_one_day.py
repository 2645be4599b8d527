"""One day staged: every raw record once (staged, duplicate or quarantined), rows in event id
order, and the same outcome whether a file is typed in one slice or in several."""

import datetime as dt
import json

import pandas as pd
import pytest

from spotify_platform.core.sources.raw import encode_jsonl_gz, encode_records, parse_jsonl
from spotify_platform.core.sources.simulator import ListeningSimulator
from spotify_platform.core.staging import one_day
from spotify_platform.core.staging.one_day import source_of, stage_day

DAY = dt.date(2026, 3, 2)
SIMULATED = "raw/listening_events/dt=2026-03-02/source=simulator/events.jsonl.gz"
EXPORT = "raw/listening_events/dt=2026-03-02/alice.jsonl.gz"


def _files() -> dict[str, bytes]:
    frame = ListeningSimulator(accounts=40, seed=6, epoch=dt.date(2026, 1, 1)).day(DAY)
    records = json.loads(frame.head(4).to_json(orient="records"))
    extra = [*records, records[0], {**records[1], "ms_played": -1}, {**records[2], "ts": "no"}]
    return {SIMULATED: encode_jsonl_gz(frame), EXPORT: encode_records(extra)}


@pytest.mark.parametrize("slice_rows", [50, one_day.STAGE_SLICE_ROWS])
def test_every_record_is_staged_once_duplicate_or_quarantined(slice_rows, monkeypatch):
    monkeypatch.setattr(one_day, "STAGE_SLICE_ROWS", slice_rows)
    files = _files()
    batches = {key: parse_jsonl(data) for key, data in files.items()}
    raw_records = sum(b.rows for b in batches.values())
    staged = stage_day(batches, key=b"k", day=DAY)
    assert batches == {}  # consumed
    assert staged.raw_records == raw_records
    assert len(staged.streams) + staged.duplicates + staged.rejected == raw_records
    assert staged.duplicates >= 5  # the export repeats four simulated plays and one of its own
    assert staged.streams["event_id"].is_unique
    assert staged.streams["event_id"].tolist() == sorted(staged.streams["event_id"])
    assert set(staged.streams["source"]) == {"simulator", "export"}
    assert sorted(staged.reason_counts()) == [
        "ms_played=-1 fails greater_than_or_equal_to(0)",
        "ts: not an ISO 8601 timestamp",
    ]
    assert staged.files == [EXPORT, SIMULATED]


def test_a_file_in_slices_stages_as_in_one_slice(monkeypatch):
    files = _files()
    whole = stage_day({k: parse_jsonl(v) for k, v in files.items()}, key=b"k", day=DAY)
    monkeypatch.setattr(one_day, "STAGE_SLICE_ROWS", 50)
    sliced = stage_day({k: parse_jsonl(v) for k, v in files.items()}, key=b"k", day=DAY)
    pd.testing.assert_frame_equal(sliced.streams, whole.streams)
    pd.testing.assert_frame_equal(sliced.quarantine, whole.quarantine)


def test_a_day_without_records_has_empty_typed_frames():
    staged = stage_day({}, key=b"k", day=DAY)
    assert staged.streams.empty and staged.quarantine.empty and staged.raw_records == 0
    assert str(staged.streams["ended_at"].dtype) == "datetime64[ns, UTC]"


def test_the_source_is_named_by_the_key_or_is_an_export():
    assert source_of(SIMULATED) == "simulator"
    assert source_of(EXPORT) == "export"
