"""A day staged in buckets of event ids writes the same staged rows, quarantine and stats as
the day staged whole, whatever falls across its blocks and buckets."""

import datetime as dt
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spotify_platform.core.lake.ingest import import_history
from spotify_platform.core.lake.layout import quarantine_key, raw_key, raw_prefix, staging_key
from spotify_platform.core.lake.store import Lake
from spotify_platform.core.sources.raw import decode, encode_jsonl_gz, encode_records, text_blocks
from spotify_platform.core.sources.simulator import ListeningSimulator
from spotify_platform.core.staging import lake_io
from spotify_platform.core.staging.buckets import bucket_codes, stage_day_in_buckets
from spotify_platform.core.staging.lake_io import stage_stored_day, write_staged
from spotify_platform_tests.support.exports import every_export_shape, write_json
from spotify_platform_tests.support.records import export_play, play

DAY = dt.date(2026, 3, 2)
KEY = b"k"
UNICODE = [("Sigur Rós", "Hoppípolla"), ("東京事変", "群青日和"), ("Beyoncé", "Ünïcødé 🎧")]


def _simulated(seed: int) -> list[dict]:
    frame = ListeningSimulator(accounts=30, seed=seed, epoch=dt.date(2026, 1, 1)).day(DAY)
    return [json.loads(line) for line in decode(encode_jsonl_gz(frame)).splitlines()]


def _lines(records: list[object]) -> bytes:
    """JSON lines; a `bytes` item is written as it is (a malformed line)."""
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode()) + b"\n"
        for r in records
    )


def _day_files() -> dict[str, bytes]:
    """Two simulated files and an export of one account, with what staging must sort out:
    duplicates within a file and across files, lines that are not JSON objects, blank lines,
    records that cannot be typed or fail the contract, and names outside ASCII."""
    first, second = _simulated(6), _simulated(7)
    broken = list(first)
    broken[150:150] = [b"not json at all", {**first[7], "ts": "no"}, b"   "]
    broken[90:90] = [b"", b"[1, 2]", first[3], {**first[5], "ms_played": -1}]
    broken[60:60] = [b'{"ts": "2026-03-02T01:00:00Z", "ms_pl']
    # Rejected in a block without bad lines, in a file with them: its record reads the same
    # from either parser, though only the other blocks have an extra field.
    broken[2:2] = [{**first[13], "ms_played": -2}]
    broken += [{**first[9], "conn_country": "XX"}, {"client": "8.9", **first[20]}]
    unicode = [
        play(f"2026-03-02T0{i}:1{i}:00Z", account=f"listener-{i}-ø", ms=40_000 + i,
             master_metadata_album_artist_name=artist, master_metadata_track_name=track)
        for i, (artist, track) in enumerate(UNICODE)
    ]
    export = [
        *unicode, second[2], first[11], unicode[0],
        {**unicode[1], "ms_played": "a lot"}, export_play("2026-03-02T20:00:00Z", 1772481600),
        {**play("2026-03-02T22:00:00Z"), "extra_field": {"nested": [1, 2]}},
    ]
    return {
        raw_key(DAY, "simulator", "events-1"): gzip.compress(_lines(broken)),
        # Two gzip members, one file: read on across the members.
        raw_key(DAY, "simulator", "events-2"): gzip.compress(_lines(second[:100]))
        + gzip.compress(_lines([*second[100:], second[0], first[1]])),
        raw_key(DAY, "export", "alice-export"): encode_records(export),
    }


def _land(tmp_path: Path, name: str, files: dict[str, bytes]) -> Lake:
    lake = Lake(url=f"file://{tmp_path / name}")
    for key, data in files.items():
        lake.write_bytes(key, data)
    return lake


def _written(lake: Lake, stats: dict) -> tuple:
    streams = pq.read_table(lake.root / staging_key(DAY))
    quarantine = pq.read_table(lake.root / quarantine_key(DAY))
    return streams, quarantine, stats


