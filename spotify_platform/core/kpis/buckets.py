"""A big day's aggregate rows computed a bucket of keys at a time, equal to the whole day's.

Each aggregate groups plays by keys that include an account, an artist or a track, and a
group's row depends on that group's plays alone (sums, distinct listeners, the latest name,
sessions in time order). So a big day's plays are split by a hash of that key into buckets,
chunk by chunk as they are read, in Arrow IPC files of a temporary folder; each bucket then
goes through the same function as a whole day would, and yields exactly the whole day's rows
of its keys. Memory is bounded by a bucket, not by the day.
"""

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spotify_platform.core.lake.store import arrow_frame

# Odd 64-bit constants (a polynomial hash's multiplier, then a finalizer spreading its bits);
# products wrap around modulo 2**64 as numpy's unsigned integers do.
MULTIPLIER = np.uint64(0x100000001B3)
MIX = np.uint64(0xBF58476D1CE4E5B9)
SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
# The identity each aggregate table groups by, whose buckets hold whole groups.
SPLIT_BY = {
    "agg_account_daily": "account_id",
    "agg_artist_daily": "artist_id",
    "agg_track_daily": "track_id",
    "agg_account_hourly": "account_id",
    "agg_account_segment_daily": "account_id",
    "agg_account_sessions": "account_id",
}


def text_hashes(text: pa.Array) -> np.ndarray:
    """A 64-bit hash of each value of a string array without nulls, from its bytes alone (the
    same text hashes the same in every chunk and process)."""
    text = text.cast(pa.large_string())
    count = len(text)
    offsets = np.frombuffer(
        text.buffers()[1], dtype=np.int64, count=count + 1, offset=text.offset * 8
    )
    lengths = np.diff(offsets)
    first, last = int(offsets[0]), int(offsets[-1])
    hashes = lengths.astype(np.uint64)
    if last > first:
        data = np.frombuffer(text.buffers()[2], dtype=np.uint8)[first:last].astype(np.uint64)
        position = np.arange(last - first) - np.repeat(offsets[:-1] - first, lengths)
        powers = np.cumprod(np.full(int(lengths.max()), MULTIPLIER, dtype=np.uint64))
        filled = np.flatnonzero(lengths)
        starts = (offsets[:-1] - first)[filled]
        hashes[filled] += np.add.reduceat(data * powers[position], starts)
    hashes ^= hashes >> np.uint64(31)
    hashes *= MIX
    hashes ^= hashes >> np.uint64(29)
    return hashes


def bucket_codes(values: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """Each value's bucket in [0, buckets): a hash of its text, the same in every chunk; a
    missing value goes to bucket 0. Hashes the chunk's distinct values only."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    codes = text_hashes(encoded.dictionary) % np.uint64(buckets)
    codes = np.append(codes.astype(np.int64), 0)
    indices = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
    return codes[indices]


@contextmanager
def spilled(tables: Iterable[pa.Table], key: str, buckets: int) -> Iterator[list[Path]]:
    """The rows of `tables` split into `buckets` files by `key` (`bucket_codes`), each in the
    order the rows came; the files exist until the block ends."""
    with tempfile.TemporaryDirectory(prefix="buckets.") as folder:
        paths = [Path(folder) / f"{i}.arrow" for i in range(buckets)]
        with ExitStack() as open_files:
            writers: list[pa.ipc.RecordBatchFileWriter] = []
            for table in tables:
                if not writers:
                    writers = [
                        open_files.enter_context(
                            pa.ipc.new_file(str(path), table.schema, options=SPILL_OPTIONS)
                        )
                        for path in paths
                    ]
                codes = bucket_codes(table[key], buckets)
                ordered = table.take(np.argsort(codes, kind="stable"))
                bounds = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=buckets))))
                for i, writer in enumerate(writers):
                    if bounds[i + 1] > bounds[i]:
                        writer.write_table(ordered.slice(bounds[i], bounds[i + 1] - bounds[i]))
        yield [path for path in paths if path.exists()]


def bucket_frames(paths: Iterable[Path]) -> Iterator[pd.DataFrame]:
    """Each non-empty bucket's rows as a frame with text in Arrow, as a whole day's are."""
    for path in paths:
        with pa.OSFile(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        if table.num_rows:
            yield arrow_frame(table, arrow_strings=True, consume=True)


def bucketed(
    build: Callable[[pd.DataFrame], pd.DataFrame], paths: Iterable[Path]
) -> Iterator[pd.DataFrame]:
    """`build` of each bucket's rows: together, the rows `build` makes of the whole day."""
    for frame in bucket_frames(paths):
        yield build(frame)
