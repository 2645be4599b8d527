"""Pseudonyms, event ids and surrogate ids equal an independent computation with hashlib and
hmac, and text order equals Python's order of code points."""

import hashlib
import hmac

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from spotify_platform.core.sources.identity import (
    MAX_TIE_GROUPS,
    event_ids,
    hex_strings,
    name_id,
    name_ids,
    name_ids_where,
    pseudonymise,
    text_order,
)

KEY = b"a test key"


def _pseudonym(name: str) -> str:
    return hmac.new(KEY, name.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _name_id(*parts: str) -> str:
    joined = "\x1f".join(p.strip() for p in parts).casefold()
    return "~" + hashlib.blake2b(joined.encode("utf-8"), digest_size=11).hexdigest()[:21]


def test_pseudonyms_are_the_keyed_hmac_of_each_name_and_null_stays_null():
    names = pd.Series(["alice", "bob", None, "alice", "Ünïcode ✓"], dtype="string[pyarrow]")
    memo: dict[str, str] = {}
    got = pseudonymise(names, KEY, memo)
    assert got.tolist()[:2] == [_pseudonym("alice"), _pseudonym("bob")]
    assert got.isna().tolist() == [False, False, True, False, False]
    assert got[3] == got[0] and got[4] == _pseudonym("Ünïcode ✓")
    assert memo == {n: _pseudonym(n) for n in ("alice", "bob", "Ünïcode ✓")}
    assert pseudonymise(names, b"another key")[0] != got[0]
    assert str(got.dtype) == "string"


def test_surrogate_ids_hash_the_trimmed_casefolded_names():
    assert (
        name_id("ABBA", " Waterloo ") == _name_id("ABBA", "Waterloo") == name_id("abba", "waterloo")
    )
    assert name_id("ABBA") == _name_id("ABBA")
    assert name_id(None, "x") == _name_id("", "x")
    assert len(name_id("a")) == 22 and name_id("a").startswith("~")
    artists = pd.Series(["ABBA", " Daft Punk", None], dtype="string[pyarrow]")
    tracks = pd.Series(["Waterloo", "One More Time", "x"], dtype="string[pyarrow]")
    got = name_ids(artists, tracks)
    assert got.tolist()[:2] == [
        _name_id("ABBA", "Waterloo"),
        _name_id("Daft Punk", "One More Time"),
    ]
    assert got.isna().tolist() == [False, False, True]
    assert name_ids(artists).tolist()[:2] == [_name_id("ABBA"), _name_id("Daft Punk")]


def test_surrogate_ids_where_asked_only_and_missing_elsewhere():
    artists = pd.Series(["ABBA", "Daft Punk", None, "Björk"], dtype="string[pyarrow]")
    tracks = pd.Series(["Waterloo", "One More Time", "x", "Jóga"], dtype="string[pyarrow]")
    artists.index = tracks.index = pd.Index([7, 3, 9, 1])
    got = name_ids_where(np.array([False, True, True, True]), artists, tracks)
    assert got.index.tolist() == [7, 3, 9, 1]
    assert got.isna().tolist() == [True, False, True, False]
    assert got[3] == _name_id("Daft Punk", "One More Time") and got[1] == _name_id("Björk", "Jóga")
    assert name_ids_where(np.zeros(4, dtype=bool), artists, tracks).isna().all()


def test_event_ids_hash_account_end_second_content_and_duration():
    accounts = pd.Series(["p1", "p2", "p1"], dtype="string[pyarrow]")
    ended = pd.Series(
        pd.to_datetime(
            ["2026-03-02T10:00:00.900Z", "1969-12-31T23:59:59.500Z", "2040-01-01T00:00:00.000Z"]
        )
    )
    content = pd.Series(["spotify:track:x", "name:a\x1fb", "spotify:episode:y"], dtype="string")
    ms = pd.Series([30_000, 0, 123], dtype="int64")
    got = event_ids(accounts, ended, content, ms)
    seconds = [int(ts.timestamp() // 1) for ts in ended]
    assert seconds[1] == -1  # floored, not truncated, before 1970
    expected = [
        hashlib.blake2b(f"{a}\x1f{s}\x1f{c}\x1f{m}".encode(), digest_size=16).hexdigest()
        for a, s, c, m in zip(accounts, seconds, content, ms, strict=True)
    ]
    assert got.tolist() == expected
    assert got.index.equals(accounts.index)


def test_hex_strings_are_the_hex_of_each_digest():
    digests = [hashlib.blake2b(str(i).encode(), digest_size=16).digest() for i in range(5)]
    assert hex_strings(b"".join(digests), 16).to_pylist() == [d.hex() for d in digests]


@pytest.mark.parametrize(
    "values",
    [
        [hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in range(2_000)],
        ["b", "a", "ab", "", "é", "Z", "a"],
        ["b", None, "a", "c"],
        [f"{i % 10_500:08d}{'ba'[i // 10_500]}" for i in range(21_000)],
    ],
    ids=["one width", "several widths", "nulls", "many ties"],
)
def test_text_order_is_code_point_order_with_nulls_last(values):
    if len(values) > 2 * MAX_TIE_GROUPS:
        assert len({v[:8] for v in values}) > MAX_TIE_GROUPS
    order = text_order(pa.array(values, type=pa.large_string()))
    got = [values[i] for i in order]
    present = sorted(v for v in values if v is not None)
    assert got == present + [None] * (len(values) - len(present))
    assert sorted(order.tolist()) == list(range(len(values)))
    assert np.asarray(order).dtype.kind in "iu"
