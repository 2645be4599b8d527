"""Awkward names and missing values through the whole pipeline, on MariaDB: Unicode and
SQL-shaped names stay byte for byte, missing optional values are NULL, never the text "nan".
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.lake.layout import (
    dashboard_key,
    raw_key,
)
from spotify_platform.core.sources.raw import encode_records
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.harness import (
    make_resources,
    read_table,
    run_days,
)
from spotify_platform_tests.support.mariadb import (
    temporary_database,
)
from spotify_platform_tests.support.records import play

UNICODE_DAY = dt.date(2026, 3, 3)
INJECTION_DAY = dt.date(2026, 3, 4)
UNICODE_NAMES = [
    "🔥 Fire 👩🏽‍🚀 and 🏳️‍🌈",
    "夜に駆ける 𠮷野家",
    "فيروز \u200f(مباشر)\u200e",
    "עומר אדם",
    "Beyonc\u00e9",  # é as one code point (NFC)
    "Beyonce\u0301",  # e + combining acute (NFD): other bytes, so another name
    "Z\u0351\u0354a\u0300l\u0316g\u0301o \u202eevil\u202c",
]
INJECTION_NAMES = [
    "'); DROP TABLE fact_streams; --",
    "Robert'); DROP TABLE students;--",
    "\\'; SELECT SLEEP(5); -- x",
    '" OR "1"="1',
    "%s %(name)s :name ? {0}",
    "\\N",
    "NULL",
    "back\\slash, tab\tand\nnewline",
    "`; DELETE FROM dim_tracks; #",
]
PLAIN = "Plain Song"
MISSING_TEXT = ("", "nan", "NaN", "None", "none", "<NA>", "NaT", "null", "undefined")


def named_plays(day: dt.date, names: list[str], with_uri: bool) -> list[dict]:
    """Each name as track, artist and album; more plays for earlier names, all streams."""
    records = []
    for i, name in enumerate(names):
        for k in range(len(names) - i + 1):
            uri = f"spotify:track:{i:02d}{'x' * 20}" if with_uri else None
            records.append(
                play(
                    f"{day}T{10 + k % 10:02d}:{i:02d}:{k:02d}Z",
                    account=f"listener-{i}-{k}",
                    master_metadata_track_name=name,
                    master_metadata_album_artist_name=name,
                    master_metadata_album_album_name=name,
                    spotify_track_uri=uri,
                )
            )
    return records


def missing_value_plays(day: dt.date) -> list[dict]:
    """Optional fields empty, blank, null, NaN or absent (NaN makes the file non-strict JSON)."""
    base = play(f"{day}T20:00:00Z", master_metadata_track_name=PLAIN)
    variants: list[dict] = [
        {"master_metadata_album_album_name": ""},
        {"master_metadata_album_album_name": "   "},
        {"master_metadata_album_album_name": None},
        {"master_metadata_album_album_name": float("nan")},
        {"reason_start": "", "reason_end": None, "shuffle": None, "incognito_mode": float("nan")},
        {"conn_country": "", "platform": None, "offline": None},
    ]
    records = []
    for i, change in enumerate(variants):
        record = {**base, **change, "account_id": f"listener-missing-{i}"}
        record["ts"] = f"{day}T20:{i:02d}:00Z"
        records.append(record)
    absent = {k: v for k, v in base.items() if k not in ("master_metadata_album_album_name",)}
    records.append({**absent, "ts": f"{day}T21:00:00Z", "account_id": "listener-missing-x"})
    return records


@pytest.fixture(scope="module", params=["auto", "insert"])
def awkward(request, mysql_server_url: str, tmp_path_factory) -> Iterator[dict]:
    """Two days of awkward plays run through the pipeline, per bulk path, on MariaDB."""
    with temporary_database(mysql_server_url) as url:
        resources = make_resources(
            tmp_path_factory.mktemp("awkward"), warehouse_url=url, accounts=0
        )
        resources["warehouse"] = WarehouseResource(url=url, bulk_load=request.param)
        lake: LakeResource = resources["lake"]
        unicode_day = named_plays(UNICODE_DAY, UNICODE_NAMES, True)
        lake.write_bytes(
            raw_key(UNICODE_DAY, "export", "unicode"),
            encode_records(unicode_day + missing_value_plays(UNICODE_DAY)),
        )
        injection_day = named_plays(INJECTION_DAY, INJECTION_NAMES, False)
        lake.write_bytes(raw_key(INJECTION_DAY, "export", "sql"), encode_records(injection_day))
        assert run_days(resources, UNICODE_DAY, INJECTION_DAY)
        assert resources["warehouse"].load_path == (
            "load_data" if request.param == "auto" else "insert"
        )
        yield resources
        resources["warehouse"].engine.dispose()


def stored_hex(warehouse: WarehouseResource, table: str, column: str, day: dt.date) -> set[str]:
    """The bytes MariaDB holds (HEX on the server), so no driver decoding can hide a change."""
    frame = warehouse.read_frame(
        sa.text(f"SELECT DISTINCT HEX({column}) AS h FROM {table} WHERE dt = :d"), {"d": day}
    )
    return set(frame["h"].dropna())


def hex_of(names: list[str]) -> set[str]:
    return {name.encode("utf-8").hex().upper() for name in names}


def dashboard(resources: dict, day: dt.date) -> str:
    return resources["lake"].read_bytes(dashboard_key(day)).decode("utf-8")


def test_unicode_names_survive_mysql_and_the_dashboard_byte_for_byte(awkward: dict) -> None:
    warehouse: WarehouseResource = awkward["warehouse"]
    named = hex_of(UNICODE_NAMES)
    for column in ("track_name", "artist_name", "album_name"):
        assert named <= stored_hex(warehouse, "fact_streams", column, UNICODE_DAY), column
    assert stored_hex(warehouse, "kpi_top_artists", "artist_name", UNICODE_DAY) == named | hex_of(
        ["Band"]
    )
    assert named <= stored_hex(warehouse, "kpi_top_tracks", "track_name", UNICODE_DAY)
    dims = warehouse.read_frame(
        "SELECT HEX(track_name) AS t, HEX(artist_name) AS a, HEX(album_name) AS b FROM dim_tracks"
    )
    assert named <= set(dims["t"]) and named <= set(dims["a"]) and named <= set(dims["b"])
    artists = warehouse.read_frame("SELECT HEX(artist_name) AS a FROM dim_artists")
    assert named <= set(artists["a"])
    page = dashboard(awkward, UNICODE_DAY)
    for name in UNICODE_NAMES:
        assert html.escape(name) in page, name
    top = read_table(awkward, "kpi_top_artists")
    names = set(top.loc[top["dt"] == pd.Timestamp(UNICODE_DAY), "artist_name"])
    assert {"Beyonc\u00e9", "Beyonce\u0301"} <= names, "NFC and NFD stay two artists"


def test_sql_shaped_names_are_stored_literally(awkward: dict) -> None:
    warehouse: WarehouseResource = awkward["warehouse"]
    assert warehouse.missing_tables() == []
    named = hex_of(INJECTION_NAMES)
    for column in ("track_name", "artist_name", "album_name"):
        assert stored_hex(warehouse, "fact_streams", column, INJECTION_DAY) == named, column
    assert stored_hex(warehouse, "kpi_top_artists", "artist_name", INJECTION_DAY) == named
    assert stored_hex(warehouse, "kpi_top_tracks", "track_name", INJECTION_DAY) == named
    nulls = warehouse.scalar(
        "SELECT COUNT(*) FROM fact_streams WHERE dt = :d AND "
        "(track_name IS NULL OR artist_name IS NULL OR album_name IS NULL)",
        {"d": INJECTION_DAY},
    )
    assert nulls == 0, "'\\N' and 'NULL' are names, not NULLs"
    plays = len(named_plays(INJECTION_DAY, INJECTION_NAMES, False))
    assert (
        warehouse.scalar("SELECT COUNT(*) FROM fact_streams WHERE dt = :d", {"d": INJECTION_DAY})
        == plays
    )
    assert warehouse.scalar("SELECT COUNT(*) FROM dim_tracks") > 0
    page = dashboard(awkward, INJECTION_DAY)
    for name in INJECTION_NAMES:
        assert html.escape(name) in page, name


def test_missing_optional_values_are_null_never_the_text_nan(awkward: dict) -> None:
    warehouse: WarehouseResource = awkward["warehouse"]
    checked = 0
    for name, table in TABLES.items():
        for column in table.columns:
            if isinstance(column.type, sa.String):
                found = warehouse.read_frame(
                    sa.select(column).where(column.in_(MISSING_TEXT)).limit(3)
                )
                assert found.empty, (name, column.name, found.iloc[:, 0].tolist())
                checked += 1
    assert checked >= 30, "every text column of every table was looked at"
    plain = warehouse.read_frame(
        sa.text(
            "SELECT album_name, reason_start, reason_end, shuffle, incognito, offline, "
            "country, platform FROM fact_streams WHERE track_name = :t"
        ),
        {"t": PLAIN},
    )
    assert len(plain) == len(missing_value_plays(UNICODE_DAY))
    assert plain["album_name"].isna().sum() == 5, "'', blank, null, NaN and absent albums"
    assert plain["reason_start"].isna().sum() == 1 and plain["reason_end"].isna().sum() == 1
    assert plain["shuffle"].isna().sum() == 1 and plain["incognito"].isna().sum() == 1
    assert plain["offline"].isna().sum() == 1
    assert set(plain["country"]) == {"DE", "ZZ"} and set(plain["platform"]) == {
        "android",
        "unknown",
    }
    dim = warehouse.read_frame(
        sa.text("SELECT album_name, popularity FROM dim_tracks WHERE track_name = :t"),
        {"t": PLAIN},
    )
    assert len(dim) == 1 and dim["popularity"].isna().all()
