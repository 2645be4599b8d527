"""A big day's aggregate rows computed a bucket of keys at a time, equal to the whole day's.

Each aggregate groups plays by keys that include an account, an artist or a track, and a
group's row depends on that group's plays alone (sums, distinct listeners, the latest name,
sessions in time order). So a big day's plays are split by that key into buckets, chunk by
chunk as they are read, in Arrow IPC files of a temporary folder; each bucket then goes
through the same function as a whole day would, and yields exactly the whole day's rows of
its keys. Memory is bounded by a bucket, not by the day.

Buckets are ranges of the key in code point order (the warehouse's binary collation), cut at
quantiles of the first chunk: staged rows come in event id order, unrelated to the key, so
that chunk is a fair sample of the day and the buckets come out about even. Each bucket's
rows are in key order, and the buckets follow each other in it, so the day's rows reach
InnoDB in primary key order, as one load's would.
"""

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spotify_platform.core.kpis.aggregates import HOURLY_KEYS
from spotify_platform.core.lake.store import arrow_frame

SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
# The staged columns each aggregate table is built from (by either engine).
STAGED_COLUMNS = {
    "agg_account_daily": [
        "dt",
        "account_id",
        "content_type",
        "skipped",
        "is_stream",
        "ms_played",
        "country",
    ],
    "agg_artist_daily": [
        "dt",
        "account_id",
        "is_stream",
        "ms_played",
        "ended_at",
        "artist_id",
        "artist_name",
    ],
    "agg_track_daily": [
        "dt",
        "account_id",
        "is_stream",
        "ms_played",
        "ended_at",
        "track_id",
        "track_name",
        "artist_name",
    ],
    "agg_account_hourly": [*HOURLY_KEYS, "is_stream", "ms_played"],
    "agg_account_segment_daily": ["dt", "account_id", "country", "platform", "is_stream"],
    "agg_account_sessions": ["dt", "account_id", "started_at", "ended_at", "ms_played"],
}
# The identity each aggregate table groups by, whose buckets hold whole groups.
SPLIT_BY = {
    "agg_account_daily": "account_id",
    "agg_artist_daily": "artist_id",
    "agg_track_daily": "track_id",
    "agg_account_hourly": "account_id",
    "agg_account_segment_daily": "account_id",
    "agg_account_sessions": "account_id",
}


def _text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.large_string())


def splitters(sample: pa.Array | pa.ChunkedArray, buckets: int) -> pa.Array:
    """The `buckets - 1` values cutting `sample`'s values (missing ones aside) into ranges of
    about equal numbers of them."""
    present = pc.drop_null(_text(sample))
    ordered = present.take(pc.sort_indices(present))
    positions = [len(ordered) * i // buckets for i in range(1, buckets)]
    return ordered.take(pa.array(positions, type=pa.int64())) if len(ordered) else ordered


def bucket_codes(values: pa.Array | pa.ChunkedArray, cuts: pa.Array) -> np.ndarray:
    """Each value's bucket: how many of the `cuts` (`splitters`) are at most the value, in
    code point order; a missing value goes to the last, as sorts put it last. Only the
    chunk's distinct values are ranked against the cuts."""
    encoded = pc.dictionary_encode(_text(values))
    distinct = encoded.dictionary
    both = pa.concat_arrays([cuts, distinct])
    # A tie ranks the cut first (it comes first), so a value equal to a cut counts it.
    ranks = pc.rank(both, sort_keys="ascending", tiebreaker="first").to_numpy()
    cut_ranks = np.sort(ranks[: len(cuts)])
    codes = np.searchsorted(cut_ranks, ranks[len(cuts) :]).astype(np.int64)
    indices = pc.fill_null(encoded.indices, len(distinct)).to_numpy()
    return np.append(codes, len(cuts))[indices]


@contextmanager
def spilled(tables: Iterable[pa.Table], key: str, buckets: int) -> Iterator[list[Path]]:
    """The rows of `tables` split into `buckets` files by ranges of `key` (`bucket_codes`,
    cut at `splitters` of the first table), in key order, each holding its rows in the order
    they came; the files exist until the block ends."""
    with tempfile.TemporaryDirectory(prefix="buckets.") as folder:
        paths = [Path(folder) / f"{i}.arrow" for i in range(buckets)]
        with ExitStack() as open_files:
            writers: list[pa.ipc.RecordBatchFileWriter] = []
            for table in tables:
                if not writers:
                    cuts = splitters(table[key], buckets)
                    writers = [
                        open_files.enter_context(
                            pa.ipc.new_file(str(path), table.schema, options=SPILL_OPTIONS)
                        )
                        for path in paths
                    ]
                codes = bucket_codes(table[key], cuts)
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
