"""What the Spark engine's tasks run: the pandas engine's own staging and aggregate code, on
the part of the data each task is given.

A task stages a raw file, or a share of its blocks, with `buckets.DayFile` (the code the
pandas engine stages a big day with), so every row is typed, pseudonymised and checked by the
same functions; the day's de-duplication and order are Spark's (`engine`), and the files
written are built here from the same frames the pandas engine writes. Nothing here imports
pyspark: tasks see Arrow batches.
"""

import contextlib
import datetime as dt
import io
import pickle
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spotify_platform.core.kpis import aggregates
from spotify_platform.core.kpis.buckets import SPLIT_BY, STAGED_COLUMNS
from spotify_platform.core.lake.layout import aggregate_part_key, staging_key
from spotify_platform.core.lake.store import (
    PARQUET_ROW_GROUP_ROWS,
    ZSTD_FROM_ROWS,
    Lake,
    arrow_frame,
    dictionary_columns,
    parquet_bytes,
)
from spotify_platform.core.staging.buckets import DayFile
from spotify_platform.core.staging.canonical import STAGING_COLUMNS
from spotify_platform.core.staging.one_day import StagedDay, empty_candidates

# Instants travel through Spark as int64 nanoseconds: Spark's timestamps are microseconds in
# a session time zone, and the staged files hold nanoseconds in UTC.
INSTANTS = ("ended_at", "started_at")
_ORDER = [("_day", pa.string()), ("_rank", pa.int32()), ("_seq", pa.int64())]
_NOTE = ("_note", pa.binary())

# The per-day aggregates the engine writes to the lake: the staged columns each is built from
# (those the warehouse asset reads), its builder, and the key it splits a day by.
AGGREGATES = {
    table: (STAGED_COLUMNS[table], build, SPLIT_BY[table])
    for table, build in (
        ("agg_account_daily", aggregates.account_daily),
        ("agg_artist_daily", aggregates.artist_daily),
        ("agg_track_daily", aggregates.track_daily),
        ("agg_account_hourly", aggregates.account_hourly),
    )
}


def _staged_types() -> dict[str, pa.DataType]:
    """The staged columns as Spark carries them (dt is the `_day` text instead)."""
    table = pa.Table.from_pandas(empty_candidates(), preserve_index=False)
    types = {}
    for name in STAGING_COLUMNS:
        kind = table.schema.field(name).type
        if name in INSTANTS:
            kind = pa.int64()
        elif pa.types.is_large_string(kind) or pa.types.is_string(kind):
            kind = pa.string()
        if name != "dt":
            types[name] = kind
    return types


STAGED_TYPES = _staged_types()
CANDIDATES = pa.schema([*_ORDER, *STAGED_TYPES.items(), _NOTE])


def spark_ddl(schema: pa.Schema) -> str:
    """A Spark DDL schema for an Arrow schema of the types used here."""
    names = {
        pa.string(): "string",
        pa.int64(): "bigint",
        pa.int32(): "int",
        pa.int8(): "tinyint",
        pa.bool_(): "boolean",
        pa.binary(): "binary",
    }
    return ", ".join(f"`{field.name}` {names[field.type]}" for field in schema)


