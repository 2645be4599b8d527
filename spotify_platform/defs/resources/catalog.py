"""Spotify catalog: an abstract resource, with the offline catalog as the embedded default.

Every implementation answers with Web API-shaped JSON (`fetch_*`), which the assets land in
the lake before parsing, so offline and live runs leave the same raw trail.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence

import pandas as pd
from dagster import ConfigurableResource
from pydantic import PrivateAttr

from spotify_platform.core.sources.api_payloads import (
    ARTIST_FIELDS,
    TRACK_FIELDS,
    parse_artists,
    parse_tracks,
)
from spotify_platform.core.sources.simulator import Catalog, build_catalog

TRACK_COLUMNS = list(TRACK_FIELDS)
ARTIST_COLUMNS = list(ARTIST_FIELDS)


class SpotifyCatalogResource(ConfigurableResource, ABC):
    """Track and artist details by Spotify id; unknown ids are simply absent from the result."""

    @abstractmethod
    def fetch_tracks(self, track_ids: Sequence[str]) -> list[dict]:
        """Track objects as `GET /tracks/{id}` returns them, for the ids the catalog knows."""

    @abstractmethod
    def fetch_artists(self, artist_ids: Sequence[str]) -> list[dict]:
        """Artist objects as `GET /artists/{id}` returns them."""

    def tracks(self, track_ids: Sequence[str]) -> pd.DataFrame:
        return parse_tracks(self.fetch_tracks(track_ids))

    def artists(self, artist_ids: Sequence[str]) -> pd.DataFrame:
        return parse_artists(self.fetch_artists(artist_ids))


class OfflineCatalogResource(SpotifyCatalogResource):
    """The simulator's catalog: lets the platform run without network or credentials."""

    seed: int = 7

    _catalog: Catalog | None = PrivateAttr(default=None)

    def _get(self) -> Catalog:
        if self._catalog is None:
            self._catalog = build_catalog(seed=self.seed)
        return self._catalog

    def fetch_tracks(self, track_ids: Sequence[str]) -> list[dict]:
        tracks = self._get().tracks
        found = tracks[tracks["track_id"].isin(list(track_ids))]
        return [
            {
                "id": row.track_id,
                "name": row.track_name,
                "duration_ms": int(row.duration_ms),
                "popularity": int(row.popularity),
                "explicit": bool(row.explicit),
                "artists": [{"id": row.artist_id, "name": row.artist_name}],
                "album": {"name": row.album_name},
                "type": "track",
            }
            for row in found.itertuples(index=False)
        ]

    def fetch_artists(self, artist_ids: Sequence[str]) -> list[dict]:
        artists = self._get().artists
        found = artists[artists["artist_id"].isin(list(artist_ids))]
        return [
            {
                "id": row.artist_id,
                "name": row.artist_name,
                "genres": list(row.genres),
                "type": "artist",
            }
            for row in found.itertuples(index=False)
        ]