def _whole(lake: Lake) -> tuple:
    keys = lake.list_keys(raw_prefix(DAY))
    return _written(lake, stage_stored_day(lake, KEY, DAY, keys))


def _bucketed(lake: Lake, block_bytes: int, buckets: int, workers: int = 2) -> tuple:
    keys = lake.list_keys(raw_prefix(DAY))
    staged = stage_day_in_buckets(
        lake, KEY, DAY, keys, block_bytes=block_bytes, buckets=buckets, workers=workers
    )
    return _written(lake, write_staged(lake, DAY, staged))


def _assert_same(bucketed: tuple, whole: tuple) -> None:
    streams, quarantine, stats = bucketed
    assert stats == whole[2]
    assert streams.schema.equals(whole[0].schema, check_metadata=True)
    assert streams.equals(whole[0])
    assert quarantine.to_pandas().equals(whole[1].to_pandas())


@pytest.mark.parametrize(
    ("block_bytes", "buckets", "workers"),
    [(20_000, 7, 2), (20_000, 7, 1), (20_000, 7, 3), (60_000, 1, 2), (1 << 26, 4096, 2)],
)
def test_a_day_in_buckets_writes_what_the_whole_day_writes(
    tmp_path, block_bytes, buckets, workers
):
    """In the step's own process or in forked workers, blocks finishing in any order."""
    files = _day_files()
    whole = _whole(_land(tmp_path, "whole", files))
    bucketed = _bucketed(_land(tmp_path, "bucketed", files), block_bytes, buckets, workers)
    _assert_same(bucketed, whole)
    streams, quarantine, stats = whole
    # The day has what the comparison is about.
    assert stats["duplicates_removed"] == 7
    assert stats["raw_records"] == streams.num_rows + quarantine.num_rows + 7
    assert quarantine.num_rows == 9 and set(quarantine.column("line").to_pylist()) > {3, 62, 94}
    assert {"Hoppípolla", "群青日和", "Ünïcødé 🎧"} <= set(streams.column("track_name").to_pylist())
    assert stats["unknown_fields"] == {
        raw_key(DAY, "export", "alice-export"): ["extra_field"],
        raw_key(DAY, "simulator", "events-1"): ["client"],
    }


def test_a_line_longer_than_a_block_reaches_the_workers_whole(tmp_path):
    """Blocks reach the workers through slots of shared memory of a block's size; a line
    longer than a block makes a block too long for a slot, sent through the pool's pipe."""
    records = _simulated(6)
    records[40] = {**records[40], "extra_field": "x" * 50_000}
    files = {raw_key(DAY, "simulator", "events-1"): gzip.compress(_lines(records))}
    whole = _whole(_land(tmp_path, "whole", files))
    _assert_same(_bucketed(_land(tmp_path, "bucketed", files), 20_000, 3, workers=2), whole)
    assert whole[0].num_rows > 100
    assert whole[2]["unknown_fields"] == {raw_key(DAY, "simulator", "events-1"): ["extra_field"]}


def test_exports_of_every_shape_stage_the_same_in_buckets(tmp_path):
    lakes = {name: Lake(url=f"file://{tmp_path / name}") for name in ("whole", "bucketed")}
    shapes = every_export_shape()
    for name, records in shapes.items():
        path = write_json(tmp_path / "exports" / name, records)
        for lake in lakes.values():
            import_history(lake, [path], account="alice", country="DE")
    day = dt.date(2023, 1, 1)
    keys = lakes["whole"].list_keys(raw_prefix(day))
    assert len(keys) == 4
    whole = stage_stored_day(lakes["whole"], KEY, day, keys)
    staged = stage_day_in_buckets(lakes["bucketed"], KEY, day, keys, block_bytes=300, buckets=5)
    assert write_staged(lakes["bucketed"], day, staged) == whole
    tables = [pq.read_table(lake.root / staging_key(day)) for lake in lakes.values()]
    assert tables[0].num_rows == whole["staged_rows"] > 5
    assert tables[1].equals(tables[0])