class _Collected:
    """Where `DayFile` puts a file's canonical rows: kept as Arrow in Spark's types, each
    numbered in arrival order (`_seq`: the block, then the row's place in it) for the day's
    keep-first de-duplication."""

    def __init__(self, day: dt.date, rank: int, day_file: DayFile) -> None:
        self.day, self.rank, self.day_file, self.rows = day.isoformat(), rank, day_file, 0
        self.batches: list[pa.RecordBatch] = []

    def add(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        table = pa.Table.from_pandas(frame[STAGING_COLUMNS], preserve_index=False)
        n = table.num_rows
        places = frame.index.to_numpy().astype(np.int64)
        columns = {
            "_day": pa.array([self.day] * n, pa.string()),
            "_rank": pa.array(np.full(n, self.rank, np.int32)),
            "_seq": pa.array((np.int64(self.day_file.block) << 32) + places),
        }
        for name, kind in STAGED_TYPES.items():
            column = table.column(name)
            if name in INSTANTS:
                column = pc.cast(column, pa.timestamp("ns", tz="UTC")).cast(pa.int64())
            columns[name] = column.cast(kind)
        columns["_note"] = pa.nulls(n, pa.binary())
        self.rows += n
        self.batches.extend(pa.table(columns, schema=CANDIDATES).to_batches())


def stage_files(
    tasks: Iterable[pa.RecordBatch], lake: dict, key: bytes, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    """Stage the share of a raw file each task row names (`_day`, `_rank`, `key`, `_share`,
    `_shares`): its canonical rows, then one note row whose `_note` holds the share's
    quarantine and what it held (`notes_of_file` joins a file's shares)."""
    store = Lake(**lake)
    for batch in tasks:
        for task in batch.to_pylist():
            day = dt.date.fromisoformat(task["_day"])
            share = (task["_share"], task["_shares"])
            yield from _stage_share(store, key, day, task["key"], task["_rank"], share, block_bytes)


def _stage_share(
    lake: Lake,
    key: bytes,
    day: dt.date,
    source_file: str,
    rank: int,
    share: tuple[int, int],
    block_bytes: int,
) -> Iterator[pa.RecordBatch]:
    rejected: list[pd.DataFrame] = []
    day_file = DayFile(lake, source_file, key, day)
    collected = _Collected(day, rank, day_file)
    day_file.stage(block_bytes, collected, rejected, share)
    yield from collected.batches
    note = {
        "file": source_file,
        "raw_records": day_file.raw_records,
        "rows": day_file.rows,
        "candidates": collected.rows,
        "unknown": sorted(day_file.unknown),
        "missing": sorted(day_file.missing),
        "rejected": rejected,
    }
    columns = {name: pa.nulls(1, kind) for name, kind in STAGED_TYPES.items()}
    yield pa.record_batch(
        {
            "_day": pa.array([day.isoformat()]),
            "_rank": pa.array([rank], pa.int32()),
            "_seq": pa.array([share[0]], pa.int64()),
            **columns,
            "_note": pa.array([pickle.dumps(note)], pa.binary()),
        },
        schema=CANDIDATES,
    )


def note_file(shares: list[dict], staged: StagedDay) -> None:
    """A file's shares noted on its day as `DayFile.note` notes a whole file: fields unknown
    in any block, fields missing from every block with records, whether it had records."""
    source_file = shares[0]["file"]
    rows = sum(share["rows"] for share in shares)
    unknown = set().union(*(share["unknown"] for share in shares))
    with_rows = [set(share["missing"]) for share in shares if share["rows"]]
    missing = set.intersection(*with_rows) if with_rows else set()
    if unknown:
        staged.unknown_fields[source_file] = sorted(unknown)
    if rows and missing:
        staged.missing_fields[source_file] = sorted(missing)
    if rows:
        staged.files.append(source_file)


def staged_frame(table: pa.Table, day: dt.date) -> pd.DataFrame:
    """Rows as Spark carries them, back in the staged frame's dtypes (those the pandas engine
    writes: `empty_candidates`), dt that of a day staged alone. Columns Spark did not carry
    are left out."""
    wanted = empty_candidates().dtypes
    columns = {}
    for name in STAGING_COLUMNS:
        if name != "dt" and name not in table.column_names:
            continue
        if name == "dt":
            columns[name] = pd.Timestamp(day)
            continue
        column = table.column(name)
        if name in INSTANTS:
            column = column.cast(pa.timestamp("ns", tz="UTC"))
        elif pa.types.is_string(column.type):
            column = column.cast(pa.large_string())
        series = column.to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow")}.get)
        columns[name] = series.astype(wanted[name])
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


def _day_runs(table: pa.Table) -> Iterator[tuple[dt.date, pa.Table]]:
    """A table sorted by `_day` as runs of one day's rows."""
    days = table.column("_day").to_numpy(zero_copy_only=False)
    cuts = np.flatnonzero(days[1:] != days[:-1]) + 1
    for start, end in zip([0, *cuts], [*cuts, len(days)], strict=True):
        yield dt.date.fromisoformat(days[start]), table.slice(start, end - start)


def _by_day(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[dt.date, list[pa.Table]]]:
    """A partition sorted by `_day` as each day's rows, whole (a builder needs them so)."""
    current: dt.date | None = None
    pending: list[pa.Table] = []
    for batch in batches:
        for day, part in _day_runs(pa.Table.from_batches([batch])):
            if current is not None and day != current:
                yield current, pending
                pending = []
            current = day
            pending.append(part)
    if current is not None:
        yield current, pending


class _DayFileWriter:
    """A day's staged Parquet file written part by part, put in place when closed whole."""

    def __init__(self, store: Lake, day: dt.date, rows: int) -> None:
        self.day, self.written, self.last = day, 0, None
        self.codec = "zstd" if rows >= ZSTD_FROM_ROWS else "snappy"
        self.stack = contextlib.ExitStack()
        self.path = self.stack.enter_context(store.written_file(staging_key(day)))
        self.writer: pq.ParquetWriter | None = None

    def add(self, table: pa.Table) -> None:
        table, self.last = _first_of_each_id(table, self.last)
        rows = pa.Table.from_pandas(staged_frame(table, self.day), preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(
                str(self.path),
                rows.schema,
                compression=self.codec,
                use_dictionary=dictionary_columns(rows.schema),
            )
        self.writer.write_table(rows.cast(self.writer.schema), PARQUET_ROW_GROUP_ROWS)
        self.written += rows.num_rows

    def close(self) -> pa.RecordBatch:
        if self.writer is not None:
            self.writer.close()
        self.stack.close()
        day = [self.day.isoformat()]
        return pa.record_batch({"day": day, "rows": pa.array([self.written], pa.int64())})

    def abort(self, error: BaseException) -> None:
        """Leave the day's file as it was: the part written goes."""
        if self.writer is not None:
            self.writer.close()
        self.stack.__exit__(type(error), error, error.__traceback__)


def write_days(
    batches: Iterable[pa.RecordBatch], lake: dict, day_rows: dict[str, int]
) -> Iterator[pa.RecordBatch]:
    """Write each day of a partition sorted by day, event id and arrival to its staged Parquet
    file as its rows stream by (never a day whole in memory), keeping the first row of each
    id (as `finish_day` keeps it); one (day, rows) row per day written."""
    store = Lake(**lake)
    writer: _DayFileWriter | None = None
    try:
        for batch in batches:
            for day, part in _day_runs(pa.Table.from_batches([batch])):
                if writer is not None and writer.day != day:
                    yield writer.close()
                    writer = None
                if writer is None:
                    writer = _DayFileWriter(store, day, day_rows[day.isoformat()])
                writer.add(part)
    except BaseException as error:
        if writer is not None:
            writer.abort(error)
        raise
    if writer is not None:
        yield writer.close()


def _first_of_each_id(table: pa.Table, last: str | None) -> tuple[pa.Table, str | None]:
    """Rows sorted by id then arrival without those repeating the id before them (`last`: the
    id that ended the previous part); and the id this part ends with."""
    if not table.num_rows:
        return table, last
    ids = table.column("event_id").combine_chunks()
    previous = pa.concat_arrays([pa.array([last], ids.type), ids.slice(0, len(ids) - 1)])
    repeated = pc.fill_null(pc.equal(ids, previous), False)
    return table.filter(pc.invert(repeated)), ids[-1].as_py()


def build_aggregate_parts(
    batches: Iterable[pa.RecordBatch], lake: dict, table: str, part: int
) -> Iterator[pa.RecordBatch]:
    """The aggregate `table` of each day's rows in a partition that holds all the rows of its
    split keys, built by the pandas engine's builder on the frame the warehouse asset would
    read (a Parquet round trip of the staged rows), written as the day's part `part`."""
    store = Lake(**lake)
    columns, build, _ = AGGREGATES[table]
    for day, tables in _by_day(batches):
        frame = staged_frame(pa.concat_tables(tables), day)
        read = pq.read_table(io.BytesIO(parquet_bytes(frame)), columns=columns)
        built = build(arrow_frame(read, arrow_strings=True))
        store.write_parquet(aggregate_part_key(table, day, part), built)
        yield pa.record_batch(
            {"day": [day.isoformat()], "rows": pa.array([len(built)], pa.int64())}
        )
