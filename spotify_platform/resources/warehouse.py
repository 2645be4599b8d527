"""The warehouse: MySQL/MariaDB (AWS RDS) in production, SQLite as the embedded default."""

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import PrivateAttr
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from spotify_platform.resources import loading
from spotify_platform.tables import TABLE_DEFS, TABLES, VIEWS, metadata

DEFAULT_WAREHOUSE_URL = "sqlite:///.data/warehouse.db"
INSERT_CHUNK_ROWS = 20_000


class WarehouseUnavailable(RuntimeError):
    """The warehouse could not be reached; the message names it without credentials."""


def redact(url: str) -> str:
    """The URL as it may appear in logs and errors: no password, no query string."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return "<unparseable warehouse URL>"
    return parsed.set(query={}).render_as_string(hide_password=True)


class WarehouseResource(ConfigurableResource):
    """SQL warehouse behind one URL; DDL, partition replacement and upserts, nothing Dagster.

    Loading a partition is delete + insert in one transaction, so a crash or a re-run leaves
    either the previous rows or the new ones. Timestamps are naive `DATETIME(3)` holding UTC.
    """

    url: str = DEFAULT_WAREHOUSE_URL
    ssl_ca: str | None = None
    ssl_verify_identity: bool = True
    connect_timeout_s: int = 10
    bulk_load: Literal["auto", "insert"] = "auto"

    _engine: sa.Engine | None = PrivateAttr(default=None)
    _load_data_refused: bool = PrivateAttr(default=False)

    @property
    def display_url(self) -> str:
        return redact(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> sa.Engine:
        try:
            url = sa.engine.make_url(self.url)
        except sa.exc.ArgumentError as exc:
            raise WarehouseUnavailable(
                f"WAREHOUSE_URL is not a valid SQLAlchemy URL: {exc}"
            ) from None
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, hide_parameters=True, connect_args={"timeout": 60})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if url.get_backend_name() in ("mysql", "mariadb"):
            connect_args: dict[str, Any] = {
                "charset": "utf8mb4",
                "connect_timeout": self.connect_timeout_s,
                "init_command": "SET time_zone = '+00:00'",
                "local_infile": self.bulk_load == "auto",
            }
            if self.ssl_ca:
                connect_args["ssl"] = {"ca": self.ssl_ca}
                connect_args["ssl_verify_cert"] = True
                connect_args["ssl_verify_identity"] = self.ssl_verify_identity
            return sa.create_engine(
                url,
                hide_parameters=True,
                pool_pre_ping=True,
                pool_recycle=3600,
                connect_args=connect_args,
            )
        raise WarehouseUnavailable(
            f"warehouse {self.display_url}: only mysql+pymysql:// and sqlite:/// are supported"
        )

    def check_connection(self) -> None:
        """Fail at once, naming the warehouse, when it cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", exc)).splitlines()[0]
            raise WarehouseUnavailable(
                f"warehouse {self.display_url} is unreachable: {detail}"
            ) from None

    def init_schema(self) -> list[str]:
        """Create missing tables and (re)create the bi_* views; returns the new tables."""
        self.check_connection()
        existing = set(sa.inspect(self.engine).get_table_names())
        metadata.create_all(self.engine, checkfirst=True)
        with self.engine.begin() as conn:
            for name, body in VIEWS.items():
                conn.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))
                conn.execute(sa.text(f"CREATE VIEW {name} AS {body}"))
        return [name for name in TABLES if name not in existing]

    def grant_bi_reader(self, user: str, password: str, host: str = "%") -> list[str]:
        """Create a MySQL user that may only SELECT from the bi_* views and kpi_* tables.

        Returns the objects granted. Raises PermissionError, with the statements to run by
        hand, when the connected user lacks CREATE USER / GRANT OPTION.
        """
        if self.dialect == "sqlite":
            raise ValueError("SQLite has no users: give BI tools a copy of the file instead")
        objects = list(VIEWS) + [n for n in TABLES if n.startswith("kpi_")]
        database = self.engine.url.database
        account = f"{_quote_account(user)}@{_quote_account(host)}"
        grants = [f"GRANT SELECT ON `{database}`.`{name}` TO {account}" for name in objects]
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.text(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY :password"),
                    {"password": password},
                )
                for grant in grants:
                    conn.execute(sa.text(grant))
        except sa.exc.DBAPIError as exc:
            code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
            if code in (1044, 1045, 1142, 1227, 1410):
                script = ";\n".join(
                    [f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '<password>'", *grants]
                )
                raise PermissionError(
                    f"{self.display_url}: this user may not create users or grant; "
                    f"ask an administrator to run:\n{script};"
                ) from None
            raise
        return objects

    def missing_tables(self) -> list[str]:
        existing = set(sa.inspect(self.engine).get_table_names())
        return [name for name in TABLES if name not in existing]

    def replace_days(self, table: str, days: Sequence[dt.date], frame: pd.DataFrame) -> int:
        """Replace the rows of `days` in a partitioned table by `frame`, atomically."""
        definition = TABLE_DEFS[table]
        if not definition.partitioned:
            raise ValueError(f"{table} is not partitioned by dt")
        sa_table = TABLES[table]
        day_list = sorted(set(days))
        with self.engine.begin() as conn:
            conn.execute(sa.delete(sa_table).where(sa_table.c.dt.in_(day_list)))
            return self._insert(conn, sa_table, frame)

    def replace_all(self, table: str, frame: pd.DataFrame) -> int:
        """Replace the whole content of a small derived table, atomically."""
        sa_table = TABLES[table]
        with self.engine.begin() as conn:
            conn.execute(sa.delete(sa_table))
            return self._insert(conn, sa_table, frame)

    def upsert(self, table: str, frame: pd.DataFrame, update: Iterable[str] | None = None) -> int:
        """Insert rows, updating `update` columns where the primary key already exists."""
        if frame.empty:
            return 0
        sa_table = TABLES[table]
        keys = list(TABLE_DEFS[table].primary_key)
        to_update = [c for c in (update if update is not None else frame.columns) if c not in keys]
        if self.dialect == "sqlite":
            stmt = sqlite_dialect.insert(sa_table)
            stmt = (
                stmt.on_conflict_do_update(
                    index_elements=keys, set_={c: stmt.excluded[c] for c in to_update}
                )
                if to_update
                else stmt.on_conflict_do_nothing(index_elements=keys)
            )
        else:
            stmt = mysql_dialect.insert(sa_table)
            assignments = {c: stmt.inserted[c] for c in (to_update or keys[:1])}
            stmt = stmt.on_duplicate_key_update(assignments)
        names, values = loading.rows(frame, sa_table, self.dialect, typed=True)
        records = [dict(zip(names, row, strict=True)) for row in values]
        with self.engine.begin() as conn:
            for start in range(0, len(records), INSERT_CHUNK_ROWS):
                conn.execute(stmt, records[start : start + INSERT_CHUNK_ROWS])
        return len(frame)

    def read_frame(self, sql: str | sa.Executable, params: dict | None = None) -> pd.DataFrame:
        statement = sa.text(sql) if isinstance(sql, str) else sql
        with self.engine.connect() as conn:
            result = conn.execute(statement, params or {})
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def read_table(self, table: str, days: Sequence[dt.date] | None = None) -> pd.DataFrame:
        """A table's rows (optionally some days) typed as its contract expects."""
        sa_table = TABLES[table]
        stmt = sa.select(sa_table)
        if days is not None:
            stmt = stmt.where(sa_table.c.dt.in_(sorted(set(days))))
        return typed_frame(self.read_frame(stmt), table)

    def scalar(self, sql: str, params: dict | None = None) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params or {}).scalar()

    def _insert(self, conn: sa.Connection, sa_table: sa.Table, frame: pd.DataFrame) -> int:
        """Bulk insert: LOAD DATA LOCAL where the server allows it, else executemany."""
        if frame.empty:
            return 0
        if self._use_load_data():
            try:
                with conn.begin_nested():
                    return loading.load_data(conn, sa_table, frame)
            except sa.exc.DBAPIError as exc:
                if not loading.load_data_refused(exc):
                    raise
                self._load_data_refused = True
        return loading.insert_many(conn, sa_table, frame)

    def _use_load_data(self) -> bool:
        if self.dialect == "sqlite" or self.bulk_load == "insert" or self._load_data_refused:
            return False
        return True

    @property
    def load_path(self) -> str:
        """The bulk path in use: 'load_data' or 'insert' (for metadata and the benchmark)."""
        return "load_data" if self._use_load_data() else "insert"


def _quote_account(part: str) -> str:
    """Quote a MySQL user or host name; they cannot be bound as parameters."""
    if not part or any(c in part for c in "'\\`\x00\n"):
        raise ValueError("user and host names may not contain quotes, backslashes or newlines")
    return f"'{part}'"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def typed_frame(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Coerce a frame read from SQL (SQLite returns dates as text) to the table's contract."""
    out = frame.copy()
    for column in TABLES[table].columns:
        if column.name not in out.columns:
            continue
        kind = column.type
        if isinstance(kind, sa.Date):
            out[column.name] = pd.to_datetime(out[column.name])
        elif isinstance(kind, sa.DateTime):
            out[column.name] = pd.to_datetime(out[column.name], utc=True)
        elif isinstance(kind, sa.Boolean):
            out[column.name] = out[column.name].astype("boolean")
        elif isinstance(kind, sa.Float):
            out[column.name] = pd.to_numeric(out[column.name]).astype(float)
    return out
