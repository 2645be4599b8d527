"""The lake as a Dagster resource: `LAKE_URL` and the S3 settings, over the core's store."""

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from spotify_platform.core.lake.store import DEFAULT_LAKE_URL, LakeStore


class LakeResource(ConfigurableResource, LakeStore):
    """The lake behind `LAKE_URL`: `s3://BUCKET/PREFIX`, or `file://PATH` (the default)."""

    url: str = DEFAULT_LAKE_URL
    s3_endpoint_url: str | None = None
    region_name: str | None = None

    _client: object | None = PrivateAttr(default=None)
