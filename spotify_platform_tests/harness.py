"""Running the real pipeline in tests: resources for a given lake and warehouse, one run."""

import datetime as dt
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from dagster import DagsterInstance

from spotify_platform.cli import run_range
from spotify_platform.definitions import build_definitions
from spotify_platform.resources import (
    IdentityResource,
    LakeResource,
    SimulatorResource,
    WarehouseResource,
)
from spotify_platform.resources.spotify import OfflineCatalogResource
from spotify_platform.resources.spotify_accounts import SpotifyAccountsResource
from spotify_platform.tables import TABLES

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
    resources["warehouse"].init_schema()
    return run_range(
        first,
        last,
        defs=build_definitions(resources),
        instance=instance or DagsterInstance.ephemeral(),
    )


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
