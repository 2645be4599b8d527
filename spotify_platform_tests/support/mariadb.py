"""Throwaway databases on the shared MariaDB server, and watching what its sessions do."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa


def admin_engine(server_url: str) -> sa.Engine:
    """Engine without pooling, so no admin connection outlives the statement that needed it."""
    return sa.create_engine(server_url, poolclass=sa.NullPool, connect_args={"connect_timeout": 5})


def database_of(url: str) -> str:
    return sa.make_url(url).database or ""


@contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """URL of a fresh utf8mb4_bin `spt_test_*` database, dropped on exit."""
    name = f"spt_test_{secrets.token_hex(6)}"
    engine = admin_engine(server_url)
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    server = sa.make_url(server_url)
    url = server.set(database=name, query={**server.query, "local_infile": "1"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        drop_database(engine, name)
        engine.dispose()


def drop_database(engine: sa.Engine, name: str) -> None:
    """Drop one test database, first ending sessions a test left open in it.

    An open transaction in the database holds a metadata lock that would make DROP wait for
    ``lock_wait_timeout`` (a year by default) instead of failing.
    """
    with engine.connect() as conn:
        own_id = conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one()
        leftover = conn.execute(
            sa.text("SELECT id FROM information_schema.processlist WHERE db = :db AND id <> :me"),
            {"db": name, "me": own_id},
        ).scalars()
        for session_id in leftover:
            try:
                conn.execute(sa.text(f"KILL {int(session_id)}"))
            except sa.exc.OperationalError:
                pass  # it ended between the listing and the KILL
        conn.execute(sa.text("SET SESSION lock_wait_timeout = 30"))
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
