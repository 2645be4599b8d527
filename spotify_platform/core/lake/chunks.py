"""Staged days in batches whose memory is bounded: small days joined, a big day in chunks.

Consecutive small days go several to a batch (one frame, so years of small days are a few
loads); a day with more than `chunk_rows` staged rows is a batch of its own, whose rows come
as Arrow tables of at most `chunk_rows`, read row group by row group from its Parquet file.
Nothing downstream of staging then holds a big day whole.
"""

import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from spotify_platform.core.lake.layout import staging_key
from spotify_platform.core.lake.staged import joined_frame, staged_sizes, staged_tables
from spotify_platform.core.lake.store import LakeStore, arrow_frame

CHUNK_ROWS = 262_144
# Parquet never stores a staged row in fewer bytes than this: a smaller file cannot hold more
# than `chunk_rows` rows, and its footer need not be read to know it is small.
MIN_BYTES_PER_ROW = 8


@dataclass(frozen=True)
class StagedBatch:
    """Days loaded together, their staged row count, and their rows as Arrow tables.

    `tables` may be called again (a retried transaction reads the batch again); `chunked`
    says whether those tables are chunks of one big day rather than the batch's days whole.
    """

    days: list[dt.date]
    rows: int
    tables: Callable[[], Iterator[pa.Table]]
    chunked: bool = False

    def frames(self) -> Iterator[pd.DataFrame]:
        """The rows as frames with text in Arrow: one for joined days, one per chunk."""
        if not self.chunked:
            frame = joined_frame(list(self.tables()))
            if frame is not None and len(frame):
                yield frame
            return
        for table in self.tables():
            yield arrow_frame(table, arrow_strings=True, consume=True)

    def buckets(self, chunk_rows: int) -> int:
        """How many buckets of about `chunk_rows` rows the batch's rows make."""
        return max(1, math.ceil(self.rows / max(chunk_rows, 1)))


def day_chunks(
    lake: LakeStore, day: dt.date, columns: list[str] | None, chunk_rows: int
) -> Iterator[pa.Table]:
    """A staged day's columns, `chunk_rows` rows at a time in file order."""
    with lake.parquet_file(staging_key(day)) as handle:
        for batch in handle.iter_batches(batch_size=chunk_rows, columns=columns):
            yield pa.Table.from_batches([batch])


def staged_rows(lake: LakeStore, day: dt.date) -> int:
    """A staged day's row count, from its Parquet footer alone."""
    with lake.parquet_file(staging_key(day)) as handle:
        return handle.metadata.num_rows


def big_days(lake: LakeStore, sizes: dict[dt.date, int], chunk_rows: int) -> dict[dt.date, int]:
    """The days of `sizes` (staged file sizes) with more than `chunk_rows` rows, and their
    row counts; only files big enough to hold that many rows have their footer read."""
    found = {}
    for day, size in sizes.items():
        if size >= chunk_rows * MIN_BYTES_PER_ROW:
            rows = staged_rows(lake, day)
            if rows > chunk_rows:
                found[day] = rows
    return found


def staged_batches(
    lake: LakeStore,
    days: list[dt.date],
    columns: list[str] | None,
    batch_rows: int,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[StagedBatch]:
    """Every one of `days` in order, in batches: consecutive small days until they hold
    `batch_rows` rows (a batch of days without staged rows has none), each big day alone
    and in chunks of `chunk_rows`."""
    big = big_days(lake, staged_sizes(lake, days), chunk_rows)
    small: list[dt.date] = []
    for day in days:
        if day not in big:
            small.append(day)
            continue
        yield from _joined_batches(lake, small, columns, batch_rows)
        small = []
        yield StagedBatch(
            [day],
            big[day],
            lambda day=day: day_chunks(lake, day, columns, chunk_rows),
            chunked=True,
        )
    yield from _joined_batches(lake, small, columns, batch_rows)


def _joined_batches(
    lake: LakeStore, days: list[dt.date], columns: list[str] | None, batch_rows: int
) -> Iterator[StagedBatch]:
    """Consecutive small days' staged tables put together until there are `batch_rows` rows."""
    if days:
        yield from joined_batches(staged_tables(lake, days, columns), batch_rows)


def joined_batches(
    tables: Iterable[tuple[dt.date, pa.Table | None]], batch_rows: int
) -> Iterator[StagedBatch]:
    """Consecutive days' tables (None for a day without rows) put together until there are
    `batch_rows` rows; every day is in a batch."""
    batch: list[dt.date] = []
    parts: list[pa.Table] = []
    weight = 0
    for day, table in tables:
        batch.append(day)
        if table is not None:
            parts.append(table)
            weight += table.num_rows
        if weight >= batch_rows:
            yield StagedBatch(batch, weight, lambda parts=parts: iter(parts))
            batch, parts, weight = [], [], 0
    if batch:
        yield StagedBatch(batch, weight, lambda parts=parts: iter(parts))


def day_totals(
    lake: LakeStore, days: list[dt.date], column: str, chunk_rows: int = CHUNK_ROWS
) -> dict[dt.date, tuple[int, int]]:
    """Each staged day's row count and sum of `column`, by its `dt`, a chunk at a time (days
    without staged rows are left out)."""
    totals: dict[dt.date, tuple[int, int]] = {}
    for batch in staged_batches(lake, days, ["dt", column], 1, chunk_rows):
        for table in batch.tables():
            grouped = table.group_by("dt").aggregate([([], "count_all"), (column, "sum")])
            for day, rows, total in zip(
                grouped["dt"].to_pylist(),
                grouped["count_all"].to_pylist(),
                grouped[f"{column}_sum"].to_pylist(),
                strict=True,
            ):
                day = pd.Timestamp(day).date()
                before = totals.get(day, (0, 0))
                totals[day] = (before[0] + rows, before[1] + (total or 0))
    return totals


def key_counts(
    lake: LakeStore, days: list[dt.date], columns: list[str], chunk_rows: int = CHUNK_ROWS
) -> dict[str, pa.Table]:
    """For each staged column, its distinct non-null values over the days (`value`) and the
    rows holding each (`rows`). Read as stored, dictionary-encoded, `chunk_rows` rows at a
    time: a day's keys are far fewer than its rows, and are counted by their codes."""
    parts: dict[str, list[pa.Table]] = {column: [] for column in columns}
    for day in sorted(staged_sizes(lake, days)):
        with lake.parquet_file(staging_key(day), read_dictionary=columns) as handle:
            for batch in handle.iter_batches(batch_size=chunk_rows, columns=columns):
                for column in columns:
                    parts[column].append(_code_counts(batch.column(column)))
    return {column: _summed_counts(tables) for column, tables in parts.items()}


def _code_counts(values: pa.DictionaryArray) -> pa.Table:
    codes = values.indices.drop_null().to_numpy()
    counts = np.bincount(codes, minlength=len(values.dictionary))
    used = np.flatnonzero(counts)
    return pa.table({"value": values.dictionary.take(used), "rows": counts[used]})


def _summed_counts(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return pa.table({"value": pa.array([], pa.string()), "rows": pa.array([], pa.int64())})
    merged = pa.concat_tables(tables, promote_options="permissive")
    merged = merged.group_by("value").aggregate([("rows", "sum")])
    return pa.table({"value": merged["value"], "rows": merged["rows_sum"]})


def no_fact_rows(days: list[dt.date]) -> Iterator[StagedBatch]:
    """The days as one batch without rows: loading it empties them (`WAREHOUSE_FACT_STREAMS=
    skip`, where the staged Parquet in the lake is the fact table)."""
    if days:
        yield StagedBatch(list(days), 0, lambda: iter([]))
