"""A big day staged in buckets of event ids, in memory that does not grow with the day.

`stage_day` holds a day's raw records and canonical rows whole to de-duplicate and sort them,
so its memory grows with the day (2.1 GiB at 3M plays). Here each raw file is read in blocks
of lines, each block is typed and checked as `stage_day` types a slice, and its rows are
spilled to local files by the leading hex digits of their event id. Duplicates share an id,
so they share a bucket; each bucket is then de-duplicated (first arrival kept), sorted and
appended to the day's Parquet file, and buckets in prefix order give the whole day in event
id order. Memory holds a block or a bucket, never the day (the staging step 0.6-0.7 GiB at
1M, 3M and 10M plays, its two block workers about 0.4 GiB of their own). The files written
are those `stage_day` gives.
"""

import contextlib
import datetime as dt
import gc
import math
import mmap
import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from isal import isal_zlib

from spotify_platform.core.lake.layout import staging_key
from spotify_platform.core.lake.store import (
    PARQUET_ROW_GROUP_ROWS,
    ZSTD_FROM_ROWS,
    LakeStore,
    dictionary_columns,
)
from spotify_platform.core.sources.identity import text_order
from spotify_platform.core.sources.raw import CORE_FIELDS, parse_block, text_blocks
from spotify_platform.core.staging import one_day
from spotify_platform.core.staging.canonical import STAGING_COLUMNS
from spotify_platform.core.staging.one_day import FileRows, StagedDay, empty_candidates, source_of
from spotify_platform.core.staging.quarantine import bad_line_records, day_quarantine

# Raw text per block: about 23k of the simulator's records. Each worker holds a block's
# records and frames (about 200 MiB at this size, 400 MiB at 48 MiB).
BLOCK_BYTES = 16 << 20
# Raw gzip per bucket: about 350k of the simulator's records, a few hundred MiB as Arrow.
BUCKET_RAW_BYTES = 32 << 20
# Buckets split the values of an id's first three hex digits.
PREFIX_VALUES = 16**3
# Pseudonyms remembered across blocks (a cache: a day with more accounts starts it again).
PSEUDONYM_MEMO = 500_000
# Processes typing and checking a big day's blocks (`STAGING_BLOCK_WORKERS`); the day's
# reading, inflating and final sort stay in the calling process.
BLOCK_WORKERS = int(os.environ.get("STAGING_BLOCK_WORKERS", min(2, os.cpu_count() or 1)))
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
    workers: int = BLOCK_WORKERS,
) -> StagedDay:
    """Stage a day's raw files as `stage_day` does, writing its rows to the lake as they are
    staged: the result has their count (`written_rows`), its quarantine and stats.

    `buckets` defaults to one per BUCKET_RAW_BYTES of the day's raw files. With `workers`
    above one, blocks are typed and checked in that many forked processes while this one
    inflates the next blocks.
    """
    if buckets is None:
        raw_bytes = sum(lake.size(k) for k in raw_keys)
        buckets = min(PREFIX_VALUES, max(1, math.ceil(raw_bytes / BUCKET_RAW_BYTES)))
    result = StagedDay(day=day, streams=pd.DataFrame(), quarantine=pd.DataFrame())
    rejected: list[pd.DataFrame] = []
    with tempfile.TemporaryDirectory(prefix="staging-buckets-") as scratch:
        spill = _Spill(Path(scratch), buckets)
        with _block_runner(workers, block_bytes) as run:
            for source_file in sorted(raw_keys):
                day_file = DayFile(lake, source_file, key, day)
                blocks = day_file.blocks(block_bytes)
                jobs = (
                    (spill.folder, buckets, key, day, source_file, block, seq)
                    for seq, block in enumerate(blocks, start=spill.blocks)
                )
                for staged in run(jobs):
                    day_file.add(staged, rejected)
                    spill.note(staged)
                spill.blocks += day_file.block_count
                day_file.note(result)
                result.raw_records += day_file.raw_records
        result.written_rows, result.duplicates = spill.write(lake, day)
    _MEMO.clear()
    result.quarantine = day_quarantine(rejected, day)
    return result


