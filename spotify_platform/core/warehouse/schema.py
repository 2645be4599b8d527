"""The warehouse's schema: bringing it to the newest revision (`migrations`), and granting BI
tools read access to what they may see."""

import logging

import sqlalchemy as sa

from spotify_platform.core.contracts.tables import TABLES, VIEWS
from spotify_platform.core.warehouse import migrations
from spotify_platform.core.warehouse.locks import schema_lock
from spotify_platform.core.warehouse.migrations import legacy
from spotify_platform.core.warehouse.retries import retrying

logger = logging.getLogger(__name__)


def table_names(engine: sa.Engine, display_url: str) -> list[str]:
    return retrying(display_url, "reading the schema", lambda: sa.inspect(engine).get_table_names())


def missing_tables(engine: sa.Engine, display_url: str) -> list[str]:
    """The contracts' tables the warehouse lacks."""
    existing = set(table_names(engine, display_url))
    return [name for name in TABLES if name not in existing]


def at_head(engine: sa.Engine, display_url: str) -> bool:
    """Whether the warehouse is at the newest revision already (a read of its version table)."""

    def read() -> bool:
        with engine.connect() as conn:
            return migrations.current(conn) == migrations.head()

    return retrying(display_url, "reading the schema version", read)


def migrate(engine: sa.Engine, display_url: str) -> tuple[str | None, str] | None:
    """Run the pending revisions under the schema lock; a warehouse made before Alembic
    (our tables, no version table) is first adopted at the baseline revision. Returns the
    revisions it went from and to, or None when another process had already migrated."""

    def run() -> tuple[str | None, str] | None:
        with engine.begin() as conn:
            revision = migrations.current(conn)
            if revision == migrations.head():
                return None
            if revision is None and set(TABLES) & set(sa.inspect(conn).get_table_names()):
                logger.warning(
                    "warehouse %s predates schema revisions: adopting it at revision %s",
                    display_url,
                    migrations.BASELINE,
                )
                legacy.adopt(conn, display_url)
                migrations.stamp(conn, migrations.BASELINE)
            migrations.upgrade(conn)
            return revision, migrations.head()

    with schema_lock(engine, display_url):
        return retrying(display_url, "migrating the schema", run)


def sync_legacy_keys(engine: sa.Engine, display_url: str) -> None:
    """Move the primary keys that an older warehouse's rows kept from moving until now
    (`migrations.legacy`), under the schema lock."""
    with schema_lock(engine, display_url):
        with engine.begin() as conn:
            legacy.sync_keys(conn, list(TABLES.values()))


def grant_bi_reader(
    engine: sa.Engine, display_url: str, user: str, password: str, host: str = "%"
) -> list[str]:
    """Create a MySQL user that may only SELECT from the bi_* views and kpi_* tables.

    Returns the objects granted. Raises PermissionError, with the statements to run by
    hand, when the connected user lacks CREATE USER / GRANT OPTION.
    """
    if engine.dialect.name == "sqlite":
        raise ValueError("SQLite has no users: give BI tools a copy of the file instead")
    objects = list(VIEWS) + [n for n in TABLES if n.startswith("kpi_")]
    database = engine.url.database
    account = f"{_quote_account(user)}@{_quote_account(host)}"
    grants = [f"GRANT SELECT ON `{database}`.`{name}` TO {account}" for name in objects]
    try:
        with engine.begin() as conn:
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
                f"{display_url}: this user may not create users or grant; "
                f"ask an administrator to run:\n{script};"
            ) from None
        raise
    return objects


def _quote_account(part: str) -> str:
    """Quote a MySQL user or host name; they cannot be bound as parameters."""
    if not part or any(c in part for c in "'\\`\x00\n"):
        raise ValueError("user and host names may not contain quotes, backslashes or newlines")
    return f"'{part}'"
