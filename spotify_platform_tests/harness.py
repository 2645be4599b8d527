"""Running the real pipeline in tests: resources for a given lake and warehouse, one run."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from dagster import DagsterInstance

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.warehouse import migrations
from spotify_platform.definitions import build_definitions
from spotify_platform.defs.resources import (
    IdentityResource,
    LakeResource,
    SimulatorResource,
    WarehouseResource,
)
from spotify_platform.defs.resources.catalog import OfflineCatalogResource
from spotify_platform.defs.resources.spotify_accounts import SpotifyAccountsResource
from spotify_platform.defs.runs import run_range

SEED = 11
EPOCH = "2026-01-05"


def make_resources(
    tmp_path: Path,
    warehouse_url: str | None = None,
    lake_url: str | None = None,
    s3_endpoint_url: str | None = None,
    accounts: int = 150,
) -> dict[str, object]:
    return {
        "lake": LakeResource(
            url=lake_url or f"file://{tmp_path}/lake", s3_endpoint_url=s3_endpoint_url
        ),
        "warehouse": WarehouseResource(url=warehouse_url or f"sqlite:///{tmp_path}/wh.db"),
        "identity": IdentityResource(hmac_key="test-key-not-secret"),
        "simulator": SimulatorResource(accounts=accounts, seed=SEED, epoch=EPOCH),
        "spotify": OfflineCatalogResource(seed=SEED),
        "spotify_accounts": SpotifyAccountsResource(),
    }


def run_days(resources: dict, first: dt.date, last: dt.date, instance=None) -> bool:
    """One run over the days; the run itself brings the warehouse's schema up to date."""
    return run_range(
        first,
        last,
        defs=build_definitions(resources),
        instance=instance or DagsterInstance.ephemeral(),
    )


def as_before_alembic(warehouse: WarehouseResource) -> None:
    """Make a warehouse look like one the old `init_schema` made: the baseline's tables (later
    revisions undone), no version table."""
    with warehouse.engine.begin() as conn:
        migrations.downgrade(conn, migrations.BASELINE)
        conn.execute(sa.text("DROP TABLE alembic_version"))
    warehouse.engine.dispose()


def read_table(resources: dict, name: str) -> pd.DataFrame:
    warehouse: WarehouseResource = resources["warehouse"]
    return warehouse.read_table(name)


def table_checksums(resources: dict) -> dict[str, tuple]:
    """Row count and an order-independent digest of every warehouse table."""
    warehouse: WarehouseResource = resources["warehouse"]
    sums = {}
    for name, table in TABLES.items():
        frame = warehouse.read_frame(sa.select(table))
        keys = [c.name for c in table.primary_key.columns]
        frame = frame.sort_values(keys).reset_index(drop=True)
        digest = pd.util.hash_pandas_object(frame.astype(str), index=False).sum()
        sums[name] = (len(frame), int(digest))
    return sums


def simulated_raw(resources: dict, first: dt.date, last: dt.date) -> pd.DataFrame:
    """The raw records the simulator landed for the days, straight from its own generator."""
    simulator: SimulatorResource = resources["simulator"]
    frames = [simulator.day(first + dt.timedelta(days=i)) for i in range((last - first).days + 1)]
    return pd.concat(frames, ignore_index=True)


def synthetic_facts(rows: int, day: dt.date, seed: int = 0) -> pd.DataFrame:
    """A staged-shaped frame of `rows` track plays on `day`, built vectorised in seconds.

    For load tests that need more rows than the simulator makes quickly: event ids are unique
    and sorted (as staging writes them), names come from a pool with non-ASCII ones mixed in.
    """
    rng = np.random.default_rng(seed)
    names = np.array(
        [f"Track {i} — Ünïcødé 夜{i % 97} 🎵" if i % 5 == 0 else f"Song number {i}" for i in
         range(5000)],
        dtype=object,
    )
    artists = np.array([f"Artist {i} & Friends" for i in range(800)], dtype=object)
    accounts = np.array([f"{i:032x}" for i in range(max(rows // 20, 1))], dtype=object)
    start = pd.Timestamp(day, tz="UTC")
    ended = start + pd.to_timedelta(np.sort(rng.integers(0, 86_400_000, rows)), unit="ms")
    ms = rng.integers(1_000, 400_000, rows)
    pick = rng.integers(0, len(names), rows)
    artist = rng.integers(0, len(artists), rows)
    track_ids = np.array([f"{i:022d}" for i in range(len(names))], dtype=object)
    artist_ids = np.array([f"~{i:021x}" for i in range(len(artists))], dtype=object)
    started = ended - pd.to_timedelta(ms, unit="ms")
    return pd.DataFrame(
        {
            "event_id": [f"{i:032x}" for i in range(seed << 40, (seed << 40) + rows)],
            "account_id": accounts[rng.integers(0, len(accounts), rows)],
            "source": "simulator",
            "ended_at": ended,
            "started_at": started,
            "ms_played": ms.astype("int64"),
            "content_type": "track",
            "track_id": track_ids[pick],
            "track_name": names[pick],
            "artist_id": artist_ids[artist],
            "artist_name": artists[artist],
            "album_name": np.where(pick % 7 == 0, None, names[(pick * 3) % len(names)]),
            "episode_name": None,
            "show_name": None,
            "country": np.array(["DE", "US", "BR", "JP", "ZZ"], dtype=object)[pick % 5],
            "platform": np.array(["android", "ios", "windows"], dtype=object)[pick % 3],
            "reason_start": "trackdone",
            "reason_end": np.where(pick % 4 == 0, "fwdbtn", "trackdone"),
            "shuffle": pd.array(np.where(pick % 9 == 0, None, pick % 2 == 0), dtype="boolean"),
            "skipped": pick % 4 == 0,
            "offline": pd.array(pick % 11 == 0, dtype="boolean"),
            "incognito": pd.array([None] * rows, dtype="boolean"),
            "is_stream": ms >= 30_000,
            "dt": pd.Timestamp(day),
            "utc_hour": pd.array(started.hour, dtype="Int8"),
            "local_hour": pd.array(started.hour, dtype="Int8"),
        }
    )


def import_run(defs, request, instance: DagsterInstance):
    """The import run a sensor's request asks for, executed as the daemon would launch it."""
    return defs.resolve_job_def(request.job_name).execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance, raise_on_error=False
    )
