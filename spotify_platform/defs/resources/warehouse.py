"""The warehouse as a Dagster resource: `WAREHOUSE_URL` and its settings, over the core's
`WarehouseStore`; it brings the schema up to date before a step uses it."""

from typing import Literal

import sqlalchemy as sa
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from spotify_platform.core.lake.chunks import CHUNK_ROWS
from spotify_platform.core.warehouse.connection import (
    CONNECT_TIMEOUT_S,
    DEFAULT_WAREHOUSE_URL,
    READ_TIMEOUT_S,
    WRITE_TIMEOUT_S,
)
from spotify_platform.core.warehouse.store import WarehouseStore

DEFAULT_BATCH_ROWS = 500_000
# The Dagster concurrency pool of every step that loads into or scans the warehouse: an
# instance limit on it (deploy/dagster.yaml) caps the MySQL work of all runs together.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(ConfigurableResource, WarehouseStore):
    """The warehouse behind `WAREHOUSE_URL`: `mysql+pymysql://...` or `sqlite:///PATH`."""

    url: str = Field(
        default=DEFAULT_WAREHOUSE_URL,
        repr=False,
        description="SQLAlchemy URL; may hold a password, so it is left out of repr",
    )
    ssl_ca: str | None = None
    ssl_verify_identity: bool = True
    connect_timeout_s: int = CONNECT_TIMEOUT_S
    write_timeout_s: int = WRITE_TIMEOUT_S
    read_timeout_s: int = READ_TIMEOUT_S
    bulk_load: Literal["auto", "insert"] = "auto"
    # A single run's small days are loaded several to a transaction, up to this many staged
    # rows, rather than one transaction and contract check per day and aggregate asset.
    # 1 loads each day on its own.
    batch_rows: int = DEFAULT_BATCH_ROWS
    # A day with more staged rows is read, loaded and aggregated in pieces of about this many
    # rows, so memory is bounded by the piece rather than by the day.
    chunk_rows: int = CHUNK_ROWS

    _engine: sa.Engine | None = PrivateAttr(default=None)
    _load_data_refused: bool = PrivateAttr(default=False)
    _schema_ready: bool = PrivateAttr(default=False)

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
