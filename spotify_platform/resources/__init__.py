"""Resources, one per external system, configured from the environment."""

import os

from dagster import EnvVar

from spotify_platform.resources.identity import IdentityResource
from spotify_platform.resources.lake import DEFAULT_LAKE_URL, LakeResource
from spotify_platform.resources.simulator import DEFAULT_EPOCH, SimulatorResource
from spotify_platform.resources.spotify import OfflineCatalogResource, SpotifyCatalogResource
from spotify_platform.resources.spotify_accounts import build_spotify_accounts
from spotify_platform.resources.warehouse import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_WAREHOUSE_URL,
    WarehouseResource,
)


def _env(name: str, default: object = None) -> object:
    """An EnvVar when the variable is set (resolved at run time, never logged), else default."""
    return EnvVar(name) if os.environ.get(name) else default


def _env_int(name: str, default: int) -> object:
    return EnvVar.int(name) if os.environ.get(name) else default


def build_resources() -> dict[str, object]:
    """Every resource the code location binds, from the environment or embedded defaults."""
    return {
        "lake": LakeResource(
            url=_env("LAKE_URL", DEFAULT_LAKE_URL),
            s3_endpoint_url=_env("S3_ENDPOINT_URL"),
            region_name=_env("AWS_REGION", _env("AWS_DEFAULT_REGION")),
        ),
        "warehouse": WarehouseResource(
            url=_env("WAREHOUSE_URL", DEFAULT_WAREHOUSE_URL),
            ssl_ca=_env("WAREHOUSE_SSL_CA"),
            batch_rows=_env_int("WAREHOUSE_BATCH_ROWS", DEFAULT_BATCH_ROWS),
        ),
        "identity": IdentityResource(hmac_key=_env("ACCOUNT_HMAC_KEY")),
        "simulator": SimulatorResource(
            accounts=_env_int("SIMULATOR_ACCOUNTS", 0),
            seed=_env_int("SIMULATOR_SEED", 7),
            epoch=_env("SIMULATOR_EPOCH", DEFAULT_EPOCH),
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
        from spotify_platform.resources.spotify_api import (
            DEFAULT_API_URL,
            DEFAULT_AUTH_URL,
            LiveCatalogResource,
        )

        return LiveCatalogResource(
            client_id=EnvVar("SPOTIFY_CLIENT_ID"),
            client_secret=EnvVar("SPOTIFY_CLIENT_SECRET"),
            api_url=_env("SPOTIFY_API_URL", DEFAULT_API_URL),
            auth_url=_env("SPOTIFY_AUTH_URL", DEFAULT_AUTH_URL),
            batch_lookups=os.environ.get("SPOTIFY_BATCH_LOOKUPS") == "1",
        )
    return OfflineCatalogResource(seed=_env_int("SIMULATOR_SEED", 7))


__all__ = [
    "IdentityResource",
    "LakeResource",
    "SimulatorResource",
    "SpotifyCatalogResource",
    "WarehouseResource",
    "build_resources",
    "resolved",
]
