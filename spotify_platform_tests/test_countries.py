"""Country → capital time zone table and the vectorised local-hour computation."""

from __future__ import annotations

import time
import zoneinfo
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spotify_platform.core.sources.countries import (
    COUNTRY_TIMEZONES,
    KNOWN_COUNTRIES,
    UNKNOWN_COUNTRY,
    local_hour,
)

TZ_DIR = Path("/usr/share/zoneinfo")
# Codes whose capital (or administering capital) is not among the zone.tab rows for the code.
OFF_ZONE_TAB = {"AQ", "BV", "HM", "TF", "UM", "XK", "ZZ"}


def _tab(name: str) -> list[list[str]]:
    lines = (TZ_DIR / name).read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


def _hours(stamps: list[str], countries: list[str | None]) -> list[int]:
    instants = pd.Series(pd.to_datetime(stamps, utc=True))
    return local_hour(instants, pd.Series(countries, dtype=object)).tolist()


def test_every_iso_code_plus_kosovo_and_unknown() -> None:
    iso = {row[0] for row in _tab("iso3166.tab")}
    assert len(iso) == 249
    assert set(COUNTRY_TIMEZONES) == iso | {"XK", "ZZ"}
    assert KNOWN_COUNTRIES == frozenset(COUNTRY_TIMEZONES)
    assert UNKNOWN_COUNTRY == "ZZ" and COUNTRY_TIMEZONES["ZZ"] == "UTC"


@pytest.mark.parametrize("zone", sorted(set(COUNTRY_TIMEZONES.values())))
def test_zone_exists_in_machine_tz_database_and_pandas(zone: str) -> None:
    zoneinfo.ZoneInfo(zone)
    pd.Timestamp("2024-01-01", tz="UTC").tz_convert(zone)


def test_zone_is_one_of_the_countrys_own_zones() -> None:
    candidates: dict[str, set[str]] = {}
    for row in _tab("zone.tab"):
        candidates.setdefault(row[0], set()).add(row[2])
    wrong = {
        code: zone
        for code, zone in COUNTRY_TIMEZONES.items()
        if code not in OFF_ZONE_TAB and zone not in candidates[code]
    }
    assert wrong == {}


def test_capitals_of_multi_zone_countries() -> None:
    expected = {
        "US": "America/New_York",
        "BR": "America/Sao_Paulo",
        "AU": "Australia/Sydney",
        "CA": "America/Toronto",
        "RU": "Europe/Moscow",
        "CN": "Asia/Shanghai",
        "IN": "Asia/Kolkata",
        "MX": "America/Mexico_City",
        "ID": "Asia/Jakarta",
        "KZ": "Asia/Almaty",
        "AR": "America/Argentina/Buenos_Aires",
        "ES": "Europe/Madrid",
        "PT": "Europe/Lisbon",
        "GB": "Europe/London",
        "DE": "Europe/Berlin",
        "CL": "America/Santiago",
        "NZ": "Pacific/Auckland",
        "EC": "America/Guayaquil",
        "UA": "Europe/Kyiv",
        "XK": "Europe/Belgrade",
        "SE": "Europe/Stockholm",
    }
    assert {code: COUNTRY_TIMEZONES[code] for code in expected} == expected


def test_us_dst_transitions_by_hand() -> None:
    # 2024-03-10: 02:00 EST jumps to 03:00 EDT at 07:00 UTC; 2024-11-03: 02:00 EDT falls back
    # to 01:00 EST at 06:00 UTC, so 01:30 local happens twice.
    stamps = [
        "2024-03-10T06:59:59Z",
        "2024-03-10T07:00:00Z",
        "2024-11-03T05:30:00Z",
        "2024-11-03T06:30:00Z",
        "2024-11-03T07:00:00Z",
        "2024-01-15T12:00:00Z",
        "2024-07-15T12:00:00Z",
    ]
    assert _hours(stamps, ["US"] * len(stamps)) == [1, 3, 1, 1, 2, 7, 8]


def test_brazil_last_dst_and_none_since_by_hand() -> None:
    # Brasília summer time began 2018-11-04 00:00 BRT (03:00 UTC) and ended 2019-02-17
    # 00:00 BRST (02:00 UTC); Brazil has had no DST since, so it is UTC-3 all year.
    stamps = [
        "2018-11-04T02:59:00Z",
        "2018-11-04T03:00:00Z",
        "2019-02-17T01:59:00Z",
        "2019-02-17T02:00:00Z",
        "2024-01-15T12:00:00Z",
        "2024-07-15T12:00:00Z",
    ]
    assert _hours(stamps, ["BR"] * len(stamps)) == [23, 1, 23, 23, 9, 9]


