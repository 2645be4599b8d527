"""Dagster's SQLite event log, writing a run's asset events in batches.

A single run over a range of days records a planned and a materialization event per asset and
day. Dagster's SQLite storage writes each event in transactions of its own, on a new engine
each time: for years of history that bookkeeping alone would outlast the work by far.
Dagster hands asset events to `store_event_batch` when `DAGSTER_EVENT_BATCH_SIZE` is set (the
Postgres storage has its own batch write); this class writes such a batch in one transaction per
database. A range run plans each asset with one event naming its days (Dagster's own option for
single-run backfills), and the query that finds a failed run's days reads those events, which
Dagster's storage does not. The databases, tables and rows are Dagster's own, so the UI, the
daemon and `dagster` commands read them as usual.

The instance uses it through `dagster.yaml` (see `instance_settings`); the class path below
is the one Dagster's documentation gives for configuring SQLite event storage.
"""

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from dagster import AssetKey, DagsterEventType, EventLogEntry, deserialize_value, serialize_value
from dagster._core.events import ASSET_EVENTS
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqlEventLogStorageTable, SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData

BATCH_SIZE = "1000"
RUN_ENGINES = 16
# Named rather than taken from __name__, which is "__main__" when the module is run as a script.
MODULE = "spotify_platform.defs.event_storage"


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event storage whose asset event batches cost one transaction, not one each."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        # The instance batches only when this is set; it reads it at every event, in whatever
        # process (CLI, run worker, webserver) loaded this storage from the instance settings.
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", BATCH_SIZE)
        self._engines: dict[str, sa.Engine] = {}
        self._engines_pid = os.getpid()
        super().__init__(base_dir, inst_data=inst_data)

    def _engine(self, shard: str) -> sa.Engine:
        """One engine per shard for the life of the storage, where Dagster makes one per
        statement. The index keeps its connection open; a run's shard closes its connection
        after each use, as Dagster's does: that checkpoints the run's database file, whose
        change is what another process watching the run (the webserver) waits for."""
        engine = self._own_engines().get(shard)
        if engine is None:
            index = shard == INDEX_SHARD_NAME
            engine = sa.create_engine(
                self.conn_string_for_shard(shard),
                poolclass=sa.StaticPool if index else sa.NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            sa.event.listen(engine, "connect", _commit_without_sync)
            if len(self._engines) > RUN_ENGINES:
                # The process reads many runs (the webserver): forget the one least lately made.
                oldest = next(k for k in self._engines if k != INDEX_SHARD_NAME)
                self._engines.pop(oldest).dispose()
            self._engines[shard] = engine
        return engine

    def _own_engines(self) -> dict[str, sa.Engine]:
        if self._engines_pid != os.getpid():
            # A forked process must not use, or close, the connections its parent holds.
            _INHERITED.append(self._engines)
            self._engines, self._engines_pid = {}, os.getpid()
        return self._engines

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _forget_engines(self) -> None:
        with self._db_lock:
            for engine in self._own_engines().values():
                engine.dispose()
            self._engines = {}

    def wipe(self) -> None:
        self._forget_engines()
        super().wipe()

    def upgrade(self) -> None:
        self._forget_engines()
        super().upgrade()

    def dispose(self) -> None:
        super().dispose()
        self._forget_engines()

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict
    ) -> "BatchingSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        batched = [e for e in events if e.is_dagster_event and e.dagster_event_type in ASSET_EVENTS]
        for event in events:
            if not (event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS):
                self.store_event(event)
        if not batched:
            return
        rows = [self._event_to_row(event) for event in batched]
        by_run: dict[str, list[dict]] = {}
        for row, event in zip(rows, batched, strict=True):
            by_run.setdefault(event.run_id, []).append(row)
        insert = SqlEventLogStorageTable.insert()
        for run_id, run_rows in by_run.items():
            with self.run_connection(run_id) as conn:
                conn.execute(insert, run_rows)
        # Mirrored into the index shard as `store_event` does, ids returned in row order.
        with self.index_transaction() as conn:
            inserted = conn.execute(
                insert.returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows,
            )
            ids = [row[0] for row in inserted]
            self._store_asset_event_tags(conn, batched, ids)
            for i in _asset_row_updates(batched):
                self._store_asset_event(conn, batched[i], ids[i])

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        """A range run plans each asset with one event naming its partitions, not one per day
        (half of a long history run's events); the attempts query below reads those events so
        that the days of a failed run still show as failed."""
        return True

    def get_latest_asset_partition_materialization_attempts_without_materializations(
        self, asset_key: AssetKey, after_storage_id: int | None = None
    ) -> Mapping[str, tuple[str, int]]:
        attempts = dict(
            super().get_latest_asset_partition_materialization_attempts_without_materializations(
                asset_key, after_storage_id=after_storage_id
            )
        )
        table = SqlEventLogStorageTable
        planned = sa.select(table.c.id, table.c.event).where(
            table.c.asset_key == asset_key.to_string(),
            table.c.partition.is_(None),
            table.c.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value,
        )
        if after_storage_id is not None:
            planned = planned.where(table.c.id > after_storage_id)
        details = self._get_assets_details([asset_key])
        planned = self._add_assets_wipe_filter_to_query(planned, details, [asset_key])
        with self.index_connection() as conn:
            ranged = conn.execute(planned.order_by(table.c.id)).fetchall()
            if not ranged:
                return attempts
            done = sa.select(table.c.partition, sa.func.max(table.c.id)).where(
                table.c.asset_key == asset_key.to_string(),
                table.c.partition.is_not(None),
                table.c.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION.value,
                table.c.id > ranged[0].id,
            )
            latest = dict(conn.execute(done.group_by(table.c.partition)).fetchall())
        for event_id, body in ranged:
            entry = deserialize_value(body, EventLogEntry)
            subset = entry.dagster_event.event_specific_data.partitions_subset
            if subset is None:
                continue
            for partition in subset.get_partition_keys():
                if latest.get(partition, 0) > event_id:
                    continue
                if attempts.get(partition, ("", 0))[1] < event_id:
                    attempts[partition] = (entry.run_id, event_id)
        return attempts

    def _store_asset_check_evaluation_planned(
        self, event: EventLogEntry, event_id: int | None
    ) -> None:
        """A check planned over a range has a row per partition: the event is serialised once
        and the rows go in as one executemany, instead of an INSERT compiled with every row."""
        planned = event.dagster_event.event_specific_data
        subset = planned.partitions_subset
        common = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        partitions = subset.get_partition_keys() if subset else [None]
        with self.index_connection() as conn:
            conn.execute(
                AssetCheckExecutionsTable.insert(),
                [{**common, "partition": partition} for partition in partitions],
            )


