"""The warehouse: MySQL/MariaDB (AWS RDS) in production, SQLite as the embedded default."""

import datetime as dt
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import pandas as pd
import sqlalchemy as sa
from dagster import ConfigurableResource, InitResourceContext
from filelock import FileLock, Timeout
from pydantic import Field, PrivateAttr

from spotify_platform.core.contracts.tables import TABLE_DEFS, TABLES, VIEWS
from spotify_platform.core.warehouse import loading, migrations
from spotify_platform.core.warehouse.migrations import legacy

DEFAULT_WAREHOUSE_URL = "sqlite:///.data/warehouse.db"

# MySQL/MariaDB errors after which InnoDB has rolled the statement or transaction back and the
# same transaction may simply run again: deadlock (1213), lock wait timeout (1205).
LOCK_ERRORS = frozenset({1205, 1213})
# The connection is gone: cannot connect (2002, 2003), server gone away (2006), lost during a
# query (2013) or the handshake (2055), killed (1927), server shutting down (1053).
CONNECTION_ERRORS = frozenset({1053, 1927, 2002, 2003, 2006, 2013, 2055})
LOCK_ATTEMPTS = 6
CONNECTION_ATTEMPTS = 3
RETRY_BASE_S = 0.25
RETRY_MAX_S = 5.0
LOCK_TIMEOUT_S = 900
DEFAULT_BATCH_ROWS = 500_000
# PyMySQL packs executemany rows into INSERTs of up to 1,024,000 bytes; a server with a smaller
# max_allowed_packet refuses them (1153), so statements are kept under the server's limit.
PYMYSQL_MAX_STMT_LENGTH = 1_024_000
PACKET_HEADROOM = 4096
# The Dagster concurrency pool of every step that loads into or scans the warehouse: an
# instance limit on it (deploy/dagster.yaml) caps the MySQL work of all runs together.
WAREHOUSE_POOL = "warehouse"

