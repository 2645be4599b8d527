"""One day's raw files → its staged rows, duplicates removed, and its quarantine.

`stage_day` is the whole staging step for one day as a pure function: typing, derivation,
pseudonymisation, de-duplication and validation. Every raw record ends up exactly once as a
staged row, a duplicate, or a quarantined row with a reason naming the field.
"""

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spotify_platform.core.memory import collect_cycles, return_free_memory
from spotify_platform.core.sources.identity import text_order
from spotify_platform.core.sources.raw import RawBatch
from spotify_platform.core.staging.canonical import STAGING_COLUMNS, canonicalise
from spotify_platform.core.staging.columns import large_strings
from spotify_platform.core.staging.quarantine import (
    bad_line_records,
    contract_reasons,
    day_quarantine,
    quarantine_records,
)

STAGE_SLICE_ROWS = 125_000


@dataclass
class StagedDay:
    """The outcome of staging one day: every raw record is in exactly one of the three."""

    day: dt.date
    streams: pd.DataFrame
    quarantine: pd.DataFrame
    raw_records: int = 0
    duplicates: int = 0
    files: list[str] = field(default_factory=list)
    unknown_fields: dict[str, list[str]] = field(default_factory=dict)
    missing_fields: dict[str, list[str]] = field(default_factory=dict)
    # The streams as Arrow, when staging had them so anyway (written as they are).
    table: pa.Table | None = None
    # Set when the rows were written to the lake as they were staged (`buckets`): how many;
    # `streams` is then empty.
    written_rows: int | None = None

    @property
    def rejected(self) -> int:
        return len(self.quarantine)

    @property
    def staged_rows(self) -> int:
        return len(self.streams) if self.written_rows is None else self.written_rows

    def reason_counts(self) -> dict[str, int]:
        if self.quarantine.empty:
            return {}
        counts = self.quarantine["reason"].value_counts()
        return {str(k): int(v) for k, v in counts.items()}


def stage_day(batches: dict[str, RawBatch], *, key: bytes, day: dt.date) -> StagedDay:
    """Stage every raw file of one day: canonical rows, duplicates removed, quarantine.

    Consumes `batches`: once the quarantine has copied what it needs from the raw records
    they are released, so the day's sort does not hold them as well.
    """
    staged: list[pd.DataFrame] = []
    rejected: list[pd.DataFrame] = []
    raw_count = 0
    pseudonyms: dict[str, str] = {}
    result = StagedDay(day=day, streams=pd.DataFrame(), quarantine=pd.DataFrame())
    for source_file in sorted(batches):
        batch = batches.pop(source_file)
        note_file(source_file, batch, day, rejected, result)
        raw = batch.records.reset_index(drop=True)
        source = source_of(source_file)
        file_rows = FileRows(raw, source_file, source, key, day, pseudonyms)
        # Slices bound the memory of the intermediate columns: a million-record file is typed
        # an eighth at a time and only the canonical columns are kept.
        for start in range(0, len(raw), STAGE_SLICE_ROWS):
            frame, bad = file_rows.stage_slice(start)
            staged.append(frame)
            rejected.extend(bad)
        del file_rows
        raw_count += len(raw) + len(batch.bad_lines)
        del raw, batch
        return_free_memory()

    result.raw_records = raw_count
    return finish_day(result, staged, rejected)


@dataclass
class FileRows:
    """One raw file's records, staged a slice at a time."""

    raw: pd.DataFrame
    source_file: str
    source: str
    key: bytes
    day: dt.date
    pseudonyms: dict[str, str]

    def stage_slice(self, start: int) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
        """The slice's canonical rows that pass the contract; the quarantine of the rest."""
        raw, day = self.raw, self.day
        part = raw.iloc[start : start + STAGE_SLICE_ROWS]
        frame = canonicalise(
            part, key=self.key, source=self.source, day=day, pseudonyms=self.pseudonyms
        )
        bad: list[pd.DataFrame] = []
        typed_bad = frame["_reason"].notna()
        if typed_bad.any():
            rows = frame.index[typed_bad]
            reasons, ids = frame["_reason"], frame["account_id"]
            bad.append(quarantine_records(raw, rows, reasons, ids, self.source_file, day))
            frame = frame[~typed_bad]
        # Dropped, not carried: an all-null object column makes pandas' concat test
        # each of its values.
        frame = frame.drop(columns="_reason")
        # The contract runs here, while this file's raw records are at hand for the
        # quarantine, so they can go before the day's rows are joined and sorted.
        failed = contract_reasons(frame)
        if len(failed):
            ids = frame["account_id"]
            bad.append(quarantine_records(raw, failed.index, failed, ids, self.source_file, day))
            frame = frame.drop(index=failed.index)
        # The slice's intermediate columns are gone; what they used goes back before the
        # next slice, or the file's raw records, its canonical rows and the allocators'
        # leftovers add up to the day's peak.
        return_free_memory()
        return frame, bad