_INHERITED: list[dict[str, sa.Engine]] = []


def _commit_without_sync(dbapi_connection, _record) -> None:
    """In WAL mode (Dagster's), `synchronous=NORMAL` keeps the database consistent through a
    crash or power cut and saves the wait for the disk at every commit: a run's last events
    before a power cut can be lost, never the database. Under a run that writes much to disk,
    that wait grew to 10-20 ms an event."""
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _asset_row_updates(events: Sequence[EventLogEntry]) -> list[int]:
    """The events whose asset-table update leaves the row as updating it for every event in
    turn would: per asset, its last materialization (which alone sets the stored last
    materialization) and then its last event (which sets the last run and timestamp)."""
    last: dict[object, int] = {}
    last_materialization: dict[object, int] = {}
    for i, event in enumerate(events):
        key = event.dagster_event.asset_key
        last[key] = i
        if event.dagster_event.is_step_materialization:
            last_materialization[key] = i
    chosen = set(last.values()) | set(last_materialization.values())
    return sorted(chosen)


# The package's own loggers (a warehouse retry, a Spotify rate-limit wait, a legacy schema
# warning) are managed by Dagster: inside a run their records join the run's log in the UI.
PYTHON_LOGS = (
    "python_logs:\n  managed_python_loggers:\n    - spotify_platform\n  python_log_level: INFO\n"
)


def _storage_settings(home: str) -> str:
    runs = os.path.join(os.path.abspath(home), "history", "runs")
    return (
        "telemetry:\n"
        "  enabled: false\n"
        "event_log_storage:\n"
        f"  module: {MODULE}\n"
        f"  class: {BatchingSqliteEventLogStorage.__name__}\n"
        "  config:\n"
        f"    base_dir: {runs}\n"
    )


def instance_settings(home: str) -> str:
    """The `dagster.yaml` of the project's local instance: Dagster's SQLite storage at its
    usual place under `home`, events written in batches, the package's loggers in run logs,
    no telemetry."""
    return _storage_settings(home) + PYTHON_LOGS


LEGACY_SETTINGS = "telemetry:\n  enabled: false\n"


def ensure_instance_settings(home: str) -> None:
    """Write the settings into a new instance, or into one that still has settings an earlier
    version of the project wrote (same databases, so nothing recorded is lost)."""
    os.makedirs(home, exist_ok=True)
    path = os.path.join(home, "dagster.yaml")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            if handle.read() not in (LEGACY_SETTINGS, _storage_settings(home)):
                return
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(instance_settings(home))


if __name__ == "__main__":
    import sys

    ensure_instance_settings(sys.argv[1])
