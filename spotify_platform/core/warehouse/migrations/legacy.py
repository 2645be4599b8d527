"""Warehouses made before Alembic: brought to the baseline revision's tables, then stamped.

The old `init_schema` created missing tables and patched existing ones in place, so an older
warehouse may lack a column (filled from the column's `backfill` expression), carry an
earlier primary key or indexes no longer declared. `adopt` brings it to the baseline without
losing rows; the caller then stamps it at the baseline and upgrades it like any other.
"""

import logging

import sqlalchemy as sa

from spotify_platform.core.warehouse.migrations import baseline, replace_views

logger = logging.getLogger(__name__)


def adopt(conn: sa.Connection, where: str) -> None:
    """Bring the tables of an unversioned warehouse to the baseline's, then its views."""
    revision = baseline()
    tables = revision.tables()
    present = set(sa.inspect(conn).get_table_names())
    tables.create_all(conn, checkfirst=True)
    existing = [table for name, table in tables.tables.items() if name in present]
    for table in existing:
        _add_missing_columns(conn, table, where)
        _sync_indexes(conn, table)
    sync_keys(conn, existing)
    replace_views(conn, revision.VIEWS)


def sync_keys(conn: sa.Connection, tables: list[sa.Table]) -> None:
    """Move primary keys that differ from `tables` where the rows allow it (MySQL rebuilds the
    table). SQLite cannot change a key: its old one stays."""
    if conn.dialect.name == "sqlite":
        return
    inspector = sa.inspect(conn)
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        key = [column.name for column in table.primary_key.columns]
        old_key = inspector.get_pk_constraint(table.name)["constrained_columns"]
        if old_key == key or not _key_holds(conn, table.name, key):
            continue
        logger.warning(
            "%s: primary key (%s) becomes (%s); the table is rebuilt",
            table.name,
            ", ".join(old_key),
            ", ".join(key),
        )
        conn.execute(
            sa.text(
                f"ALTER TABLE {quote(table.name)} DROP PRIMARY KEY, "
                f"ADD PRIMARY KEY ({', '.join(quote(c) for c in key)})"
            )
        )


def _add_missing_columns(conn: sa.Connection, table: sa.Table, where: str) -> None:
    """Add the columns an older table lacks, filled from the column's `backfill` SQL; a NOT
    NULL column without one can't be filled, so the error says to rebuild that table."""
    present = {column["name"] for column in sa.inspect(conn).get_columns(table.name)}
    quote = conn.dialect.identifier_preparer.quote
    for column in table.columns:
        if column.name in present:
            continue
        backfill = column.info.get("backfill")
        if backfill is None and not column.nullable:
            raise RuntimeError(
                f"warehouse {where}: table {table.name} lacks the NOT NULL column "
                f"{column.name}, which has no backfill rule: drop {table.name} and "
                "materialize it again"
            )
        logger.warning("%s: adds column %s (filled from %s)", table.name, column.name, backfill)
        sql_type = column.type.compile(dialect=conn.dialect)
        name, col = quote(table.name), quote(column.name)
        conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN {col} {sql_type}"))
        if backfill is not None:
            conn.execute(sa.text(f"UPDATE {name} SET {col} = ({backfill})"))
        # SQLite cannot tighten a column; its contract still refuses NULLs.
        if not column.nullable and conn.dialect.name != "sqlite":
            conn.execute(sa.text(f"ALTER TABLE {name} MODIFY {col} {sql_type} NOT NULL"))


def _sync_indexes(conn: sa.Connection, table: sa.Table) -> None:
    """Create the declared secondary indexes an older table lacks and drop our own
    (`ix_<table>_...`) that are no longer declared."""
    declared = {index.name: index for index in table.indexes}
    present = {index["name"] for index in sa.inspect(conn).get_indexes(table.name)}
    quote = conn.dialect.identifier_preparer.quote
    for index_name in sorted(present - set(declared)):
        if index_name.startswith(f"ix_{table.name}_"):
            on_table = "" if conn.dialect.name == "sqlite" else f" ON {quote(table.name)}"
            conn.execute(sa.text(f"DROP INDEX {quote(index_name)}{on_table}"))
    for index_name in sorted(set(declared) - present):
        declared[index_name].create(conn)


def _key_holds(conn: sa.Connection, table: str, key: list[str]) -> bool:
    """Whether `table`'s rows are unique under `key`; if not, the old key stays, with a warning
    naming the days to load again.

    A key that narrows what a row stands for (agg_artist_daily from a name to an artist id)
    meets rows built under the old meaning: one artist's spellings as rows of their own. They
    cannot be merged (listeners are distinct counts), but loading their days again replaces
    them, after which the next `init-warehouse` moves the key.
    """
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in key)
    clashes = conn.execute(
        sa.text(f"SELECT {columns} FROM {quote(table)} GROUP BY {columns} HAVING COUNT(*) > 1")
    ).fetchall()
    if not clashes:
        return True
    days = sorted({str(row[0]) for row in clashes}) if key[0] == "dt" else []
    span = f" on {len(days)} days, {days[0]} .. {days[-1]}" if days else ""
    logger.warning(
        "%s: primary key stays as it is, not (%s): %d keys hold more than one row%s, built "
        "by an earlier version. Load those days again (spotify-platform run --from .. --to ..) "
        "and the next init-warehouse moves the key",
        table,
        ", ".join(key),
        len(clashes),
        span,
    )
    return False
