"""Taking turns at the warehouse: MySQL named locks, and a lock file beside a SQLite database."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from filelock import FileLock, Timeout

from spotify_platform.core.warehouse.connection import WarehouseContention

LOCK_TIMEOUT_S = 900


@contextmanager
def named_lock(
    engine: sa.Engine, display_url: str, name: str, timeout_s: int = LOCK_TIMEOUT_S
) -> Iterator[None]:
    """Hold a named lock of this database (MySQL GET_LOCK) for a read-compute-write step.

    Runs over overlapping day ranges may run at once; steps whose result depends on rows
    other runs write (windowed KPIs, account summaries, retention) take turns under the
    lock, so the last writer has always seen the other's rows. The lock belongs to a
    session, so a crashed process releases it. SQLite serialises writers by itself.
    """
    if engine.dialect.name == "sqlite":
        yield
        return
    database = engine.url.database or ""
    lock = f"spotify_platform:{database}:{name}"
    if len(lock) > 64:
        lock = "spotify_platform:" + hashlib.sha256(lock.encode()).hexdigest()[:40]
    with engine.connect() as conn:
        got = conn.execute(
            sa.text("SELECT GET_LOCK(:lock, :timeout)"), {"lock": lock, "timeout": timeout_s}
        ).scalar()
        if got != 1:
            raise WarehouseContention(
                f"warehouse {display_url}: another run held the lock for {name!r} "
                f"for more than {timeout_s} s"
            )
        try:
            yield
        finally:
            try:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:lock)"), {"lock": lock})
            except sa.exc.DBAPIError:
                pass  # the session is gone, and its locks with it


@contextmanager
def schema_lock(engine: sa.Engine, display_url: str) -> Iterator[None]:
    """One migrating process at a time: MySQL's named lock, or a lock file beside a SQLite
    database (SQLite would let two processes race to create the same table)."""
    if engine.dialect.name != "sqlite":
        with named_lock(engine, display_url, "schema"):
            yield
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock = FileLock(f"{database}.schema-lock", timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise WarehouseContention(
            f"warehouse {display_url}: another process held the schema lock "
            f"for more than {LOCK_TIMEOUT_S} s"
        ) from None
    try:
        yield
    finally:
        lock.release()
