"""The warehouse as one object: schema set-up, partition replacement, upserts and reads.

Loading a partition is delete + insert in one transaction, so a crash or a re-run leaves
either the previous rows or the new ones. Timestamps are naive `DATETIME(3)` holding UTC.
"""

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa

from spotify_platform.core.contracts.tables import TABLE_DEFS, TABLES
from spotify_platform.core.warehouse import loading, schema
from spotify_platform.core.warehouse.connection import (
    CONNECT_TIMEOUT_S,
    DEFAULT_WAREHOUSE_URL,
    READ_TIMEOUT_S,
    WRITE_TIMEOUT_S,
    check_connection,
    create_engine,
    redact,
)
from spotify_platform.core.warehouse.frames import typed_frame
from spotify_platform.core.warehouse.locks import LOCK_TIMEOUT_S, named_lock
from spotify_platform.core.warehouse.retries import retrying

# Values per IN list of a key lookup: under SQLite's limit of 32,766 bound parameters.
LOOKUP_BATCH = 5_000


class WarehouseStore:
    """SQL warehouse behind one URL: DDL, partition replacement and upserts, nothing Dagster.

    The methods need `url`, `ssl_ca`, `ssl_verify_identity`, the `*_timeout_s` settings,
    `bulk_load`, and the slots `_engine` (None until first used), `_load_data_refused` and
    `_schema_ready` (both False at first): `Warehouse` gives them from its arguments, and the
    Dagster layer's `WarehouseResource` from its configuration, so both share one
    implementation.
    """

    @property
    def display_url(self) -> str:
        return redact(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def writes_side_by_side(self) -> bool:
        """Whether several connections can write at once: not SQLite, which has one writer,
        so steps that load tables in threads load them one after another there."""
        return self.dialect != "sqlite"

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = create_engine(
                self.url,
                connect_timeout_s=self.connect_timeout_s,
                write_timeout_s=self.write_timeout_s,
                read_timeout_s=self.read_timeout_s,
                local_infile=self.bulk_load == "auto",
                ssl_ca=self.ssl_ca,
                ssl_verify_identity=self.ssl_verify_identity,
            )
        return self._engine

    def check_connection(self) -> None:
        """Fail at once, naming the warehouse, when it cannot be reached."""
        check_connection(self.engine, self.display_url)

    def ensure_schema(self) -> tuple[str | None, str] | None:
        """Upgrade the warehouse to the newest revision unless it is there already; returns
        the revisions it went from and to, or None when this call changed nothing."""
        if self._schema_ready:
            return None
        self.check_connection()
        if schema.at_head(self.engine, self.display_url):
            self._schema_ready = True
            return None
        return self._migrate()

    def init_schema(self) -> list[str]:
        """Upgrade to the newest revision, then move primary keys that an older warehouse's rows
        kept from moving until now (`migrations.legacy`); returns the tables created.

        `spotify-platform init-warehouse` for administrators; runs need not call it.
        """
        self.check_connection()
        before = set(schema.table_names(self.engine, self.display_url))
        self._migrate()
        schema.sync_legacy_keys(self.engine, self.display_url)
        return [name for name in TABLES if name not in before]

    def _migrate(self) -> tuple[str | None, str] | None:
        upgraded = schema.migrate(self.engine, self.display_url)
        self._schema_ready = True
        return upgraded

    def grant_bi_reader(self, user: str, password: str, host: str = "%") -> list[str]:
        """Create a MySQL user that may only SELECT from the bi_* views and kpi_* tables
        (`schema.grant_bi_reader`)."""
        return schema.grant_bi_reader(self.engine, self.display_url, user, password, host)

    def missing_tables(self) -> list[str]:
        return schema.missing_tables(self.engine, self.display_url)

    def replace_days(self, table: str, days: Sequence[dt.date], frame: pd.DataFrame) -> int:
        """Replace the rows of `days` in a partitioned table by `frame`, atomically.

        A deadlock, lock wait timeout or lost connection rolls the transaction back; it is
        then run again from the start (bounded, with jittered backoff): delete + insert of the
        same frame is idempotent, so a retry can neither lose nor double a row.
        """
        return self.replace_days_in_parts(table, days, lambda: iter([frame]))

    def replace_days_in_parts(
        self, table: str, days: Sequence[dt.date], parts: Callable[[], Iterable[pd.DataFrame]]
    ) -> int:
        """`replace_days` with the rows given as frames one after another, each inserted as it
        comes in the same transaction: a big day is replaced atomically while only one part
        of it is in memory. `parts` is called again when the transaction is retried."""
        definition = TABLE_DEFS[table]
        if not definition.partitioned:
            raise ValueError(f"{table} is not partitioned by dt")
        sa_table = TABLES[table]
        day_list = sorted(set(days))
        if (day_list[-1] - day_list[0]).days == len(day_list) - 1:
            chosen = sa_table.c.dt.between(day_list[0], day_list[-1])
        else:
            chosen = sa_table.c.dt.in_(day_list)

        def replace() -> int:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(sa_table).where(chosen))
                return sum(self._insert(conn, sa_table, frame) for frame in parts())

        return retrying(self.display_url, f"loading {table}", replace)

    def replace_all(self, table: str, frame: pd.DataFrame) -> int:
        """Replace the whole content of a small derived table, atomically (retried like
        `replace_days`)."""
        return self.replace_where(table, sa.true(), frame)

    def replace_where(self, table: str, where: sa.ColumnElement[bool], frame: pd.DataFrame) -> int:
        """Replace the rows of a derived table that match `where` by `frame`, atomically
        (retried like `replace_days`)."""
        sa_table = TABLES[table]

        def replace() -> int:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(sa_table).where(where))
                return self._insert(conn, sa_table, frame)

        return retrying(self.display_url, f"loading {table}", replace)

    def upsert(self, table: str, frame: pd.DataFrame, update: Iterable[str] | None = None) -> int:
        """Insert rows, updating `update` columns where the primary key already exists."""
        if frame.empty:
            return 0
        sa_table = TABLES[table]
        keys = list(TABLE_DEFS[table].primary_key)
        to_update = [c for c in (update if update is not None else frame.columns) if c not in keys]
        # Rows in key order: two runs upserting overlapping keys then lock them in one order,
        # which keeps InnoDB deadlocks rare (and the retry handles the rest).
        ordered = frame.sort_values(keys, kind="mergesort")

        def write() -> int:
            with self.engine.begin() as conn:
                return self._insert(conn, sa_table, ordered, upsert=to_update)

        return retrying(self.display_url, f"upserting into {table}", write)

    def read_frame(self, sql: str | sa.Executable, params: dict | None = None) -> pd.DataFrame:
        statement = sa.text(sql) if isinstance(sql, str) else sql

        def read() -> pd.DataFrame:
            with self.engine.connect() as conn:
                result = conn.execute(statement, params or {})
                return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

        return retrying(self.display_url, "reading", read)

    def read_table(self, table: str, days: Sequence[dt.date] | None = None) -> pd.DataFrame:
        """A table's rows (optionally some days) typed as its contract expects."""
        sa_table = TABLES[table]
        stmt = sa.select(sa_table)
        if days is not None:
            stmt = stmt.where(sa_table.c.dt.in_(sorted(set(days))))
        return typed_frame(self.read_frame(stmt), table)

    def scalar(self, sql: str, params: dict | None = None) -> Any:
        def read() -> Any:
            with self.engine.connect() as conn:
                return conn.execute(sa.text(sql), params or {}).scalar()

        return retrying(self.display_url, "reading", read)

    def absent(self, table: str, column: str, values: Sequence[Any]) -> set[Any]:
        """The values of `values` that no row of `table` holds in `column`, looked up
        LOOKUP_BATCH at a time (a count first: only a batch with misses is read back)."""
        column_ = TABLES[table].c[column]
        missing: set[Any] = set()
        for start in range(0, len(values), LOOKUP_BATCH):
            batch = list(values[start : start + LOOKUP_BATCH])
            where = column_.in_(batch)

            def found(batch=batch, where=where) -> set[Any] | None:
                with self.engine.connect() as conn:
                    count = conn.execute(sa.select(sa.func.count()).where(where)).scalar()
                    if count == len(batch):
                        return None
                    return set(conn.execute(sa.select(column_).where(where)).scalars())

            present = retrying(self.display_url, f"looking up {table}.{column}", found)
            if present is not None:
                missing.update(v for v in batch if v not in present)
        return missing

    @contextmanager
    def exclusive(self, name: str, timeout_s: int = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the named lock `name` for a read-compute-write step (`locks.named_lock`)."""
        with named_lock(self.engine, self.display_url, name, timeout_s):
            yield

    def _insert(
        self,
        conn: sa.Connection,
        sa_table: sa.Table,
        frame: pd.DataFrame,
        upsert: list[str] | None = None,
    ) -> int:
        """Bulk insert: LOAD DATA LOCAL where the server allows it, else executemany.

        With `upsert`, rows whose key exists get those columns overwritten: LOAD DATA's
        REPLACE where that comes to the same (every other column), as loading is faster than
        statements; else INSERT ... ON DUPLICATE KEY UPDATE of them.
        """
        if frame.empty:
            return 0
        keys = {c.name for c in sa_table.primary_key.columns}
        replace = upsert is not None
        whole_rows = not replace or set(upsert) == {c.name for c in sa_table.columns} - keys
        if self._use_load_data() and whole_rows:
            try:
                with conn.begin_nested():
                    return loading.load_data(conn, sa_table, frame, replace=replace)
            except sa.exc.DBAPIError as exc:
                if not loading.load_data_refused(exc):
                    raise
                self._load_data_refused = True
        return loading.insert_many(conn, sa_table, frame, update=upsert)

    def _use_load_data(self) -> bool:
        if self.dialect == "sqlite" or self.bulk_load == "insert" or self._load_data_refused:
            return False
        return True

    @property
    def load_path(self) -> str:
        """The bulk path in use: 'load_data' or 'insert' (for metadata and the benchmark)."""
        return "load_data" if self._use_load_data() else "insert"


class Warehouse(WarehouseStore):
    """The warehouse outside Dagster: tools, scripts and the core's own tests."""

    def __init__(
        self,
        url: str = DEFAULT_WAREHOUSE_URL,
        *,
        ssl_ca: str | None = None,
        ssl_verify_identity: bool = True,
        connect_timeout_s: int = CONNECT_TIMEOUT_S,
        write_timeout_s: int = WRITE_TIMEOUT_S,
        read_timeout_s: int = READ_TIMEOUT_S,
        bulk_load: Literal["auto", "insert"] = "auto",
    ) -> None:
        self.url, self.ssl_ca, self.ssl_verify_identity = url, ssl_ca, ssl_verify_identity
        self.connect_timeout_s = connect_timeout_s
        self.write_timeout_s, self.read_timeout_s = write_timeout_s, read_timeout_s
        self.bulk_load = bulk_load
        self._engine: sa.Engine | None = None
        self._load_data_refused = False
        self._schema_ready = False