# UTC sessions; and sorts that carry their columns (up to 8 KB a row) instead of re-reading
# each row by id afterwards: with MariaDB's default 1 KB, a top-artists GROUP BY over a
# million-stream day sorted row ids and then read 700k rows at random (74 s against 4 s).
# In-memory temporary tables up to 256 MiB: the KPIs' groupings of a month of accounts spill
# to disk at the 16 MiB default and take twice as long.
SESSION_SETTINGS = (
    "SET time_zone = '+00:00', max_length_for_sort_data = 8192, sort_buffer_size = 33554432, "
    "tmp_table_size = 268435456, max_heap_table_size = 268435456"
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


class WarehouseUnavailable(RuntimeError):
    """The warehouse could not be reached; the message names it without credentials."""


class WarehouseContention(RuntimeError):
    """Lock conflicts (deadlocks, lock waits) outlasted the retries; nothing was half-written."""


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

    url: str = Field(
        default=DEFAULT_WAREHOUSE_URL,
        repr=False,
        description="SQLAlchemy URL; may hold a password, so it is left out of repr",
    )
    ssl_ca: str | None = None
    ssl_verify_identity: bool = True
    connect_timeout_s: int = 10
    # A server that stops reading (a KILLed LOAD DATA, a network partition) would otherwise
    # block a send or a read for minutes, or for ever; these bound it, and the retry follows.
    write_timeout_s: int = 60
    read_timeout_s: int = 3600
    bulk_load: Literal["auto", "insert"] = "auto"
    # A single run's small days are loaded several to a transaction, up to this many staged
    # rows: a month of 30k-play days took 120 transactions and contract checks in the four
    # aggregate assets alone. 1 loads each day on its own.
    batch_rows: int = DEFAULT_BATCH_ROWS

    _engine: sa.Engine | None = PrivateAttr(default=None)
    _load_data_refused: bool = PrivateAttr(default=False)
    _schema_ready: bool = PrivateAttr(default=False)

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
                "write_timeout": self.write_timeout_s,
                "read_timeout": self.read_timeout_s,
                "init_command": SESSION_SETTINGS,
                "local_infile": self.bulk_load == "auto",
            }
            if self.ssl_ca:
                # PyMySQL's own ssl_* arguments: combined with an `ssl` dict, ssl_verify_cert
                # replaces the dict and silently drops its CA, so only system CAs would count.
                connect_args["ssl_ca"] = self.ssl_ca
                connect_args["ssl_verify_cert"] = True
                connect_args["ssl_verify_identity"] = self.ssl_verify_identity
            engine = sa.create_engine(
                url,
                hide_parameters=True,
                pool_pre_ping=True,
                pool_recycle=3600,
                connect_args=connect_args,
            )
            sa.event.listen(engine, "connect", _remember_statement_limit)
            sa.event.listen(engine, "before_cursor_execute", _fit_statements_to_packet)
            return engine
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

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Bring the warehouse to the newest schema revision before a step uses it.

        Every step that uses the warehouse starts here, so an empty warehouse needs no command
        first, whichever assets or checks a run selects; once the warehouse is up to date this
        is a read of its version table.
        """
        upgraded = self.ensure_schema()
        if upgraded is not None and context.log is not None:
            context.log.info(
                f"warehouse {self.display_url}: schema upgraded from revision "
                f"{upgraded[0] or '(none)'} to {upgraded[1]}"
            )

    def ensure_schema(self) -> tuple[str | None, str] | None:
        """Upgrade the warehouse to the newest revision unless it is there already; returns
        the revisions it went from and to, or None when this call changed nothing."""
        if self._schema_ready:
            return None
        self.check_connection()
        if self._retrying("reading the schema version", self._at_head):
            self._schema_ready = True
            return None
        return self._migrate()

    def init_schema(self) -> list[str]:
        """Upgrade to the newest revision, then move primary keys that an older warehouse's rows
        kept from moving until now (`migrations.legacy`); returns the tables created.

        `spotify-platform init-warehouse` for administrators; runs need not call it.
        """
        self.check_connection()
        before = set(self._retrying("reading the schema", self._table_names))
        self._migrate()
        with self._schema_lock():
            with self.engine.begin() as conn:
                legacy.sync_keys(conn, list(TABLES.values()))
        return [name for name in TABLES if name not in before]

    def _table_names(self) -> list[str]:
        return sa.inspect(self.engine).get_table_names()

    def _at_head(self) -> bool:
        with self.engine.connect() as conn:
            return migrations.current(conn) == migrations.head()

    def _migrate(self) -> tuple[str | None, str] | None:
        """Run the pending revisions under the schema lock; a warehouse made before Alembic
        (our tables, no version table) is first adopted at the baseline revision. Returns the
        revisions it went from and to, or None when another process had already migrated."""

        def migrate() -> tuple[str | None, str] | None:
            with self.engine.begin() as conn:
                revision = migrations.current(conn)
                if revision == migrations.head():
                    return None
                if revision is None and set(TABLES) & set(sa.inspect(conn).get_table_names()):
                    logger.warning(
                        "warehouse %s predates schema revisions: adopting it at revision %s",
                        self.display_url,
                        migrations.BASELINE,
                    )
                    legacy.adopt(conn, self.display_url)
                    migrations.stamp(conn, migrations.BASELINE)
                migrations.upgrade(conn)
                return revision, migrations.head()

        with self._schema_lock():
            upgraded = self._retrying("migrating the schema", migrate)
        self._schema_ready = True
        return upgraded

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """One migrating process at a time: MySQL's named lock, or a lock file beside a SQLite
        database (SQLite would let two processes race to create the same table)."""
        if self.dialect != "sqlite":
            with self.exclusive("schema"):
                yield
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            yield
            return
        lock = FileLock(f"{database}.schema-lock", timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise WarehouseContention(
                f"warehouse {self.display_url}: another process held the schema lock "
                f"for more than {LOCK_TIMEOUT_S} s"
            ) from None
        try:
            yield
        finally:
            lock.release()

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
        def missing() -> list[str]:
            existing = set(sa.inspect(self.engine).get_table_names())
            return [name for name in TABLES if name not in existing]

        return self._retrying("reading the schema", missing)

    def replace_days(self, table: str, days: Sequence[dt.date], frame: pd.DataFrame) -> int:
        """Replace the rows of `days` in a partitioned table by `frame`, atomically.

        A deadlock, lock wait timeout or lost connection rolls the transaction back; it is
        then run again from the start (bounded, with jittered backoff): delete + insert of the
        same frame is idempotent, so a retry can neither lose nor double a row.
        """
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
                return self._insert(conn, sa_table, frame)

        return self._retrying(f"loading {table}", replace)

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

        return self._retrying(f"loading {table}", replace)

    def upsert(self, table: str, frame: pd.DataFrame, update: Iterable[str] | None = None) -> int:
        """Insert rows, updating `update` columns where the primary key already exists."""
        if frame.empty:
            return 0
        sa_table = TABLES[table]
        keys = list(TABLE_DEFS[table].primary_key)
        to_update = [c for c in (update if update is not None else frame.columns) if c not in keys]
        # Rows in key order: two runs upserting overlapping keys then lock them in one order,
        # which keeps InnoDB deadlocks rare (and the retry below handles the rest).
        ordered = frame.sort_values(keys, kind="mergesort")

        def write() -> int:
            with self.engine.begin() as conn:
                return self._insert(conn, sa_table, ordered, upsert=to_update)

        return self._retrying(f"upserting into {table}", write)

    def read_frame(self, sql: str | sa.Executable, params: dict | None = None) -> pd.DataFrame:
        statement = sa.text(sql) if isinstance(sql, str) else sql

        def read() -> pd.DataFrame:
            with self.engine.connect() as conn:
                result = conn.execute(statement, params or {})
                return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

        return self._retrying("reading", read)

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

        return self._retrying("reading", read)

    @contextmanager
    def exclusive(self, name: str, timeout_s: int = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold a named lock of this database (MySQL GET_LOCK) for a read-compute-write step.

        Runs over overlapping day ranges may run at once; steps whose result depends on rows
        other runs write (windowed KPIs, account summaries, retention) take turns under the
        lock, so the last writer has always seen the other's rows. The lock belongs to a
        session, so a crashed process releases it. SQLite serialises writers by itself.
        """
        if self.dialect == "sqlite":
            yield
            return
        database = self.engine.url.database or ""
        lock = f"spotify_platform:{database}:{name}"
        if len(lock) > 64:
            lock = "spotify_platform:" + hashlib.sha256(lock.encode()).hexdigest()[:40]
        with self.engine.connect() as conn:
            got = conn.execute(
                sa.text("SELECT GET_LOCK(:lock, :timeout)"), {"lock": lock, "timeout": timeout_s}
            ).scalar()
            if got != 1:
                raise WarehouseContention(
                    f"warehouse {self.display_url}: another run held the lock for {name!r} "
                    f"for more than {timeout_s} s"
                )
            try:
                yield
            finally:
                try:
                    conn.execute(sa.text("SELECT RELEASE_LOCK(:lock)"), {"lock": lock})
                except sa.exc.DBAPIError:
                    pass  # the session is gone, and its locks with it

    def _retrying(self, what: str, work: Callable[[], T]) -> T:
        """Run `work` (one whole transaction or read), again after a transient failure.

        Deadlocks and lock wait timeouts are retried up to LOCK_ATTEMPTS times, a lost
        connection up to CONNECTION_ATTEMPTS times, with jittered exponential backoff; then
        the failure is raised naming the warehouse (never its password).
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return work()
            except sa.exc.DBAPIError as exc:
                kind = failure_kind(exc)
                if kind is None:
                    raise
                limit = LOCK_ATTEMPTS if kind == "lock" else CONNECTION_ATTEMPTS
                detail = _detail(exc)
                if attempt >= limit:
                    if kind == "connection":
                        raise WarehouseUnavailable(
                            f"warehouse {self.display_url} is unreachable while {what} "
                            f"({attempt} attempts): {detail}"
                        ) from None
                    raise WarehouseContention(
                        f"warehouse {self.display_url}: {what} kept failing on locks "
                        f"({attempt} attempts): {detail}"
                    ) from None
                delay = min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.5)
                logger.warning(
                    "warehouse %s: %s failed (%s), retrying in %.2f s (attempt %d of %d)",
                    self.display_url,
                    what,
                    detail,
                    delay,
                    attempt + 1,
                    limit,
                )
                time.sleep(delay)

    def _insert(
        self,
        conn: sa.Connection,
        sa_table: sa.Table,
        frame: pd.DataFrame,
        upsert: list[str] | None = None,
    ) -> int:
        """Bulk insert: LOAD DATA LOCAL where the server allows it, else executemany.

        With `upsert`, rows whose key exists get those columns overwritten: LOAD DATA's
        REPLACE where that comes to the same (every other column), else INSERT ... ON
        DUPLICATE KEY UPDATE of them (the three dimensions of a 1M-play day: 1.8 s as
        statements, 0.5 s loaded).
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


