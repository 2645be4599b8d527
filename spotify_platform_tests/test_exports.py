"""Spotify data exports: every shape parses to raw records, lands by UTC day, and stages.

Fixture exports are synthetic and small but carry the real quirks: unsorted records,
`offline_timestamp` in seconds and in milliseconds, podcast rows with null track fields,
the older `username` / decrypted IP fields, and Spotify's zip layout. Expected values are
computed here from the fixture records, independently of the code under test.
"""

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
    EMPTY,
    EXTENDED,
    LEGACY_MUSIC,
    LEGACY_PODCAST,
    UNKNOWN,
    UNREADABLE,
    ExportFile,
    read_export,
    split_by_day,
)
from spotify_platform.core.sources.raw import RAW_FIELDS, count_records, parse_jsonl
from spotify_platform.core.staging.one_day import stage_day
from spotify_platform.defs.resources.lake import LakeResource

AUDIOBOOK_FIELDS = (
    "audiobook_title", "audiobook_uri", "audiobook_chapter_uri", "audiobook_chapter_title",
)
OLD_PERSONAL = {
    "username": "alice.private",
    "ip_addr_decrypted": "203.0.113.7",
    "user_agent_decrypted": "Spotify/8.8.0 Android/31 (SM-G991B)",
}
IP = "198.51.100.23"


def play(
    ts: str,
    ms: int,
    track: str | None = "Halo",
    artist: str | None = "Beyoncé",
    uri: str | None = "spotify:track:4JehYebiI9JE8sR8MisGVb",
    episode: str | None = None,
    show: str | None = None,
    offline_timestamp: int | None = 1672574400,
    country: str = "SE",
    reason_end: str = "trackdone",
) -> dict:
    """One record of the newest extended export (with audiobook fields)."""
    return {
        "ts": ts,
        "platform": "Android OS 12 API 31 (samsung, SM-G991B)",
        "ms_played": ms,
        "conn_country": country,
        "ip_addr": IP,
        "master_metadata_track_name": track,
        "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": "I Am... Sasha Fierce" if track else None,
        "spotify_track_uri": uri,
        "episode_name": episode,
        "episode_show_name": show,
        "spotify_episode_uri": "spotify:episode:0Q86acNRm6V9GYx55SXKwf" if episode else None,
        "audiobook_title": None,
        "audiobook_uri": None,
        "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None,
        "reason_start": "clickrow",
        "reason_end": reason_end,
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "offline_timestamp": offline_timestamp,
        "incognito_mode": False,
    }


def podcast(ts: str, ms: int) -> dict:
    return play(ts, ms, track=None, artist=None, uri=None, episode="Ep. 12: Sound",
                show="The Daily Noise")


# Unsorted on purpose; days 2023-01-01 and 2023-01-02 (UTC); offline_timestamp in s and ms.
EXTENDED_RECORDS = [
    play("2023-01-02T08:00:00Z", 200_000, offline_timestamp=1672646000123),
    play("2023-01-01T21:15:00Z", 29_999, track="Single Ladies", offline_timestamp=1672607600),
    podcast("2023-01-01T22:30:00Z", 1_800_000),
    play("2023-01-01T09:00:00Z", 30_000, track="If I Were a Boy",
         uri="spotify:track:26CuY5O8cbsrMIymEOmx4A", reason_end="fwdbtn"),
    play("2023-01-01T23:59:59Z", 0, track="Sweet Dreams", offline_timestamp=None),
]
LEGACY_MUSIC_RECORDS = [
    {"endTime": "2023-01-01 10:05", "artistName": "Daft Punk", "trackName": "One More Time",
     "msPlayed": 320_000},
    {"endTime": "2022-12-31 23:58", "artistName": "ABBA", "trackName": "Happy New Year",
     "msPlayed": 12_000},
    {"endTime": "2023-01-01 00:01", "artistName": "Daft Punk", "trackName": "Digital Love",
     "msPlayed": 45_000},
]
LEGACY_PODCAST_RECORDS = [
    {"endTime": "2023-01-01 07:30", "podcastName": "Morning Brief",
     "episodeName": "Monday, Jan 1", "msPlayed": 900_000},
    {"endTime": "2023-01-02 07:30", "podcastName": "Morning Brief",
     "episodeName": "Tuesday, Jan 2", "msPlayed": 60_000},
]


def older(record: dict) -> dict:
    """An older extended record: no audiobook fields, plus username and decrypted fields."""
    trimmed = {k: v for k, v in record.items() if k not in AUDIOBOOK_FIELDS}
    return {**trimmed, **OLD_PERSONAL}


def write_json(path: Path, records: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def utc_day(ts: str) -> dt.date:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(dt.UTC).date()


def one(files: list[ExportFile]) -> ExportFile:
    assert len(files) == 1, [f.name for f in files]
    return files[0]


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
