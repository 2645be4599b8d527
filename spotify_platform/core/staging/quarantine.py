"""The staging contract on canonical rows, and the quarantine rows of what fails it.

Every raw record staging cannot keep becomes a quarantine row: its file, its line, a reason
naming the field (or the contract's column and check), and the record itself with its
personal fields dropped and the account pseudonymised.
"""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pandera.errors

from spotify_platform.core.contracts.schemas import StagingStreams
from spotify_platform.core.sources.raw import PERSONAL_FIELDS, RAW_FIELDS
from spotify_platform.core.staging.canonical import STAGING_COLUMNS

CONTRACT_SLICE_ROWS = 100_000
# A file's rows are checked before the day's duplicates are dropped, so uniqueness of event_id
# is left out here: the day's de-duplication is what makes it hold.
SLICE_CONTRACT = StagingStreams.to_schema().update_column("event_id", unique=False)


def contract_reasons(frame: pd.DataFrame) -> pd.Series:
    """One reason string per row of `frame` failing the staging contract, by row label.

    Validated CONTRACT_SLICE_ROWS rows at a time, which bounds pandera's intermediate frames.
    """
    reasons = [
        _slice_reasons(frame.iloc[first : first + CONTRACT_SLICE_ROWS][STAGING_COLUMNS])
        for first in range(0, len(frame), CONTRACT_SLICE_ROWS)
    ]
    return pd.concat(reasons) if reasons else pd.Series(dtype=object)


def _slice_reasons(frame: pd.DataFrame) -> pd.Series:
    try:
        SLICE_CONTRACT.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        row_cases = cases[cases["index"].notna()]
        frame_cases = cases[cases["index"].isna()]
        if not frame_cases.empty:
            detail = "; ".join(
                f"{r.column}: {r.check}" for r in frame_cases.head(5).itertuples(index=False)
            )
            raise ValueError(f"staging frame does not match its contract: {detail}") from None
        labels = row_cases.apply(_describe_failure, axis=1)
        grouped = labels.groupby(row_cases["index"].astype("int64")).agg(
            lambda s: "; ".join(dict.fromkeys(s))
        )
        return grouped
    return pd.Series(dtype=object)


def _describe_failure(case: pd.Series) -> str:
    check = str(case["check"])
    if check.startswith("isin("):
        check = "isin(allowed values)"
    column = case["column"] if isinstance(case["column"], str) else case["schema_context"]
    value = case["failure_case"]
    shown = repr(value)[:80] if column not in ("account_id",) else "<pseudonym>"
    return f"{column}={shown} fails {check}"


def quarantine_records(
    raw: pd.DataFrame,
    rows: pd.Index,
    reasons: pd.Series,
    account_ids: pd.Series,
    source_file: str,
    day: dt.date,
) -> pd.DataFrame:
    """Rejected raw records, personal fields dropped and the account pseudonymised."""
    if len(rows) == 0:
        return pd.DataFrame({"dt": [], "source_file": [], "line": [], "reason": [], "record": []})
    subset = raw.loc[rows].drop(columns=[c for c in PERSONAL_FIELDS if c in raw.columns])
    subset = subset.assign(account_id=account_ids.loc[rows])
    lines = subset.pop("_line").astype("int64")
    records = [_record_text(rec) for rec in subset.to_dict("records")]
    return pd.DataFrame(
        {
            "dt": pd.Timestamp(day),
            "source_file": source_file,
            "line": lines.to_numpy(),
            "reason": reasons.loc[rows].astype(str).to_numpy(),
            "record": records,
        }
    )


def bad_line_records(
    bad_lines: list[tuple[int, str, str]], source_file: str, day: dt.date
) -> pd.DataFrame:
    """Quarantine rows of a raw file's lines that were not JSON objects, as they were."""
    return pd.DataFrame(
        {
            "dt": pd.Timestamp(day),
            "source_file": source_file,
            "line": [b[0] for b in bad_lines],
            "reason": [b[1] for b in bad_lines],
            "record": [b[2] for b in bad_lines],
        }
    )


def day_quarantine(rejected: list[pd.DataFrame], day: dt.date) -> pd.DataFrame:
    """A day's quarantine from its parts, by file and line; an empty quarantine of the same
    columns if none. Ordered by line, not by how the parts came (bad lines, records that could
    not be typed, then the contract's, slice by slice), so the order does not depend on how
    a file was sliced or read in blocks."""
    if rejected:
        frame = pd.concat(rejected, ignore_index=True)
        return frame.sort_values(["source_file", "line"], kind="stable", ignore_index=True)
    return quarantine_records(
        pd.DataFrame(), pd.Index([]), pd.Series(dtype=object), pd.Series(dtype=object), "", day
    )


def _record_text(record: dict) -> str:
    """A rejected record as JSON: raw fields in their schema's order, then the others present
    by name. Fields are ordered, and extra fields without a value left out, the same whichever
    parser read the line and whatever the other lines of its file or block hold."""
    fields = {k: _jsonable(record[k]) for k in RAW_FIELDS if k in record}
    for name in sorted(set(record) - set(RAW_FIELDS)):
        if (value := _jsonable(record[name])) is not None:
            fields[name] = value
    return json.dumps(fields, ensure_ascii=False, default=str)


def _jsonable(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
