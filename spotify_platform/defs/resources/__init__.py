"""Resources, one per external system, configured from the environment."""

import os

from dagster import EnvVar

from spotify_platform.core.lake.chunks import CHUNK_ROWS
from spotify_platform.core.lake.store import DEFAULT_LAKE_URL
from spotify_platform.core.warehouse.connection import DEFAULT_WAREHOUSE_URL
from spotify_platform.defs.resources.catalog import OfflineCatalogResource, SpotifyCatalogResource
from spotify_platform.defs.resources.hmac_key import IdentityResource
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.settings import env_int_or, env_or
from spotify_platform.defs.resources.simulated_listening import DEFAULT_EPOCH, SimulatorResource
from spotify_platform.defs.resources.spotify_accounts import build_spotify_accounts
from spotify_platform.defs.resources.warehouse import DEFAULT_BATCH_ROWS, WarehouseResource


def build_resources() -> dict[str, object]:
    """Every resource the code location binds, from the environment or embedded defaults."""
    return {
        "lake": LakeResource(
            url=env_or("LAKE_URL", DEFAULT_LAKE_URL),
            s3_endpoint_url=env_or("S3_ENDPOINT_URL"),
            region_name=env_or("AWS_REGION", env_or("AWS_DEFAULT_REGION")),
        ),
        "warehouse": WarehouseResource(
            url=env_or("WAREHOUSE_URL", DEFAULT_WAREHOUSE_URL),
            ssl_ca=env_or("WAREHOUSE_SSL_CA"),
            batch_rows=env_int_or("WAREHOUSE_BATCH_ROWS", DEFAULT_BATCH_ROWS),
            chunk_rows=env_int_or("WAREHOUSE_CHUNK_ROWS", CHUNK_ROWS),
        ),
        "identity": IdentityResource(hmac_key=env_or("ACCOUNT_HMAC_KEY")),
        "simulator": SimulatorResource(
            accounts=env_int_or("SIMULATOR_ACCOUNTS", 0),
            seed=env_int_or("SIMULATOR_SEED", 7),
            epoch=env_or("SIMULATOR_EPOCH", DEFAULT_EPOCH),
        ),
        "spotify": build_spotify_catalog(),
        "spotify_accounts": build_spotify_accounts(),
    }


def resolved(name: str):
    """One resource with its EnvVars resolved, for use outside a Dagster run (the CLI)."""
    return build_resources()[name].process_config_and_initialize()


def build_spotify_catalog() -> SpotifyCatalogResource:
    """The live Web API catalog when app credentials are set, else the offline catalog."""
    if os.environ.get("SPOTIFY_CLIENT_ID") and os.environ.get("SPOTIFY_CLIENT_SECRET"):
        # Imported here so the offline default never loads spotipy.
        from spotify_platform.defs.resources.spotify_web_api import (
            DEFAULT_API_URL,
            DEFAULT_AUTH_URL,
            LiveCatalogResource,
        )

        return LiveCatalogResource(
            client_id=EnvVar("SPOTIFY_CLIENT_ID"),
            client_secret=EnvVar("SPOTIFY_CLIENT_SECRET"),
            api_url=env_or("SPOTIFY_API_URL", DEFAULT_API_URL),
            auth_url=env_or("SPOTIFY_AUTH_URL", DEFAULT_AUTH_URL),
            batch_lookups=os.environ.get("SPOTIFY_BATCH_LOOKUPS") == "1",
        )
    return OfflineCatalogResource(seed=env_int_or("SIMULATOR_SEED", 7))


__all__ = [
    "IdentityResource",
    "LakeResource",
    "SimulatorResource",
    "SpotifyCatalogResource",
    "WarehouseResource",
    "build_resources",
    "resolved",
]
