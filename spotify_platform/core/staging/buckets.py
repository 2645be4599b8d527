"""A big day staged in buckets of event ids, in memory that does not grow with the day.

`stage_day` holds a day's raw records and canonical rows whole to de-duplicate and sort them,
so its memory grows with the day (2.1 GiB at 3M plays). Here each raw file is read in blocks
of lines, each block is typed and checked as `stage_day` types a slice, and its rows are
spilled to local files by the leading hex digits of their event id. Duplicates share an id,
so they share a bucket; each bucket is then de-duplicated (first arrival kept), sorted and
appended to the day's Parquet file, and buckets in prefix order give the whole day in event
id order. Memory holds a block or a bucket, never the day (peak RSS 0.55-0.6 GiB at 1M, 3M
and 10M plays). The files written are those `stage_day` gives.
"""

import contextlib
import datetime as dt
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from isal import isal_zlib

from spotify_platform.core.lake.layout import staging_key
from spotify_platform.core.lake.store import PARQUET_ROW_GROUP_ROWS, ZSTD_FROM_ROWS, LakeStore
from spotify_platform.core.sources.identity import text_order
from spotify_platform.core.sources.raw import CORE_FIELDS, parse_block, text_blocks
from spotify_platform.core.staging import one_day
from spotify_platform.core.staging.canonical import STAGING_COLUMNS
from spotify_platform.core.staging.one_day import FileRows, StagedDay, empty_candidates, source_of
from spotify_platform.core.staging.quarantine import bad_line_records, day_quarantine

# Raw text per block: about 70k of the simulator's records.
BLOCK_BYTES = 48 << 20
# Raw gzip per bucket: about 350k of the simulator's records, a few hundred MiB as Arrow.
BUCKET_RAW_BYTES = 32 << 20
# Buckets split the values of an id's first three hex digits.
PREFIX_VALUES = 16**3
# Pseudonyms remembered across blocks (a cache: a day with more accounts starts it again).
PSEUDONYM_MEMO = 500_000
_HEX_VALUES = np.zeros(256, dtype=np.int64)
_HEX_VALUES[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16)


def stage_day_in_buckets(
    lake: LakeStore,
    key: bytes,
    day: dt.date,
    raw_keys: list[str],
    *,
    block_bytes: int = BLOCK_BYTES,
    buckets: int | None = None,
) -> StagedDay:
    """Stage a day's raw files as `stage_day` does, writing its rows to the lake as they are
    staged: the result has their count (`written_rows`), its quarantine and stats.

    `buckets` defaults to one per BUCKET_RAW_BYTES of the day's raw files.
    """
    if buckets is None:
        raw_bytes = sum(lake.size(k) for k in raw_keys)
        buckets = min(PREFIX_VALUES, max(1, math.ceil(raw_bytes / BUCKET_RAW_BYTES)))
    result = StagedDay(day=day, streams=pd.DataFrame(), quarantine=pd.DataFrame())
    rejected: list[pd.DataFrame] = []
    with tempfile.TemporaryDirectory(prefix="staging-buckets-") as scratch:
        spill = _Spill(Path(scratch), buckets)
        with spill:
            pseudonyms: dict[str, str] = {}
            for source_file in sorted(raw_keys):
                day_file = DayFile(lake, source_file, key, day, pseudonyms)
                day_file.stage(block_bytes, spill, rejected)
                day_file.note(result)
                result.raw_records += day_file.raw_records
        result.written_rows, result.duplicates = spill.write(lake, day)
    result.quarantine = day_quarantine(rejected, day)
    return result


class DayFile:
    """One raw file of the day, staged block by block; what it holds is noted as it goes."""

    def __init__(
        self, lake: LakeStore, source_file: str, key: bytes, day: dt.date, pseudonyms: dict
    ) -> None:
        self.lake, self.source_file, self.key, self.day = lake, source_file, key, day
        self.pseudonyms = pseudonyms
        self.raw_records = self.rows = 0
        self.block = -1
        self.unknown: set[str] = set()
        self.missing = set(CORE_FIELDS)

    def stage(
        self,
        block_bytes: int,
        spill: "_Spill",
        rejected: list[pd.DataFrame],
        share: tuple[int, int] = (0, 1),
    ) -> None:
        """Stage the file's blocks into `spill` and `rejected`. `share` (n, of) stages only
        every `of`-th block from the n-th (`block` numbers them): the Spark engine gives one
        file's blocks to several tasks, each reading the file and staging its share."""
        source = source_of(self.source_file)
        number, of = share
        with (
            self.lake.open(self.source_file) as stream,
            contextlib.closing(text_blocks(stream, block_bytes)) as blocks,
        ):
            self.block = -1
            while (block := self._next(blocks)) is not None:
                self.block += 1
                if self.block % of != number:
                    continue
                batch = parse_block(block[1], block[0], block[2])
                del block
                self.raw_records += batch.rows + len(batch.bad_lines)
                self.unknown.update(batch.unknown_fields)
                if batch.bad_lines:
                    rejected.append(bad_line_records(batch.bad_lines, self.source_file, self.day))
                if not batch.rows:
                    continue
                self.rows += batch.rows
                self.missing.intersection_update(batch.missing_fields)
                if len(self.pseudonyms) > PSEUDONYM_MEMO:
                    self.pseudonyms.clear()
                raw = batch.records.reset_index(drop=True)
                del batch
                rows = FileRows(raw, self.source_file, source, self.key, self.day, self.pseudonyms)
                for start in range(0, len(raw), one_day.STAGE_SLICE_ROWS):
                    frame, bad = rows.stage_slice(start)
                    spill.add(frame)
                    rejected.extend(bad)
                del rows, raw

    def _next(self, blocks) -> tuple[int, bytes, int] | None:
        """The file's next block; a file that cannot be read to its end fails the day, as
        `read_raw` fails it."""
        try:
            return next(blocks, None)
        except (OSError, EOFError, ValueError, isal_zlib.error) as exc:
            raise RuntimeError(
                f"raw file {self.lake.uri(self.source_file)} is unreadable as a whole: {exc}"
            ) from exc

    def note(self, result: StagedDay) -> None:
        """The file's drift and whether it had records, as `note_file` notes a whole file."""
        if self.unknown:
            result.unknown_fields[self.source_file] = sorted(self.unknown)
        if self.rows and self.missing:
            result.missing_fields[self.source_file] = sorted(self.missing)
        if self.rows:
            result.files.append(self.source_file)


