"""Imported exports and uploads land in the lake by UTC day under keys that never clobber,
and stage to the rows their records give; raw record counts."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import zipfile
from pathlib import Path

import pytest

from spotify_platform.core.lake.ingest import export_file_name, import_history, import_uploads
from spotify_platform.core.lake.layout import raw_prefix
from spotify_platform.core.sources.exports import (
    EXTENDED,
    ExportFile,
)
from spotify_platform.core.sources.raw import count_records, parse_jsonl
from spotify_platform.core.staging.one_day import stage_day
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform_tests.support.exports import (
    EXTENDED_RECORDS,
    IP,
    LEGACY_MUSIC_RECORDS,
    LEGACY_PODCAST_RECORDS,
    OLD_PERSONAL,
    older,
    utc_day,
    write_json,
)


@pytest.fixture
def lake(tmp_path: Path) -> LakeResource:
    return LakeResource(url=f"file://{tmp_path}/lake")


def landed(lake: LakeResource) -> dict[str, list[dict]]:
    """Every raw export file in the lake, parsed back into records."""
    keys = [k for k in lake.list_keys("raw/listening_events/") if "/source=export/" in k]
    return {
        k: [json.loads(line) for line in gzip.decompress(lake.read_bytes(k)).splitlines()]
        for k in keys
    }


# --- landing -----------------------------------------------------------------------------


def test_import_history_lands_one_file_per_export_file_and_utc_day(
    tmp_path: Path, lake: LakeResource
) -> None:
    path = write_json(tmp_path / "Streaming_History_Audio_2023_0.json", EXTENDED_RECORDS)
    report = import_history(lake, [path], account="alice")

    expected_days = sorted({utc_day(r["ts"]) for r in EXTENDED_RECORDS})
    assert report.days == expected_days
    assert (report.first_day, report.last_day) == (expected_days[0], expected_days[-1])
    assert report.records == len(EXTENDED_RECORDS) and report.errors == []
    files = landed(lake)
    assert sorted(files) == sorted(report.keys)
    assert [k.rpartition("/")[0] + "/" for k in sorted(files)] == [
        f"{raw_prefix(day)}source=export" + "/" for day in expected_days
    ]
    for key, records in files.items():
        day = dt.date.fromisoformat(key.split("dt=")[1][:10])
        assert sorted(r["ts"] for r in records) == sorted(
            r["ts"] for r in EXTENDED_RECORDS if utc_day(r["ts"]) == day
        )
        assert all(r["account_id"] == "alice" for r in records)
        assert "alice" not in key


def test_keys_never_contain_the_account_name(tmp_path: Path, lake: LakeResource) -> None:
    path = write_json(tmp_path / "endsong_0.json", [older(r) for r in EXTENDED_RECORDS])
    report = import_history(lake, [path])

    assert report.keys and all(OLD_PERSONAL["username"] not in k for k in report.keys)
    assert all("alice" not in k for k in lake.list_keys(""))


def test_reimport_overwrites_the_same_keys(tmp_path: Path, lake: LakeResource) -> None:
    path = write_json(tmp_path / "Streaming_History_Audio_2023_0.json", EXTENDED_RECORDS)
    first = import_history(lake, [path], account="alice")
    before = landed(lake)
    second = import_history(lake, [path], account="alice")

    assert second.keys == first.keys
    assert landed(lake) == before
    assert len(before) == len(first.days)


def test_different_account_or_file_never_clobbers(tmp_path: Path, lake: LakeResource) -> None:
    path = write_json(tmp_path / "Streaming_History_Audio_2023_0.json", EXTENDED_RECORDS)
    alice = import_history(lake, [path], account="alice")
    bob = import_history(lake, [path], account="bob")

    assert set(alice.keys).isdisjoint(bob.keys)
    assert len(landed(lake)) == len(alice.keys) + len(bob.keys)


def test_overlapping_exports_both_land_intact(tmp_path: Path, lake: LakeResource) -> None:
    early = write_json(tmp_path / "a" / "Streaming_History_Audio_2023_0.json",
                       EXTENDED_RECORDS[:4])
    late = write_json(tmp_path / "b" / "Streaming_History_Audio_2023_0.json",
                      EXTENDED_RECORDS[2:])
    report = import_history(lake, [early, late], account="alice")

    assert len(report.keys) == len(set(report.keys))
    files = landed(lake)
    assert sorted(files) == sorted(report.keys)
    landed_ts = sorted(r["ts"] for records in files.values() for r in records)
    assert landed_ts == sorted(r["ts"] for r in EXTENDED_RECORDS[:4] + EXTENDED_RECORDS[2:])
    assert report.records == 4 + 3


def test_failed_file_lands_nothing_while_good_files_land(
    tmp_path: Path, lake: LakeResource
) -> None:
    good = write_json(tmp_path / "StreamingHistory_podcast_0.json", LEGACY_PODCAST_RECORDS)
    bad = tmp_path / "Streaming_History_Audio_2023_0.json"
    bad.write_text("not json at all", encoding="utf-8")
    missing = tmp_path / "nowhere.json"
    report = import_history(lake, [bad, good, missing], account="alice")

    assert report.failed_files == [bad.name, str(missing)]
    assert report.records == len(LEGACY_PODCAST_RECORDS)
    assert [e.split(": ")[0] for e in report.errors] == [bad.name, str(missing)]
    assert sum(len(r) for r in landed(lake).values()) == len(LEGACY_PODCAST_RECORDS)


def test_truncated_and_partly_bad_files_land_their_good_records(
    tmp_path: Path, lake: LakeResource
) -> None:
    text = json.dumps(LEGACY_MUSIC_RECORDS)
    truncated = tmp_path / "StreamingHistory_music_0.json"
    truncated.write_text(text[: text.index("Digital Love")], encoding="utf-8")
    report = import_history(lake, [truncated], account="alice")

    assert report.records == 2
    assert report.errors[0].startswith("StreamingHistory_music_0.json: record 2: truncated")
    landed_names = sorted(
        r["master_metadata_track_name"] for rs in landed(lake).values() for r in rs
    )
    assert landed_names == sorted(r["trackName"] for r in LEGACY_MUSIC_RECORDS[:2])


def test_export_file_name_depends_on_account_file_and_content() -> None:
    def export(account: str, basename: str, sha: str) -> ExportFile:
        return ExportFile("x", EXTENDED, [{"account_id": account}], basename=basename, sha256=sha)

    names = {
        export_file_name(export(a, b, c))
        for a, b, c in [("alice", "f.json", "1"), ("bob", "f.json", "1"),
                        ("alice", "g.json", "1"), ("alice", "f.json", "2")]
    }
    assert len(names) == 4
    assert export_file_name(export("alice", "f.json", "1")) == export_file_name(
        export("alice", "f.json", "1")
    )


# --- uploads -----------------------------------------------------------------------------


def test_uploads_are_imported_or_rejected_and_never_processed_twice(
    lake: LakeResource,
) -> None:
    good = json.dumps(LEGACY_MUSIC_RECORDS).encode("utf-8")
    lake.write_bytes("uploads/alice/StreamingHistory_music_0.json", good)
    lake.write_bytes("uploads/bob/Streaming_History_Audio_2023_0.json", b"\x00\x01garbage")
    lake.write_bytes("uploads/stray.json", good)

    results = {r.key: r for r in import_uploads(lake)}

    assert {k: r.status for k, r in results.items()} == {
        "uploads/alice/StreamingHistory_music_0.json": "imported",
        "uploads/bob/Streaming_History_Audio_2023_0.json": "rejected",
        "uploads/stray.json": "rejected",
    }
    alice = results["uploads/alice/StreamingHistory_music_0.json"]
    assert alice.moved_to == "uploads/_imported/alice/StreamingHistory_music_0.json"
    assert lake.read_bytes(alice.moved_to) == good
    assert alice.report.records == len(LEGACY_MUSIC_RECORDS)
    landed_records = [r for rs in landed(lake).values() for r in rs]
    assert {r["account_id"] for r in landed_records} == {"alice"}
    assert len(landed_records) == len(LEGACY_MUSIC_RECORDS)

    bob = results["uploads/bob/Streaming_History_Audio_2023_0.json"]
    assert bob.moved_to == "uploads/_rejected/bob/Streaming_History_Audio_2023_0.json"
    assert lake.read_bytes(bob.moved_to) == b"\x00\x01garbage"
    reason = lake.read_bytes(bob.moved_to + ".reason.txt").decode("utf-8")
    assert "Streaming_History_Audio_2023_0.json" in reason and "JSON" in reason
    assert lake.exists("uploads/_rejected/stray.json.reason.txt")

    remaining = [k for k in lake.list_keys("uploads/") if not k.startswith("uploads/_")]
    assert remaining == []
    assert import_uploads(lake) == []


def test_upload_with_some_bad_records_is_imported_with_an_error_note(lake: LakeResource) -> None:
    records = [*LEGACY_PODCAST_RECORDS, {**LEGACY_PODCAST_RECORDS[0], "msPlayed": None}]
    lake.write_bytes("uploads/carol/podcasts.json", json.dumps(records).encode("utf-8"))

    (result,) = import_uploads(lake)

    assert (result.status, result.report.records) == ("imported", 2)
    note = lake.read_bytes(result.moved_to + ".errors.txt").decode("utf-8")
    assert note == "podcasts.json: record 2: msPlayed is missing\n"


def test_uploads_on_an_s3_lake(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
    lake = LakeResource(url=f"s3://{s3_bucket}/platform", s3_endpoint_url=s3_endpoint)
    archive = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Spotify Extended Streaming History/Streaming_History_Audio_2023_0.json",
                    json.dumps(EXTENDED_RECORDS))
    lake.write_bytes("uploads/alice/my_spotify_data.zip", archive.read_bytes())

    (result,) = import_uploads(lake)

    assert (result.status, result.report.records) == ("imported", len(EXTENDED_RECORDS))
    assert lake.list_keys("uploads/") == ["uploads/_imported/alice/my_spotify_data.zip"]
    landed_ts = sorted(r["ts"] for rs in landed(lake).values() for r in rs)
    assert landed_ts == sorted(r["ts"] for r in EXTENDED_RECORDS)
    assert import_uploads(lake) == []


# --- end to end: export → raw → staging ----------------------------------------------------


def test_imported_exports_stage_to_the_expected_rows(tmp_path: Path, lake: LakeResource) -> None:
    day = dt.date(2023, 1, 1)
    extended = [older(r) for r in EXTENDED_RECORDS]
    extended_path = write_json(tmp_path / "endsong_0.json", extended)
    music_path = write_json(tmp_path / "StreamingHistory_music_0.json", LEGACY_MUSIC_RECORDS)
    podcast_path = write_json(tmp_path / "StreamingHistory_podcast_0.json",
                              LEGACY_PODCAST_RECORDS)
    import_history(lake, [extended_path], account="alice")
    import_history(lake, [music_path], account="alice", country="DE")
    import_history(lake, [podcast_path], account="alice")

    keys = lake.list_keys(raw_prefix(day))
    batches = {k: parse_jsonl(lake.read_bytes(k)) for k in keys}
    staged = stage_day(batches, key=b"k", day=day)
    rows = staged.streams

    # Independent expectation from the fixture records.
    ext_day = [r for r in extended if utc_day(r["ts"]) == day]
    music_day = [r for r in LEGACY_MUSIC_RECORDS if r["endTime"].startswith("2023-01-01")]
    podcast_day = [r for r in LEGACY_PODCAST_RECORDS if r["endTime"].startswith("2023-01-01")]
    expected_plays = len(ext_day) + len(music_day) + len(podcast_day)
    expected_streams = sum(
        1 for r in ext_day if r["master_metadata_track_name"] and r["ms_played"] >= 30_000
    ) + sum(1 for r in music_day if r["msPlayed"] >= 30_000)

    assert (staged.rejected, staged.duplicates) == (0, 0)
    assert len(rows) == expected_plays
    assert int(rows["is_stream"].sum()) == expected_streams
    assert set(rows["source"]) == {"export"}
    assert rows["account_id"].nunique() == 1 and "alice" not in set(rows["account_id"])

    by_track = rows.set_index(rows["track_name"].fillna(rows["episode_name"]))
    for r in music_day:
        assert by_track.loc[r["trackName"], "country"] == "DE"
        assert by_track.loc[r["trackName"], "track_id"].startswith("~")
    for r in podcast_day:
        assert by_track.loc[r["episodeName"], "country"] == "ZZ"
        assert by_track.loc[r["episodeName"], "content_type"] == "episode"
    assert set(rows.loc[rows["source"].eq("export") & rows["country"].eq("SE"), "track_name"]
               .dropna()) == {r["master_metadata_track_name"] for r in ext_day
                              if r["master_metadata_track_name"]}

    personal = {*OLD_PERSONAL.values(), IP, "alice"}
    assert not {"username", "ip_addr", "ip_addr_decrypted", "user_agent_decrypted"} & set(
        rows.columns
    )
    cells = {str(v) for column in rows.columns for v in rows[column].dropna().unique()}
    assert not {c for c in cells if any(p in c for p in personal)}


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b'{"a": 1}',
        b'{"a": 1}\n{"a": 2}\n',
        b'{"a": 1}\r\n{"a": 2}\r\n',
        b'\n\n{"a": 1}\n\n',
        b'{"a": 1}\n   \n\t\n{"a": 2}',
        b'  {"a": 1}\n{"a": 2}\n \x0c\n',
        b"not json\n{]\n",
    ],
)
def test_raw_record_count_is_the_non_blank_lines(text: bytes) -> None:
    expected = len([line for line in text.split(b"\n") if line.strip()])
    members = gzip.compress(text[:5]) + gzip.compress(text[5:])
    for data in (text, gzip.compress(text), members):
        for slice_bytes in (1, 3, 8 << 20):
            assert count_records(data, slice_bytes) == expected


def test_raw_record_count_of_a_cut_gzip_file_is_an_error() -> None:
    with pytest.raises(EOFError):
        count_records(gzip.compress(b'{"a": 1}\n' * 1000)[:-12])