def _driver_errors(exc: BaseException) -> Iterator[BaseException]:
    """The driver errors in an exception's chain, and in those it was raised while handling.

    A failure can surface as a later one: a deadlock inside a savepoint as the failed
    ROLLBACK TO SAVEPOINT after it, a socket that broke as PyMySQL's bare "(0, '')".
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield getattr(current, "orig", None) or current
        current = current.__cause__ or current.__context__


def _code(error: BaseException) -> int | None:
    args = getattr(error, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def failure_kind(exc: sa.exc.DBAPIError) -> Literal["lock", "connection"] | None:
    """'lock' or 'connection' for failures after which the transaction may run again."""
    codes = {_code(error) for error in _driver_errors(exc)}
    if codes & LOCK_ERRORS:
        return "lock"
    if codes & CONNECTION_ERRORS or exc.connection_invalidated:
        return "connection"
    if isinstance(exc, sa.exc.InterfaceError) and type(exc.orig).__module__.startswith("pymysql"):
        return "connection"  # PyMySQL's "(0, '')": the socket closed under it
    return None


def _detail(exc: sa.exc.DBAPIError) -> str:
    """First line of the most telling driver error in the chain (one with a real code)."""
    for error in _driver_errors(exc):
        if _code(error):
            return str(error).strip().splitlines()[0]
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _remember_statement_limit(dbapi_conn: Any, record: Any) -> None:
    """Note how long an executemany statement may be on this connection's server."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("SELECT @@SESSION.max_allowed_packet")
        (packet,) = cursor.fetchone()
    finally:
        cursor.close()
    record.info["max_stmt_length"] = max(
        16 * 1024, min(PYMYSQL_MAX_STMT_LENGTH, int(packet) - PACKET_HEADROOM)
    )


def _fit_statements_to_packet(
    conn: sa.Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    if executemany and "max_stmt_length" in conn.info:
        cursor.max_stmt_length = conn.info["max_stmt_length"]


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
