"""The staging contract names each failing row's column and check, and quarantine rows keep
the record without its personal fields."""

import datetime as dt
import json

import pandas as pd
import pandera.errors
import pytest

from spotify_platform.core.sources.raw import PERSONAL_FIELDS, encode_jsonl_gz, parse_jsonl
from spotify_platform.core.sources.simulator import ListeningSimulator
from spotify_platform.core.staging import quarantine
from spotify_platform.core.staging.canonical import canonicalise
from spotify_platform.core.staging.quarantine import (
    bad_line_records,
    contract_reasons,
    day_quarantine,
    quarantine_records,
)

DAY = dt.date(2026, 3, 2)
QUARANTINE_COLUMNS = ["dt", "source_file", "line", "reason", "record"]


def _raw() -> pd.DataFrame:
    frame = ListeningSimulator(accounts=20, seed=5, epoch=dt.date(2026, 1, 1)).day(DAY)
    frame["username"] = "someone.private"
    return parse_jsonl(encode_jsonl_gz(frame)).records


def test_contract_reasons_name_the_column_and_check_of_each_failing_row(monkeypatch):
    raw = _raw()
    frame = canonicalise(raw, key=b"k", source="simulator", day=DAY).drop(columns="_reason")
    assert contract_reasons(frame).empty
    frame.loc[[2, 5], "ms_played"] = -5
    frame.loc[5, "country"] = "XX"
    monkeypatch.setattr(quarantine, "CONTRACT_SLICE_ROWS", 4)  # rows 2 and 5 in two slices
    reasons = contract_reasons(frame)
    assert sorted(reasons.index) == [2, 5]
    assert reasons[2] == "ms_played=-5 fails greater_than_or_equal_to(0)"
    assert "ms_played=-5 fails" in reasons[5] and "country='XX' fails isin" in reasons[5]


def test_text_columns_of_another_dtype_fail_the_contract_by_name():
    """Arrow-backed text passes the dtype check as one comparison; text held as Python
    objects passes value by value, as pandera checks it; numbers fail, named."""
    frame = canonicalise(_raw(), key=b"k", source="simulator", day=DAY).drop(columns="_reason")
    as_objects = frame.assign(track_name=frame["track_name"].astype(object))
    assert contract_reasons(as_objects).empty
    numbers = frame.assign(account_id=range(len(frame)))
    with pytest.raises(ValueError, match="does not match its contract: account_id: "):
        contract_reasons(numbers)
    with pytest.raises(pandera.errors.SchemaErrors) as failed:
        quarantine.SLICE_CONTRACT.validate(numbers, lazy=True)
    cases = failed.value.failure_cases
    dtype_cases = cases[cases["check"].astype(str).str.startswith("dtype(")]
    assert {tuple(pair) for pair in dtype_cases[["column", "check"]].values.tolist()} == {
        ("account_id", "dtype('string[pyarrow]')")
    }


def test_quarantine_records_drop_personal_fields_and_keep_line_and_reason():
    raw = _raw()
    frame = canonicalise(raw, key=b"k", source="simulator", day=DAY)
    rows = pd.Index([1, 3])
    reasons = pd.Series({1: "one", 3: "three"})
    got = quarantine_records(raw, rows, reasons, frame["account_id"], "f.jsonl.gz", DAY)
    assert list(got.columns) == QUARANTINE_COLUMNS
    assert got["line"].tolist() == raw.loc[rows, "_line"].tolist()
    assert got["reason"].tolist() == ["one", "three"]
    assert set(got["source_file"]) == {"f.jsonl.gz"} and set(got["dt"]) == {pd.Timestamp(DAY)}
    for row, text in zip(rows, got["record"], strict=True):
        record = json.loads(text)
        assert not set(PERSONAL_FIELDS) & set(record)
        assert record["account_id"] == frame.loc[row, "account_id"] != raw.loc[row, "account_id"]
        assert record["ts"] == raw.loc[row, "ts"]


def test_bad_lines_and_empty_days_have_the_quarantine_columns():
    bad = bad_line_records([(4, "line is not JSON: x", "{oops")], "f", DAY)
    assert bad.to_dict("records") == [
        {
            "dt": pd.Timestamp(DAY),
            "source_file": "f",
            "line": 4,
            "reason": "line is not JSON: x",
            "record": "{oops",
        }
    ]
    empty = day_quarantine([], DAY)
    assert list(empty.columns) == QUARANTINE_COLUMNS and empty.empty
    assert day_quarantine([bad, bad], DAY)["line"].tolist() == [4, 4]
