"""Spotify data exports: every shape parses to raw records, and bad files fail as a whole or
report their bad records.

Spotify's zip layout is built here; the export records come from `support.exports`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import zipfile
from pathlib import Path

import pytest

from spotify_platform.core.sources.exports import (
    EMPTY,
    EXTENDED,
    LEGACY_MUSIC,
    LEGACY_PODCAST,
    UNKNOWN,
    UNREADABLE,
    read_export,
    split_by_day,
)
from spotify_platform.core.sources.raw import RAW_FIELDS
from spotify_platform_tests.support.exports import (
    AUDIOBOOK_FIELDS,
    EXTENDED_RECORDS,
    LEGACY_MUSIC_RECORDS,
    LEGACY_PODCAST_RECORDS,
    OLD_PERSONAL,
    older,
    one,
    podcast,
    write_json,
)

# --- parsing -----------------------------------------------------------------------------


def test_extended_export_becomes_raw_records_with_every_field(tmp_path: Path) -> None:
    path = write_json(tmp_path / "Streaming_History_Audio_2023_0.json", EXTENDED_RECORDS)
    export = one(read_export(path, "alice", None))

    assert (export.shape, export.errors) == (EXTENDED, [])
    assert [list(r) for r in export.records] == [list(RAW_FIELDS)] * len(EXTENDED_RECORDS)
    assert [r["ts"] for r in export.records] == [r["ts"] for r in EXTENDED_RECORDS]
    assert {r["account_id"] for r in export.records} == {"alice"}
    assert [r["offline_timestamp"] for r in export.records] == [
        1672646000123, 1672607600000, 1672574400000, 1672574400000, None,
    ]
    for got, source in zip(export.records, EXTENDED_RECORDS, strict=True):
        same = [k for k in source if k != "offline_timestamp"]
        assert {k: got[k] for k in same} == {k: source[k] for k in same}
    podcast_row = export.records[2]
    assert podcast_row["master_metadata_track_name"] is None
    assert podcast_row["episode_show_name"] == "The Daily Noise"


def test_older_extended_export_keeps_personal_fields_raw_and_names_the_account(
    tmp_path: Path,
) -> None:
    path = write_json(tmp_path / "endsong_0.json", [older(r) for r in EXTENDED_RECORDS])
    export = one(read_export(path, None, None))

    assert (export.shape, export.errors) == (EXTENDED, [])
    for record in export.records:
        assert set(record) == set(RAW_FIELDS) | set(OLD_PERSONAL)
        assert record["account_id"] == OLD_PERSONAL["username"]
        assert record["ip_addr_decrypted"] == OLD_PERSONAL["ip_addr_decrypted"]
        assert all(record[k] is None for k in AUDIOBOOK_FIELDS)
    explicit = one(read_export(path, "alice", None))
    assert {r["account_id"] for r in explicit.records} == {"alice"}


def test_export_without_account_or_username_fails_asking_for_account(tmp_path: Path) -> None:
    path = write_json(tmp_path / "StreamingHistory_music_0.json", LEGACY_MUSIC_RECORDS)
    export = one(read_export(path, None, None))

    assert export.failed and export.records == []
    assert len(export.errors) == 1
    assert "StreamingHistory_music_0.json" in export.errors[0]
    assert "--account" in export.errors[0]


def test_legacy_music_export(tmp_path: Path) -> None:
    path = write_json(tmp_path / "StreamingHistory_music_0.json", LEGACY_MUSIC_RECORDS)
    export = one(read_export(path, "alice", "de"))

    assert (export.shape, export.errors) == (LEGACY_MUSIC, [])
    expected = [
        {
            **dict.fromkeys(RAW_FIELDS),
            "ts": r["endTime"].replace(" ", "T") + ":00Z",
            "ms_played": r["msPlayed"],
            "master_metadata_track_name": r["trackName"],
            "master_metadata_album_artist_name": r["artistName"],
            "conn_country": "DE",
            "account_id": "alice",
        }
        for r in LEGACY_MUSIC_RECORDS
    ]
    assert export.records == expected
    no_country = one(read_export(path, "alice", None))
    assert {r["conn_country"] for r in no_country.records} == {None}


def test_legacy_podcast_export_fills_episode_fields(tmp_path: Path) -> None:
    path = write_json(tmp_path / "StreamingHistory_podcast_0.json", LEGACY_PODCAST_RECORDS)
    export = one(read_export(path, "alice", None))

    assert (export.shape, export.errors) == (LEGACY_PODCAST, [])
    assert [(r["episode_show_name"], r["episode_name"]) for r in export.records] == [
        (r["podcastName"], r["episodeName"]) for r in LEGACY_PODCAST_RECORDS
    ]
    assert {r["master_metadata_track_name"] for r in export.records} == {None}
    assert {r["spotify_track_uri"] for r in export.records} == {None}
    assert [r["ts"] for r in export.records] == ["2023-01-01T07:30:00Z", "2023-01-02T07:30:00Z"]


def test_oldest_mixed_streaming_history_reads_as_tracks(tmp_path: Path) -> None:
    mixed = [*LEGACY_MUSIC_RECORDS, {"endTime": "2023-01-01 12:00", "artistName": "Morning Brief",
                                     "trackName": "Monday, Jan 1", "msPlayed": 5_000}]
    export = one(read_export(write_json(tmp_path / "StreamingHistory0.json", mixed), "a", None))

    assert (export.shape, len(export.records), export.errors) == (LEGACY_MUSIC, 4, [])
    assert export.records[-1]["master_metadata_track_name"] == "Monday, Jan 1"


def test_video_history_is_read_as_plays(tmp_path: Path) -> None:
    video = [podcast("2023-01-01T20:00:00Z", 120_000)]
    path = write_json(tmp_path / "Streaming_History_Video_2023.json", video)
    export = one(read_export(path, "alice", None))

    assert (export.shape, len(export.records), export.errors) == (EXTENDED, 1, [])


def test_shape_comes_from_the_records_not_the_file_name(tmp_path: Path) -> None:
    legacy_named_extended = write_json(tmp_path / "StreamingHistory0.json", EXTENDED_RECORDS)
    extended_named_legacy = write_json(
        tmp_path / "Streaming_History_Audio_2023_0.json", LEGACY_PODCAST_RECORDS
    )
    renamed = write_json(tmp_path / "my history (1).json", LEGACY_MUSIC_RECORDS)

    assert one(read_export(legacy_named_extended, "a", None)).shape == EXTENDED
    assert one(read_export(extended_named_legacy, "a", None)).shape == LEGACY_PODCAST
    assert one(read_export(renamed, "a", None)).shape == LEGACY_MUSIC


def test_unknown_shape_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "SearchQueries.json", [
        {"platform": "ANDROID", "searchTime": "2023-01-01T10:00:00.000Z", "searchQuery": "abba"},
    ])
    export = one(read_export(path, "alice", None))

    assert export.shape == UNKNOWN and export.failed and export.records == []
    assert len(export.errors) == 1 and export.errors[0].startswith("SearchQueries.json: ")


def test_spotify_zip_yields_history_files_and_skips_other_account_data(tmp_path: Path) -> None:
    archive = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        folder = "Spotify Extended Streaming History/"
        zf.writestr(folder, "")
        zf.writestr(folder + "Streaming_History_Audio_2022-2023_0.json",
                    json.dumps(EXTENDED_RECORDS[:3]))
        zf.writestr(folder + "Streaming_History_Audio_2023_1.json",
                    json.dumps(EXTENDED_RECORDS[3:]))
        zf.writestr(folder + "Streaming_History_Video_2023.json", "[]")
        zf.writestr(folder + "ReadMeFirst_ExtendedStreamingHistory.pdf", b"%PDF-1.4 not json")
        zf.writestr("MyData/StreamingHistory_music_0.json", json.dumps(LEGACY_MUSIC_RECORDS))
        zf.writestr("MyData/StreamingHistory_podcast_0.json", json.dumps(LEGACY_PODCAST_RECORDS))
        zf.writestr("MyData/Userdata.json", json.dumps({"username": "alice.private",
                                                        "country": "SE"}))
        zf.writestr("MyData/Playlist1.json", json.dumps({"playlists": []}))
        zf.writestr("MyData/Marquee.json", json.dumps([{"artistName": "ABBA", "segment": "x"}]))
        zf.writestr("__MACOSX/MyData/._StreamingHistory_music_0.json", b"\x00\x05\x16\x07")

    files = read_export(archive, None, "se")

    assert sorted((f.name, f.shape, len(f.records)) for f in files) == [
        ("my_spotify_data.zip:MyData/StreamingHistory_music_0.json", LEGACY_MUSIC, 3),
        ("my_spotify_data.zip:MyData/StreamingHistory_podcast_0.json", LEGACY_PODCAST, 2),
        ("my_spotify_data.zip:Spotify Extended Streaming History/"
         "Streaming_History_Audio_2022-2023_0.json", EXTENDED, 3),
        ("my_spotify_data.zip:Spotify Extended Streaming History/"
         "Streaming_History_Audio_2023_1.json", EXTENDED, 2),
        ("my_spotify_data.zip:Spotify Extended Streaming History/"
         "Streaming_History_Video_2023.json", EMPTY, 0),
    ]
    assert [e for f in files for e in f.errors] == []
    # Legacy files carry no username: Userdata.json beside them names the account.
    assert {r["account_id"] for f in files for r in f.records} == {"alice.private"}
    assert {r["conn_country"] for f in files if f.shape != EXTENDED for r in f.records} == {"SE"}


def test_json_gz_export(tmp_path: Path) -> None:
    path = tmp_path / "Streaming_History_Audio_2023_0.json.gz"
    path.write_bytes(gzip.compress(json.dumps(EXTENDED_RECORDS).encode("utf-8")))
    export = one(read_export(path, "alice", None))

    assert (export.shape, len(export.records), export.errors) == (EXTENDED, 5, [])


def test_file_that_is_not_json_fails_as_a_whole(tmp_path: Path) -> None:
    path = tmp_path / "Streaming_History_Audio_2023_0.json"
    path.write_bytes(b"<html>Service unavailable</html>")
    export = one(read_export(path, "alice", None))

    assert (export.shape, export.records) == (UNREADABLE, [])
    assert len(export.errors) == 1 and "Streaming_History_Audio_2023_0.json" in export.errors[0]


@pytest.mark.parametrize("content", [{"ts": "2023-01-01T00:00:00Z"}, [1, 2, 3], "history"])
def test_json_that_is_not_a_list_of_objects_fails_as_a_whole(tmp_path: Path, content) -> None:
    export = one(read_export(write_json(tmp_path / "history.json", content), "alice", None))

    assert export.failed and export.records == []
    assert len(export.errors) == 1 and export.errors[0].startswith("history.json: ")


def test_truncated_array_keeps_the_complete_records_before_the_cut(tmp_path: Path) -> None:
    text = json.dumps(EXTENDED_RECORDS, indent=2)
    cut = text.index('"ts": "2023-01-01T09:00:00Z"') + 12  # inside record 3
    path = tmp_path / "Streaming_History_Audio_2023_0.json"
    path.write_text(text[:cut], encoding="utf-8")
    export = one(read_export(path, "alice", None))

    assert [r["ts"] for r in export.records] == [r["ts"] for r in EXTENDED_RECORDS[:3]]
    assert len(export.errors) == 1
    assert export.errors[0].startswith("Streaming_History_Audio_2023_0.json: record 3: ")
    assert "truncated" in export.errors[0]
    assert not export.failed


def test_bad_records_are_reported_by_index_and_the_rest_imports(tmp_path: Path) -> None:
    records = [dict(r) for r in EXTENDED_RECORDS]
    records[1]["ts"] = "01/01/2023 21:15"
    records[3]["ms_played"] = -5
    del records[4]["ms_played"]
    records.append("not an object")
    path = write_json(tmp_path / "Streaming_History_Audio_2023_0.json", records)
    export = one(read_export(path, "alice", None))

    assert [r["ts"] for r in export.records] == [records[0]["ts"], records[2]["ts"]]
    assert export.bad_records == 4
    prefixes = [e.split(": ")[1] for e in export.errors]
    assert prefixes == ["record 1", "record 3", "record 4", "record 5"]
    assert all(e.startswith("Streaming_History_Audio_2023_0.json: ") for e in export.errors)
    assert "ts" in export.errors[0] and "ms_played" in export.errors[1]


def test_legacy_record_with_a_bad_end_time_is_reported(tmp_path: Path) -> None:
    records = [*LEGACY_MUSIC_RECORDS]
    records.insert(1, {**LEGACY_MUSIC_RECORDS[0], "endTime": "yesterday"})
    path = write_json(tmp_path / "StreamingHistory_music_0.json", records)
    export = one(read_export(path, "alice", None))

    assert len(export.records) == 3
    assert export.errors == [
        "StreamingHistory_music_0.json: record 1: endTime 'yesterday' is not 'YYYY-MM-DD HH:MM'"
    ]


def test_split_by_day_uses_the_utc_date_of_ts() -> None:
    records = [
        {"ts": "2023-01-01T23:30:00Z"},
        {"ts": "2023-01-02T00:30:00+02:00"},  # 2023-01-01 22:30 UTC
        {"ts": "2023-01-02T00:00:00Z"},
    ]
    days = split_by_day(records)

    assert list(days) == [dt.date(2023, 1, 1), dt.date(2023, 1, 2)]
    assert days[dt.date(2023, 1, 1)] == records[:2]
    assert days[dt.date(2023, 1, 2)] == records[2:]
