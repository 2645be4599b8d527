"""One day staged: every raw record once (staged, duplicate or quarantined), rows in event id
order, and the same outcome whether a file's slices are typed in threads or not."""

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


@pytest.mark.parametrize("threads", [1, 2])
def test_every_record_is_staged_once_duplicate_or_quarantined(threads, monkeypatch):
    monkeypatch.setattr(one_day, "STAGE_SLICE_ROWS", 50)  # several slices per file
    files = _files()
    batches = {key: parse_jsonl(data) for key, data in files.items()}
    raw_records = sum(b.rows for b in batches.values())
    staged = stage_day(batches, key=b"k", day=DAY, threads=threads)
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


def test_slices_in_threads_stage_as_one_slice_at_a_time(monkeypatch):
    monkeypatch.setattr(one_day, "STAGE_SLICE_ROWS", 50)
    files = _files()
    alone = stage_day({k: parse_jsonl(v) for k, v in files.items()}, key=b"k", day=DAY, threads=1)
    threaded = stage_day(
        {k: parse_jsonl(v) for k, v in files.items()}, key=b"k", day=DAY, threads=2
    )
    pd.testing.assert_frame_equal(threaded.streams, alone.streams)
    pd.testing.assert_frame_equal(threaded.quarantine, alone.quarantine)


def test_a_day_without_records_has_empty_typed_frames():
    staged = stage_day({}, key=b"k", day=DAY)
    assert staged.streams.empty and staged.quarantine.empty and staged.raw_records == 0
    assert str(staged.streams["ended_at"].dtype) == "datetime64[ns, UTC]"


def test_the_source_is_named_by_the_key_or_is_an_export():
    assert source_of(SIMULATED) == "simulator"
    assert source_of(EXPORT) == "export"
