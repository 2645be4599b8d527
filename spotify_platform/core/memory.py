"""Handing a finished day's memory back to the system.

The steps of a run share one process under the in-process executor (`spotify-platform run`,
the demo, tests), and pandas, Arrow's allocator and glibc all keep freed memory for reuse: left
alone, every step would start from the peak of the largest one before it (1M-event day: 1.0 GiB
held after staging with nothing alive, 0.4 GiB after this).
"""

import ctypes
import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

# A full collection walks every object in the process, Dagster's included: worth it after a
# day big enough to leave much behind in reference cycles, not after each of a month's small
# days, where the collections would add up to a good part of the run.
FULL_COLLECT_ROWS = 200_000


def collect_cycles(rows: int) -> None:
    """Collect reference cycles now if `rows` rows' worth of them may be waiting."""
    if rows >= FULL_COLLECT_ROWS:
        gc.collect()


def release_memory(rows: int) -> None:
    """After `rows` rows were processed: free their cycles, and hand what the allocators
    keep back to the system."""
    collect_cycles(rows)
    return_free_memory()


def return_free_memory() -> None:
    """Hand the memory that Arrow's pool and glibc hold free back to the system (a few ms)."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: its allocator returns memory its own way


@contextmanager
def settled_heap() -> Iterator[None]:
    """Leave the objects alive now (modules, definitions, the instance) out of every
    collection until the block ends: a full collection then walks only what the block made.
    In a run, that is a tenth of a second or more saved at each big day's collection."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