@dataclass
class _StagedBlock:
    """What staging one block left beside its rows: counts, drift and quarantine."""

    seq: int
    raw_records: int = 0
    rows: int = 0
    spilled: int = 0
    schema: pa.Schema | None = None
    unknown: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    rejected: list[pd.DataFrame] = field(default_factory=list)


@dataclass(frozen=True)
class _SharedText:
    """A block's text in one of the slots of memory the block workers share with this
    process (`_SLOTS`): they read it where it lies. Pickled through the pool's pipe, a day's
    text cost more CPU than its typing's fixed costs (a copy, a pickle and about a thousand
    pipe writes and reads per block)."""

    slot: int
    size: int

    def view(self) -> memoryview:
        return memoryview(_SLOTS[self.slot])[: self.size]


# The slots, mapped shared and anonymous before the workers are forked, so each inherits them.
_SLOTS: list[mmap.mmap] = []


def staged_slices(
    key: bytes,
    day: dt.date,
    source_file: str,
    block: tuple[int, bytes | memoryview, int],
    staged: _StagedBlock,
) -> Iterator[pd.DataFrame]:
    """Parse, type and check one block of a raw file as `stage_day` does a slice: its
    canonical rows slice by slice (indexed by their place in the block), what else it held
    noted in `staged`."""
    batch = parse_block(block[1], block[0], block[2])
    del block
    staged.raw_records = batch.rows + len(batch.bad_lines)
    staged.rows = batch.rows
    staged.unknown, staged.missing = set(batch.unknown_fields), set(batch.missing_fields)
    if batch.bad_lines:
        staged.rejected.append(bad_line_records(batch.bad_lines, source_file, day))
    if not batch.rows:
        return
    raw = batch.records.reset_index(drop=True)
    del batch
    rows = FileRows(raw, source_file, source_of(source_file), key, day, _pseudonyms(key))
    for start in range(0, len(raw), one_day.STAGE_SLICE_ROWS):
        frame, bad = rows.stage_slice(start)
        staged.rejected.extend(bad)
        yield frame


def _stage_block(
    folder: Path,
    buckets: int,
    key: bytes,
    day: dt.date,
    source_file: str,
    block: tuple[int, bytes | _SharedText, int],
    seq: int,
) -> _StagedBlock:
    """A block staged (`staged_slices`), its rows spilled to one piece per bucket, named by
    the block's place in the day."""
    if isinstance(block[1], _SharedText):
        block = (block[0], block[1].view(), block[2])
    staged = _StagedBlock(seq)
    for part, frame in enumerate(staged_slices(key, day, source_file, block, staged)):
        table = pa.Table.from_pandas(frame[STAGING_COLUMNS], preserve_index=False)
        staged.schema = staged.schema or table.schema
        staged.spilled += _spill_pieces(folder, buckets, seq, part, table)
    return staged


_MEMO: dict[bytes, dict[str, str]] = {}


def _pseudonyms(key: bytes) -> dict[str, str]:
    """This process's remembered pseudonyms under `key`: a cache, emptied when it is full."""
    memo = _MEMO.setdefault(key, {})
    if len(memo) > PSEUDONYM_MEMO:
        memo.clear()
    return memo


def _spill_pieces(folder: Path, buckets: int, seq: int, part: int, table: pa.Table) -> int:
    """A slice's rows in one Arrow file per bucket they fall in; the rows spilled."""
    if not table.num_rows:
        return 0
    codes = bucket_codes(table.column("event_id"), buckets)
    order = np.argsort(codes, kind="stable")
    table = table.take(pa.array(order))
    bounds = np.searchsorted(codes[order], np.arange(buckets + 1))
    for bucket in np.flatnonzero(np.diff(bounds)):
        lo, hi = int(bounds[bucket]), int(bounds[bucket + 1])
        path = folder / f"bucket-{int(bucket):04d}" / f"{seq:07d}-{part:04d}.arrow"
        path.parent.mkdir(exist_ok=True)
        with pa.ipc.new_stream(str(path), table.schema) as writer:
            writer.write_table(table.slice(lo, hi - lo))
    return table.num_rows


