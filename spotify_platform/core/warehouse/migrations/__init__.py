"""The warehouse schema as Alembic revisions, run from code: no alembic.ini, no alembic CLI.

Each revision in `versions/` is frozen DDL. The first was generated from the tables that
`core.contracts.tables` builds from the pandera contracts; each later one is generated from
the difference between those tables and a warehouse at the previous head
(`make migration MESSAGE="what changed"`). A test upgrades an empty warehouse
and compares it with the contracts, so a contract change without its revision fails there.
"""

from functools import cache
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import mysql

SCRIPT_LOCATION = Path(__file__).parent
# The revision a warehouse made before Alembic (by the old `init_schema`) is adopted at.
BASELINE = "0001"


def config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration, built in code; `env.py` runs on `connection`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


@cache
def head() -> str:
    """The newest revision (read once per process: the scripts do not change under it)."""
    heads = ScriptDirectory.from_config(config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the warehouse migrations have {len(heads)} heads: merge them")
    return heads[0]


def current(connection: sa.Connection) -> str | None:
    """The warehouse's revision; None when it has no version table."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    command.upgrade(config(connection), revision)


def downgrade(connection: sa.Connection, revision: str) -> None:
    command.downgrade(config(connection), revision)


def stamp(connection: sa.Connection, revision: str) -> None:
    command.stamp(config(connection), revision)


def baseline() -> ModuleType:
    """The baseline revision's module: its frozen `tables()` and `VIEWS`."""
    return ScriptDirectory.from_config(config()).get_revision(BASELINE).module


def replace_views(conn: sa.Connection, views: dict[str, str]) -> None:
    """(Re)create views: they hold no rows, so a revision may replace them freely."""
    for name, body in views.items():
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE VIEW {name} AS {body}"))
        else:
            conn.execute(sa.text(f"CREATE OR REPLACE VIEW {name} AS {body}"))


def compare_type(
    context: MigrationContext,
    inspected_column: sa.Column,
    metadata_column: sa.Column,
    inspected_type: sa.types.TypeEngine,
    metadata_type: sa.types.TypeEngine,
) -> bool | None:
    """Alembic's type comparison, except that MySQL's DOUBLE is the contracts' 53-bit Float
    (Alembic would report every such column as changed)."""
    if isinstance(inspected_type, mysql.DOUBLE) and isinstance(metadata_type, sa.Float):
        return metadata_type.precision != 53
    return None