def note_file(
    source_file: str,
    batch: RawBatch,
    day: dt.date,
    rejected: list[pd.DataFrame],
    result: StagedDay,
) -> None:
    """Note a raw file's drift, its lines that were not JSON, and whether it had records."""
    if batch.unknown_fields:
        result.unknown_fields[source_file] = batch.unknown_fields
    if batch.missing_fields:
        result.missing_fields[source_file] = batch.missing_fields
    if batch.bad_lines:
        rejected.append(bad_line_records(batch.bad_lines, source_file, day))
    if batch.rows:
        result.files.append(source_file)


def source_of(key: str) -> str:
    """The source a raw file's key names (`source=...`), `export` when it names none."""
    for part in key.split("/"):
        if part.startswith("source="):
            return part.removeprefix("source=")
    return "export"


def finish_day(
    result: StagedDay, staged: list[pd.DataFrame], rejected: list[pd.DataFrame]
) -> StagedDay:
    """The day's staged rows (duplicates out, in event id order) and its quarantine.

    Consumes `staged`, the day's canonical rows in parts: the sort below frees each column
    as it moves it, which only returns memory if nothing else holds the frame.
    """
    day = result.day
    if len(staged) == 1:
        candidates = staged[0].reset_index(drop=True)
    else:
        candidates = pd.concat(staged, ignore_index=True) if staged else empty_candidates()
    staged.clear()
    repeated = _repeated(candidates["event_id"])
    result.duplicates = int(repeated.sum())
    if list(candidates.columns) != STAGING_COLUMNS:
        candidates = candidates[STAGING_COLUMNS]
    # pandas' `.str` accessors (pandera's string checks use them) keep Series in reference
    # cycles; collecting them here frees the day's intermediate columns before the sort
    # needs room, instead of whenever the collector next runs (often after the load).
    collect_cycles(len(candidates))
    result.streams = _sort_by_event_id(candidates, keep=~repeated)
    del candidates
    result.quarantine = day_quarantine(rejected, day)
    return result


def _sort_by_event_id(frame: pd.DataFrame, keep: np.ndarray | None = None) -> pd.DataFrame:
    """The rows in event id order (the warehouse's primary key order within a day, so the
    loader streams them as they are), leaving out those `keep` marks False (the day's
    duplicates) in the same pass. Columns move one at a time and the old one is let go, so
    only one is ever held twice: the caller must hold no other reference to the frame."""
    order = text_order(large_strings(frame["event_id"])) if len(frame) else np.zeros(0, np.int64)
    if keep is not None:
        order = order[keep[order]]
    if len(order) == len(frame) and bool((np.diff(order) == 1).all()):
        return frame.reset_index(drop=True)
    columns = {}
    for name in list(frame.columns):
        columns[name] = frame[name].array.take(order)
        del frame[name]
    return pd.DataFrame(columns, copy=False)


def _repeated(ids: pd.Series) -> np.ndarray:
    """True for each id seen earlier in the column (`duplicated(keep="first")` computed by
    Arrow's hashing: pandas would first turn a million Arrow strings into Python objects)."""
    if ids.empty:
        return np.zeros(0, dtype=bool)
    codes = pc.dictionary_encode(large_strings(ids)).indices.to_numpy(zero_copy_only=False)
    first = np.zeros(len(codes), dtype=bool)
    first[np.unique(codes, return_index=True)[1]] = True
    return ~first


def empty_candidates() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="string[pyarrow]") for c in STAGING_COLUMNS})
    frame = frame.astype(
        {
            "ended_at": "datetime64[ns, UTC]",
            "started_at": "datetime64[ns, UTC]",
            "ms_played": "int64",
            "shuffle": "boolean",
            "skipped": bool,
            "offline": "boolean",
            "incognito": "boolean",
            "is_stream": bool,
            "dt": "datetime64[ns]",
            "utc_hour": "Int8",
            "local_hour": "Int8",
        }
    )
    return frame