@contextlib.contextmanager
def _block_runner(
    workers: int, block_bytes: int
) -> Iterator[Callable[[Iterator[tuple]], Iterator[_StagedBlock]]]:
    """Runs `_stage_block` over jobs, yielding results in the jobs' order: here, or in
    `workers` forked processes with a few blocks queued ahead, each block's text in a slot
    of shared memory (`_SharedText`) that is written again only once its block is done."""
    if workers <= 1:
        yield lambda jobs: (_stage_block(*job) for job in jobs)
        return
    context = multiprocessing.get_context("fork")
    # Objects the collector does not walk stay shared with the workers, rather than copied
    # into each one as its collector touches them. A run may have frozen the heap already
    # (`settled_heap`): it thaws it when it ends.
    thaw = gc.get_freeze_count() == 0
    gc.freeze()
    # One slot per block in flight: the workers' and the one queued ahead. A block longer
    # than a slot (a line longer than a block) goes through the pipe.
    _SLOTS[:] = [mmap.mmap(-1, block_bytes) for _ in range(workers + 1)]
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:

            def run(jobs: Iterator[tuple]) -> Iterator[_StagedBlock]:
                queued: deque[tuple[Future, int | None]] = deque()
                free = deque(range(len(_SLOTS)))
                for job in jobs:
                    job, slot = _shared(job, free)
                    queued.append((pool.submit(_stage_block, *job), slot))
                    if len(queued) > workers:
                        yield _finished(queued.popleft(), free)
                while queued:
                    yield _finished(queued.popleft(), free)

            try:
                yield run
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        for slot in _SLOTS:
            slot.close()
        _SLOTS.clear()
        if thaw:
            gc.unfreeze()


def _shared(job: tuple, free: deque[int]) -> tuple[tuple, int | None]:
    """The job with its block's text copied into a free slot, and the slot (None when the
    text does not fit one)."""
    first_line, text, lines = job[5]
    if len(text) > len(_SLOTS[0]):
        return job, None
    slot = free.popleft()
    _SLOTS[slot][: len(text)] = text
    block = (first_line, _SharedText(slot, len(text)), lines)
    return (*job[:5], block, *job[6:]), slot


def _finished(queued: tuple[Future, int | None], free: deque[int]) -> _StagedBlock:
    future, slot = queued
    try:
        return future.result()
    except BrokenProcessPool:
        raise RuntimeError(
            "a worker process staging blocks of the day ended (out of memory?): "
            "set STAGING_BLOCK_WORKERS=1 and materialize the day again"
        ) from None
    finally:
        if slot is not None:
            free.append(slot)


class DayFile:
    """One raw file of the day, read block by block; what its blocks held is noted."""

    def __init__(self, lake: LakeStore, source_file: str, key: bytes, day: dt.date) -> None:
        self.lake, self.source_file, self.key, self.day = lake, source_file, key, day
        self.raw_records = self.rows = self.block_count = 0
        self.block = -1
        self.unknown: set[str] = set()
        self.missing = set(CORE_FIELDS)

    def stage(
        self, block_bytes: int, sink, rejected: list[pd.DataFrame], share: tuple[int, int] = (0, 1)
    ) -> None:
        """Stage the file's blocks here, each slice's rows to `sink.add` (`block` numbers
        the block they come from). `share` (n, of) stages every `of`-th block from the n-th
        only: the Spark engine gives one file's blocks to several tasks."""
        number, of = share
        for block in self.blocks(block_bytes):
            self.block = self.block_count - 1
            if self.block % of != number:
                continue
            staged = _StagedBlock(self.block)
            for frame in staged_slices(self.key, self.day, self.source_file, block, staged):
                sink.add(frame)
            del block
            self.add(staged, rejected)

    def blocks(self, block_bytes: int) -> Iterator[tuple[int, bytes, int]]:
        with (
            self.lake.open(self.source_file) as stream,
            contextlib.closing(text_blocks(stream, block_bytes)) as blocks,
        ):
            while (block := self._next(blocks)) is not None:
                self.block_count += 1
                yield block

    def _next(self, blocks) -> tuple[int, bytes, int] | None:
        """The file's next block; a file that cannot be read to its end fails the day, as
        `read_raw` fails it."""
        try:
            return next(blocks, None)
        except (OSError, EOFError, ValueError, isal_zlib.error) as exc:
            raise RuntimeError(
                f"raw file {self.lake.uri(self.source_file)} is unreadable as a whole: {exc}"
            ) from exc

    def add(self, staged: _StagedBlock, rejected: list[pd.DataFrame]) -> None:
        self.raw_records += staged.raw_records
        self.unknown |= staged.unknown
        rejected.extend(staged.rejected)
        if staged.rows:
            self.rows += staged.rows
            self.missing &= staged.missing

    def note(self, result: StagedDay) -> None:
        """The file's drift and whether it had records, as `note_file` notes a whole file."""
        if self.unknown:
            result.unknown_fields[self.source_file] = sorted(self.unknown)
        if self.rows and self.missing:
            result.missing_fields[self.source_file] = sorted(self.missing)
        if self.rows:
            result.files.append(self.source_file)


