"""Days staged side by side in worker processes, with `concurrent.futures`.

Typing and validation hold the GIL most of the time, so days go to processes rather than
threads, and a day's own slices are staged one after another: the only parallelism is one
day per worker. Workers are forked: they start with staging
imported and the caller's environment, and never import the caller's main script again (which
spawn and forkserver do, and which breaks scripts without a `__main__` guard). Each makes its
own lake client rather than share the caller's connections.
"""

import datetime as dt
import functools
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from spotify_platform.core.lake.store import Lake, LakeStore
from spotify_platform.core.staging.lake_io import stage_stored_day

WORKERS = max(1, min(4, os.cpu_count() or 2))


def stage_in_workers(
    lake: LakeStore, key: bytes, days: list[dt.date], raw: dict[dt.date, dict[str, int]]
) -> Iterator[dict]:
    """Each day's stats (`stage_stored_day`), in the order of `days`, as they are done.

    A failure in any day stops the others after their current day and is raised here.
    """
    context = multiprocessing.get_context("fork")
    settings = (lake.url, lake.s3_endpoint_url, lake.region_name)
    with ProcessPoolExecutor(min(WORKERS, len(days)) or 1, mp_context=context) as pool:
        futures = [pool.submit(_stage_day, settings, key, day, list(raw[day])) for day in days]
        try:
            for day, future in zip(days, futures, strict=True):
                yield _result(day, future)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _result(day: dt.date, future: Future) -> dict:
    try:
        return future.result()
    except BrokenProcessPool:
        raise RuntimeError(
            f"the worker process staging {day} ended (out of memory?): "
            "materialize the days again, or fewer at a time"
        ) from None


def _stage_day(
    settings: tuple[str, str | None, str | None], key: bytes, day: dt.date, raw_keys: list[str]
) -> dict:
    return stage_stored_day(_lake(settings), key, day, raw_keys)


@functools.cache
def _lake(settings: tuple[str, str | None, str | None]) -> Lake:
    """One lake per worker and settings, so its S3 client is made once, not per day."""
    return Lake(*settings)
