"""Many small days staged at once: their raw files joined as Arrow, typed and checked in one
call, and parted again into days.

Typing and the contract cost a fixed time per call whatever the rows, which dominated days of
a few dozen plays; here every file of every day is typed and checked together, and the days
are parted again for de-duplication, which stays within a day.
"""

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spotify_platform.core.sources.identity import text_order
from spotify_platform.core.sources.raw import RawBatch, arrow_records
from spotify_platform.core.staging.canonical import STAGING_COLUMNS, canonicalise
from spotify_platform.core.staging.columns import labelled, large_strings
from spotify_platform.core.staging.one_day import StagedDay, finish_day, note_file, source_of
from spotify_platform.core.staging.quarantine import (
    contract_reasons,
    day_quarantine,
    quarantine_records,
)


def stage_days(
    batches_by_day: dict[dt.date, dict[str, RawBatch]], *, key: bytes
) -> dict[dt.date, StagedDay]:
    """Stage several small days at once, each with the outcome `stage_day` gives it.

    For days whose records together fit in memory comfortably.
    """
    results = {
        day: StagedDay(day=day, streams=pd.DataFrame(), quarantine=pd.DataFrame())
        for day in batches_by_day
    }
    rejected: dict[dt.date, list[pd.DataFrame]] = {day: [] for day in batches_by_day}
    parts: list[RawBatch] = []
    origins: list[tuple[str, dt.date]] = []
    for day, batches in batches_by_day.items():
        for source_file in sorted(batches):
            batch = batches[source_file]
            note_file(source_file, batch, day, rejected[day], results[day])
            results[day].raw_records += batch.rows + len(batch.bad_lines)
            if batch.rows:
                parts.append(batch)
                origins.append((source_file, day))
    by_day: dict[dt.date, tuple[pd.DataFrame, pa.Table, int]] = {}
    if parts:
        codes = np.repeat(np.arange(len(origins)), [batch.rows for batch in parts])
        raw = joined_records(parts)
        del parts
        sources = labelled(codes, [source_of(f) for f, _ in origins], raw.index)
        day_values = np.array([np.datetime64(d, "s") for _, d in origins])[codes]
        frame = canonicalise(
            raw, key=key, source=sources, day=pd.Series(day_values, index=raw.index)
        )
        reasons = frame.pop("_reason").copy()
        typed = reasons.isna()
        failed = contract_reasons(frame[typed])
        if len(failed):
            reasons.loc[failed.index] = failed
        bad = reasons.notna()
        for code in np.unique(codes[bad.to_numpy()]):
            rows = frame.index[bad.to_numpy() & (codes == code)]
            source_file, day = origins[code]
            rejected[day].append(
                quarantine_records(raw, rows, reasons, frame["account_id"], source_file, day)
            )
        good = frame[~bad.to_numpy()][STAGING_COLUMNS]
        del frame, raw
        by_day = _split_days(good, results)
        del good
    for day, result in results.items():
        if day in by_day:
            result.streams, result.table, result.duplicates = by_day.pop(day)
            result.quarantine = day_quarantine(rejected[day], day)
        else:
            finish_day(result, [], rejected[day])
    return results


def joined_records(parts: list[RawBatch]) -> pd.DataFrame:
    """The records of several files in one frame, in order. Files Arrow parsed are joined as
    Arrow and converted once (a conversion per file cost more than the parse of a small
    day); when one was not, or their extra fields' types clash, each is converted alone."""
    if all(batch.frame is None for batch in parts):
        try:
            table = pa.concat_tables([batch.table for batch in parts], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        else:
            for batch in parts:
                batch.table = None
            return arrow_records(table)
    with warnings.catch_warnings():
        # Files without a field have it all null; how pandas types such a column in a
        # concat is changing, and canonicalise reads either typing the same.
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat([batch.records for batch in parts], ignore_index=True)


def _split_days(
    good: pd.DataFrame, results: dict[dt.date, StagedDay]
) -> dict[dt.date, tuple[pd.DataFrame, pa.Table, int]]:
    """Per day: its rows without duplicates in event id order (as `finish_day` leaves them),
    the same rows as Arrow, and the duplicates removed. The rows of all days are
    de-duplicated, sorted and converted at once, and each day is a slice: the fixed cost of
    doing that per day was most of a history run's staging."""
    stamps, day_codes = np.unique(good["dt"].to_numpy(), return_inverse=True)
    ids = large_strings(good["event_id"])
    id_codes = pc.dictionary_encode(ids).indices.to_numpy(zero_copy_only=False)
    pairs = day_codes.astype(np.int64) * (int(id_codes.max(initial=0)) + 1) + id_codes
    keep = np.zeros(len(pairs), dtype=bool)
    keep[np.unique(pairs, return_index=True)[1]] = True
    rank = np.empty(len(ids), dtype=np.int64)
    rank[text_order(ids)] = np.arange(len(ids))
    order = np.lexsort((rank, day_codes))
    order = order[keep[order]]
    rows = pd.DataFrame(
        {name: good[name].array.take(order) for name in STAGING_COLUMNS}, copy=False
    )
    table = pa.Table.from_pandas(rows, preserve_index=False)
    bounds = np.searchsorted(day_codes[order], np.arange(len(stamps) + 1))
    repeated = np.bincount(day_codes[~keep], minlength=len(stamps))
    parts = {}
    for code, stamp in enumerate(stamps):
        day = pd.Timestamp(stamp).date()
        if day not in results:
            continue
        start, end = int(bounds[code]), int(bounds[code + 1])
        part = rows.iloc[start:end]
        part.index = pd.RangeIndex(end - start)  # as reset_index would, without its copy
        parts[day] = (part, table.slice(start, end - start), int(repeated[code]))
    return parts
