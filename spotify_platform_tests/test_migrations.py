"""The warehouse's schema revisions: they build the tables the contracts describe, run once
however many processes start on an empty warehouse together, and leave an up-to-date
warehouse alone."""

import multiprocessing
import re
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from spotify_platform.core.contracts.tables import TABLES, VIEWS, metadata
from spotify_platform.core.warehouse import migrations
from spotify_platform.defs.resources.warehouse import WarehouseResource

PROCESSES = 4
READ = re.compile(r"\s*(SELECT|SHOW|PRAGMA|DESCRIBE)\b", re.IGNORECASE)


@pytest.fixture(params=["sqlite", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "mariadb":
        yield request.getfixturevalue("mysql_url")
    else:
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"


def test_the_revisions_build_the_tables_the_contracts_describe(url: str) -> None:
    warehouse = WarehouseResource(url=url)
    warehouse.ensure_schema()
    with warehouse.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": migrations.compare_type}
        )
        assert compare_metadata(context, metadata) == []
        assert set(sa.inspect(conn).get_view_names()) == set(VIEWS)
    warehouse.engine.dispose()


def _words(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def test_the_revisions_create_the_views_of_the_tables_module(tmp_path: Path) -> None:
    """SQLite keeps a view's text as written, so a changed view without its revision shows."""
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.db'}")
    warehouse.ensure_schema()
    stored = warehouse.read_frame("SELECT name, sql FROM sqlite_master WHERE type = 'view'")
    assert {name: _words(sql) for name, sql in zip(stored["name"], stored["sql"], strict=True)} == {
        name: _words(f"CREATE VIEW {name} AS {body}") for name, body in VIEWS.items()
    }


def _migrate_when_all_are_ready(url: str, ready: Barrier) -> None:
    warehouse = WarehouseResource(url=url)
    ready.wait(timeout=120)
    warehouse.ensure_schema()


def test_processes_starting_together_on_an_empty_warehouse_all_succeed(url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Barrier(PROCESSES)
    workers = [
        spawn.Process(target=_migrate_when_all_are_ready, args=(url, ready))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [
            migrations.head()
        ]
        assert set(TABLES) <= set(sa.inspect(conn).get_table_names())
    engine.dispose()


def test_an_up_to_date_warehouse_is_only_read(url: str) -> None:
    WarehouseResource(url=url).init_schema()
    warehouse = WarehouseResource(url=url)
    statements: list[str] = []
    sa.event.listen(
        warehouse.engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )
    warehouse.ensure_schema()
    assert statements
    changes = [s for s in statements if not READ.match(s)]
    assert changes == []
    assert not any("GET_LOCK" in s for s in statements)
    reads = len(statements)
    warehouse.ensure_schema()
    assert len(statements) == reads
    warehouse.engine.dispose()
