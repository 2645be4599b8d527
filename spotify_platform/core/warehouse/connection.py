"""Reaching the warehouse: its URL, the engine over it, and the errors that name it.

MySQL/MariaDB (AWS RDS) in production, SQLite as the embedded default. Every message names
the warehouse by `redact(url)`, never with its password.
"""

from pathlib import Path
from typing import Any

import sqlalchemy as sa

DEFAULT_WAREHOUSE_URL = "sqlite:///.data/warehouse.db"
CONNECT_TIMEOUT_S = 10
# A server that stops reading (a KILLed LOAD DATA, a network partition) would otherwise
# block a send or a read for minutes, or for ever; these bound it, and the retry follows.
WRITE_TIMEOUT_S = 60
READ_TIMEOUT_S = 3600

# PyMySQL packs executemany rows into INSERTs of up to 1,024,000 bytes; a server with a smaller
# max_allowed_packet refuses them (1153), so statements are kept under the server's limit.
PYMYSQL_MAX_STMT_LENGTH = 1_024_000
PACKET_HEADROOM = 4096

# UTC sessions; and sorts that carry their columns (up to 8 KB a row) instead of re-reading
# each row by id afterwards: with MariaDB's default 1 KB, a top-artists GROUP BY over a
# million-stream day sorted row ids and then read its rows again at random, many times slower.
# In-memory temporary tables up to 256 MiB: the KPIs' groupings of a month of accounts spill
# to disk at the 16 MiB default and take twice as long.
SESSION_SETTINGS = (
    "SET time_zone = '+00:00', max_length_for_sort_data = 8192, sort_buffer_size = 33554432, "
    "tmp_table_size = 268435456, max_heap_table_size = 268435456"
)


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


def create_engine(
    url: str,
    *,
    connect_timeout_s: int,
    write_timeout_s: int,
    read_timeout_s: int,
    local_infile: bool,
    ssl_ca: str | None = None,
    ssl_verify_identity: bool = True,
) -> sa.Engine:
    """An engine for a `sqlite:///` or `mysql+pymysql://` URL, its sessions set up for loading.

    `local_infile` lets the client send files for LOAD DATA LOCAL.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise WarehouseUnavailable(f"WAREHOUSE_URL is not a valid SQLAlchemy URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, hide_parameters=True, connect_args={"timeout": 60})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        connect_args: dict[str, Any] = {
            "charset": "utf8mb4",
            "connect_timeout": connect_timeout_s,
            "write_timeout": write_timeout_s,
            "read_timeout": read_timeout_s,
            "init_command": SESSION_SETTINGS,
            "local_infile": local_infile,
        }
        if ssl_ca:
            # PyMySQL's own ssl_* arguments: combined with an `ssl` dict, ssl_verify_cert
            # replaces the dict and silently drops its CA, so only system CAs would count.
            connect_args["ssl_ca"] = ssl_ca
            connect_args["ssl_verify_cert"] = True
            connect_args["ssl_verify_identity"] = ssl_verify_identity
        engine = sa.create_engine(
            parsed,
            hide_parameters=True,
            pool_pre_ping=True,
            pool_recycle=3600,
            connect_args=connect_args,
        )
        sa.event.listen(engine, "connect", _remember_statement_limit)
        sa.event.listen(engine, "before_cursor_execute", _fit_statements_to_packet)
        return engine
    raise WarehouseUnavailable(
        f"warehouse {redact(url)}: only mysql+pymysql:// and sqlite:/// are supported"
    )


def check_connection(engine: sa.Engine, display_url: str) -> None:
    """Fail at once, naming the warehouse, when it cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", exc)).splitlines()[0]
        raise WarehouseUnavailable(f"warehouse {display_url} is unreachable: {detail}") from None


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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