class _Spill:
    """The day's canonical rows in local Arrow IPC pieces, a folder per bucket, named in
    arrival order."""

    def __init__(self, folder: Path, buckets: int) -> None:
        self.folder, self.buckets = folder, buckets
        self.schema: pa.Schema | None = None
        self.rows = self.blocks = 0

    def note(self, staged: _StagedBlock) -> None:
        """A block's spilled rows, and the day's schema from the first block with rows."""
        self.rows += staged.spilled
        if self.schema is None and staged.schema is not None:
            self.schema = staged.schema

    def write(self, lake: LakeStore, day: dt.date) -> tuple[int, int]:
        """Each bucket de-duplicated and sorted into the day's Parquet file, in prefix order;
        the rows written and the duplicates left out.

        The next bucket is sorted in a thread while this one is encoded: both hold the GIL
        little (numpy's argsort, Arrow's take and Parquet encoding), and the block workers
        are done, so the day's last second and more is not one core's alone. Two buckets
        are held at once, never the day."""
        schema = self.schema
        if schema is None:
            schema = pa.Table.from_pandas(empty_candidates(), preserve_index=False).schema
        codec = "zstd" if self.rows >= ZSTD_FROM_ROWS else "snappy"
        written = 0
        buckets = sorted(self.folder.glob("bucket-*"))
        with (
            lake.written_file(staging_key(day), self.folder) as path,
            pq.ParquetWriter(
                str(path), schema, compression=codec, use_dictionary=dictionary_columns(schema)
            ) as writer,
            ThreadPoolExecutor(1, thread_name_prefix="bucket-sort") as pool,
        ):
            following = iter(buckets[1:])
            ahead = pool.submit(self._sorted, buckets[0], schema) if buckets else None
            while ahead is not None:
                rows = ahead.result()
                after = next(following, None)
                ahead = None if after is None else pool.submit(self._sorted, after, schema)
                writer.write_table(rows, row_group_size=PARQUET_ROW_GROUP_ROWS)
                written += rows.num_rows
                del rows
            if not written:
                writer.write_table(schema.empty_table())
        return written, self.rows - written

    @classmethod
    def _sorted(cls, bucket: Path, schema: pa.Schema) -> pa.Table:
        return _first_in_id_order(cls._read(bucket, schema))

    @staticmethod
    def _read(bucket: Path, schema: pa.Schema) -> pa.Table:
        """A bucket's pieces in arrival order (their names sort so), in the day's schema."""
        tables = []
        for path in sorted(bucket.iterdir()):
            with pa.ipc.open_stream(str(path)) as reader:
                table = reader.read_all()
            path.unlink()
            tables.append(table if table.schema.equals(schema) else table.cast(schema))
        bucket.rmdir()
        return pa.concat_tables(tables)


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