def test_a_day_over_the_setting_is_staged_in_buckets(tmp_path, monkeypatch):
    files = _day_files()
    whole = _whole(_land(tmp_path, "whole", files))
    monkeypatch.setattr(lake_io, "STREAM_DAY_BYTES", 0)
    lake = _land(tmp_path, "bucketed", files)
    keys = lake.list_keys(raw_prefix(DAY))
    # Written by the bucketed path alone: it leaves no rows in memory for write_staged.
    _assert_same(_written(lake, stage_stored_day(lake, KEY, DAY, keys)), whole)


def test_a_day_of_bad_lines_only_writes_empty_staged_rows(tmp_path):
    files = {raw_key(DAY, "export", "broken"): gzip.compress(b"{oops\n\n[1]\n")}
    whole = _whole(_land(tmp_path, "whole", files))
    bucketed = _bucketed(_land(tmp_path, "bucketed", files), 1 << 20, 2)
    assert bucketed[2]["raw_records"] == 2 and bucketed[0].num_rows == 0
    assert bucketed[0].schema.equals(whole[0].schema) and bucketed[2] == whole[2]


def test_blocks_hold_whole_lines_numbered_from_the_file(tmp_path):
    text = b"".join(b"line %d %s\n" % (i, b"x" * (i % 37)) for i in range(1, 400))
    text += b"a line longer than a block " * 20 + b"\nlast line without newline"
    for data in (text, gzip.compress(text[:900]) + gzip.compress(text[900:])):
        path = tmp_path / "raw"
        path.write_bytes(data)
        with path.open("rb") as stream:
            blocks = list(text_blocks(stream, 256))
        assert b"".join(block for _, block, _ in blocks) == text
        assert len(blocks) > 20
        for first_line, block, lines in blocks[:-1]:
            assert block.endswith(b"\n") and lines == block.count(b"\n")
            assert block.startswith(b"line %d " % first_line) or first_line == 400
        _, last, lines = blocks[-1]
        assert last.endswith(b"last line without newline") and lines == last.count(b"\n") + 1


def test_buckets_follow_the_id_prefix():
    ids = ["000" + "0" * 29, "7ff" + "f" * 29, "800" + "0" * 29, "fff" + "f" * 29]
    assert bucket_codes(pa.array(ids), 2).tolist() == [0, 0, 1, 1]
    assert bucket_codes(pa.array(ids), 4096).tolist() == [0, 2047, 2048, 4095]


def test_a_day_in_buckets_on_s3_writes_what_the_whole_day_writes(
    tmp_path, s3_endpoint, s3_bucket
):
    files = _day_files()
    whole = _whole(_land(tmp_path, "whole", files))
    lake = Lake(url=f"s3://{s3_bucket}/lake", s3_endpoint_url=s3_endpoint)
    for key, data in files.items():
        lake.write_bytes(key, data)
    keys = lake.list_keys(raw_prefix(DAY))
    staged = stage_day_in_buckets(lake, KEY, DAY, keys, block_bytes=60_000, buckets=3)
    stats = write_staged(lake, DAY, staged)
    assert stats == whole[2]
    assert lake.read_arrow(staging_key(DAY)).equals(whole[0])
    assert lake.read_parquet(quarantine_key(DAY)).equals(whole[1].to_pandas())


def test_a_raw_file_cut_short_fails_the_day_naming_it(tmp_path):
    data = gzip.compress(_lines(_simulated(6)))
    lake = _land(tmp_path, "lake", {raw_key(DAY, "simulator", "cut"): data[: len(data) // 2]})
    with pytest.raises(RuntimeError, match="cut.jsonl.gz is unreadable as a whole"):
        stage_day_in_buckets(lake, KEY, DAY, lake.list_keys(raw_prefix(DAY)), block_bytes=20_000)
