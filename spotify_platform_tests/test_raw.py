"""Raw files whose text starts blank are still parsed by Arrow, numbered by their lines."""

import datetime as dt
import gzip

import numpy as np
import pandas as pd
import pytest

from spotify_platform.core.sources import raw
from spotify_platform.core.sources.raw import decode, encode_jsonl_gz, parse_jsonl
from spotify_platform.core.sources.simulator import ListeningSimulator
from spotify_platform.core.staging.one_day import stage_day

DAY = dt.date(2026, 3, 2)


def _lines() -> bytes:
    frame = ListeningSimulator(accounts=20, seed=3, epoch=dt.date(2026, 1, 1)).day(DAY)
    return decode(encode_jsonl_gz(frame))


@pytest.mark.parametrize("start", [b"\n", b" \n", b"\r\n"], ids=["empty", "space", "crlf"])
@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
def test_a_file_starting_with_a_blank_line_takes_arrows_path(start, compressed):
    text = start + _lines()
    data = gzip.compress(text) if compressed else text
    batch = parse_jsonl(data)
    # Arrow's batches keep their table until a frame is asked for; the line-by-line
    # parser makes a frame at once.
    assert batch.table is not None and batch.frame is None
    assert batch.bad_lines == []
    records = text.count(b"\n") - 1
    assert np.array_equal(batch.records["_line"], np.arange(2, records + 2))

    slow = raw._parse_slow(text)
    assert slow.frame["_line"].tolist() == batch.records["_line"].tolist()
    key = "raw/listening_events/dt=2026-03-02/source=simulator/events.jsonl.gz"
    fast_day = stage_day({key: parse_jsonl(data)}, key=b"k", day=DAY)
    slow_day = stage_day({key: raw._parse_slow(text)}, key=b"k", day=DAY)
    pd.testing.assert_frame_equal(fast_day.streams, slow_day.streams)
    pd.testing.assert_frame_equal(fast_day.quarantine, slow_day.quarantine)
    assert fast_day.raw_records == slow_day.raw_records == records


def test_lines_starting_with_whitespace_are_still_counted_and_numbered():
    lines = _lines().split(b"\n")
    text = b"\n".join([b"  " + lines[0], *lines[1:3], b"\t", *lines[3:]])
    batch = parse_jsonl(text)
    assert batch.table is not None
    assert batch.records["_line"].tolist()[:4] == [1, 2, 3, 5]
    assert raw.count_records(text) == raw.count_records(gzip.compress(text)) == batch.rows
