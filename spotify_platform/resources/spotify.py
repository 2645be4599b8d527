"""Spotify catalog: an abstract resource, with the offline catalog as the embedded default."""

from abc import ABC, abstractmethod
from collections.abc import Sequence

import pandas as pd
from dagster import ConfigurableResource
from pydantic import PrivateAttr

from spotify_platform.sources.simulator import Catalog, build_catalog

TRACK_COLUMNS = [
    "track_id", "track_name", "spotify_artist_id", "artist_name", "album_name", "duration_ms",
    "popularity", "explicit",
]
ARTIST_COLUMNS = ["spotify_artist_id", "artist_name", "genres"]


class SpotifyCatalogResource(ConfigurableResource, ABC):
    """Track and artist details by Spotify id; unknown ids are simply absent from the result."""

    @abstractmethod
    def tracks(self, track_ids: Sequence[str]) -> pd.DataFrame:
        """Rows with TRACK_COLUMNS for the ids the catalog knows."""

    @abstractmethod
    def artists(self, artist_ids: Sequence[str]) -> pd.DataFrame:
        """Rows with ARTIST_COLUMNS (genres: list of str, possibly empty)."""


class OfflineCatalogResource(SpotifyCatalogResource):
    """The simulator's catalog: lets the platform run without network or credentials."""

    seed: int = 7

    _catalog: Catalog | None = PrivateAttr(default=None)

    def _get(self) -> Catalog:
        if self._catalog is None:
            self._catalog = build_catalog(seed=self.seed)
        return self._catalog

    def tracks(self, track_ids: Sequence[str]) -> pd.DataFrame:
        tracks = self._get().tracks
        found = tracks[tracks["track_id"].isin(list(track_ids))]
        return found.rename(columns={"artist_id": "spotify_artist_id"})[TRACK_COLUMNS].reset_index(
            drop=True
        )

    def artists(self, artist_ids: Sequence[str]) -> pd.DataFrame:
        artists = self._get().artists
        found = artists[artists["artist_id"].isin(list(artist_ids))]
        return found.rename(columns={"artist_id": "spotify_artist_id"})[ARTIST_COLUMNS].reset_index(
            drop=True
        )