class _Spill:
    """The day's canonical rows in local Arrow IPC files, one per bucket, in arrival order."""

    def __init__(self, folder: Path, buckets: int) -> None:
        self.folder, self.buckets = folder, buckets
        self.writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        self.schema: pa.Schema | None = None
        self.rows = 0

    def __enter__(self) -> "_Spill":
        return self

    def __exit__(self, *exc) -> None:
        for writer in self.writers.values():
            writer.close()

    def add(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame[STAGING_COLUMNS], preserve_index=False)
        if self.schema is None:
            self.schema = table.schema
        elif not table.schema.equals(self.schema, check_metadata=True):
            table = table.cast(self.schema)
        if not table.num_rows:
            return
        self.rows += table.num_rows
        codes = bucket_codes(table.column("event_id"), self.buckets)
        order = np.argsort(codes, kind="stable")
        table = table.take(pa.array(order))
        bounds = np.searchsorted(codes[order], np.arange(self.buckets + 1))
        for bucket in np.flatnonzero(np.diff(bounds)):
            start, end = int(bounds[bucket]), int(bounds[bucket + 1])
            self._writer(int(bucket)).write_table(table.slice(start, end - start))

    def _writer(self, bucket: int) -> pa.ipc.RecordBatchStreamWriter:
        if bucket not in self.writers:
            path = self.folder / f"bucket-{bucket:04d}.arrow"
            self.writers[bucket] = pa.ipc.new_stream(str(path), self.schema)
        return self.writers[bucket]

    def write(self, lake: LakeStore, day: dt.date) -> tuple[int, int]:
        """Each bucket de-duplicated and sorted into the day's Parquet file, in prefix order;
        the rows written and the duplicates left out."""
        schema = self.schema
        if schema is None:
            schema = pa.Table.from_pandas(empty_candidates(), preserve_index=False).schema
        codec = "zstd" if self.rows >= ZSTD_FROM_ROWS else "snappy"
        written = 0
        with lake.written_file(staging_key(day), self.folder) as path:
            with pq.ParquetWriter(str(path), schema, compression=codec) as writer:
                for bucket in sorted(self.writers):
                    rows = _first_in_id_order(self._read(bucket))
                    writer.write_table(rows, row_group_size=PARQUET_ROW_GROUP_ROWS)
                    written += rows.num_rows
                    del rows
                if not written:
                    writer.write_table(schema.empty_table())
        return written, self.rows - written

    def _read(self, bucket: int) -> pa.Table:
        path = self.folder / f"bucket-{bucket:04d}.arrow"
        with pa.ipc.open_stream(str(path)) as reader:
            table = reader.read_all()
        path.unlink()
        return table


def bucket_codes(ids: pa.ChunkedArray | pa.Array, buckets: int) -> np.ndarray:
    """Each id's bucket of `buckets`, from its first three hex digits: in prefix order, so
    bucket by bucket the ids ascend. Ids are lower-case hex of one width (`event_ids`), which
    the contract checks before rows are spilled."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    ids = pc.cast(ids, pa.large_string())
    offsets = np.frombuffer(
        ids.buffers()[1], dtype=np.int64, count=len(ids) + 1, offset=ids.offset * 8
    )
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)
    starts = offsets[:-1]
    prefix = (
        _HEX_VALUES[data[starts]] * 256
        + _HEX_VALUES[data[starts + 1]] * 16
        + _HEX_VALUES[data[starts + 2]]
    )
    return prefix * buckets // PREFIX_VALUES


def _first_in_id_order(table: pa.Table) -> pa.Table:
    """The first row of each event id, in event id order (as `finish_day` keeps them).

    `text_order` is stable, so a repeated id's rows follow one another in arrival order and
    the first of each run is the one kept."""
    if not table.num_rows:
        return table
    ids = pc.cast(table.column("event_id").combine_chunks(), pa.large_string())
    order = text_order(ids)
    ordered = ids.take(pa.array(order))
    repeated = pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
    keep = np.concatenate(([True], ~repeated.to_numpy(zero_copy_only=False)))
    return table.take(pa.array(order[keep]))