def test_other_offsets_by_hand() -> None:
    cases = [
        ("2024-03-31T00:59:00Z", "GB", 0),  # GMT, one minute before BST
        ("2024-03-31T01:00:00Z", "GB", 2),  # BST starts
        ("2024-01-15T00:00:00Z", "AU", 11),  # AEDT in the southern summer
        ("2024-07-15T00:00:00Z", "AU", 10),  # AEST
        ("2024-01-15T00:29:00Z", "IN", 5),  # +05:30
        ("2024-01-15T00:30:00Z", "IN", 6),
        ("2024-01-01T00:14:00Z", "NP", 5),  # +05:45
        ("2024-01-01T00:15:00Z", "NP", 6),
        ("2024-06-01T12:00:00Z", "KZ", 17),  # Kazakhstan is +05 since March 2024
        ("2024-06-01T23:00:00Z", "JP", 8),  # next day, +09
        ("2024-06-01T12:00:00Z", "ES", 14),  # CEST
    ]
    stamps, countries, expected = zip(*cases, strict=True)
    assert _hours(list(stamps), list(countries)) == list(expected)


def test_unknown_null_and_lowercase_countries() -> None:
    stamps = ["2024-07-15T12:00:00Z"] * 7
    countries = [None, "ZZ", "", "??", "us", " us ", np.nan]
    assert _hours(stamps, countries) == [12, 12, 12, 12, 8, 8, 12]


def test_result_shape_index_and_dtype() -> None:
    instants = pd.Series(
        pd.to_datetime(["2024-07-15T12:00:00Z", "2024-07-15T13:00:00Z"], utc=True), index=[10, 3]
    )
    result = local_hour(instants, pd.Series(["SE", "ZZ"], index=[0, 1]))
    assert result.dtype == np.int8
    assert result.index.tolist() == [10, 3]
    assert result.tolist() == [14, 13]


def test_millisecond_and_non_utc_inputs() -> None:
    instants = pd.Series(pd.to_datetime(["2024-07-15T12:00:00Z"], utc=True)).dt.as_unit("ms")
    assert local_hour(instants, pd.Series(["US"])).tolist() == [8]
    stockholm = instants.dt.tz_convert("Europe/Stockholm")
    assert local_hour(stockholm, pd.Series(["US"])).tolist() == [8]


def test_empty_input() -> None:
    empty = pd.Series(pd.to_datetime([], utc=True))
    result = local_hour(empty, pd.Series([], dtype=object))
    assert len(result) == 0 and result.dtype == np.int8


def test_rejects_naive_null_and_mismatched_inputs() -> None:
    with pytest.raises(TypeError):
        local_hour(pd.Series(pd.to_datetime(["2024-01-01"])), pd.Series(["US"]))
    with pytest.raises(ValueError):
        local_hour(pd.Series(pd.to_datetime([None], utc=True)), pd.Series(["US"]))
    with pytest.raises(ValueError):
        local_hour(pd.Series(pd.to_datetime(["2024-01-01"], utc=True)), pd.Series(["US", "SE"]))


def test_agrees_with_zoneinfo_for_every_country() -> None:
    rng = np.random.default_rng(7)
    codes = sorted(COUNTRY_TIMEZONES)
    per_code = 40
    seconds = rng.integers(
        int(datetime(2016, 1, 1, tzinfo=UTC).timestamp()),
        int(datetime(2025, 6, 1, tzinfo=UTC).timestamp()),
        len(codes) * per_code,
    )
    countries = [code for code in codes for _ in range(per_code)]
    expected = [
        datetime.fromtimestamp(int(s), tz=zoneinfo.ZoneInfo(COUNTRY_TIMEZONES[c])).hour
        for s, c in zip(seconds, countries, strict=True)
    ]
    instants = pd.Series(pd.to_datetime(seconds, unit="s", utc=True))
    shuffled = rng.permutation(len(countries))
    got = local_hour(instants.iloc[shuffled], pd.Series(countries).iloc[shuffled])
    assert got.tolist() == [expected[i] for i in shuffled]


def test_million_rows_is_fast() -> None:
    rng = np.random.default_rng(1)
    n = 1_000_000
    instants = pd.Series(pd.to_datetime(rng.integers(1.5e9, 1.75e9, n), unit="s", utc=True))
    pool = np.array([*sorted(KNOWN_COUNTRIES), None, "xx"], dtype=object)
    countries = pd.Series(pool[rng.integers(0, len(pool), n)])
    local_hour(instants.head(1000), countries.head(1000))
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        result = local_hour(instants, countries)
        best = min(best, time.perf_counter() - start)
    assert len(result) == n
    assert best < 1.0
