"""Raw listening records as tests land them: the lake's raw shape and an export's own."""

from __future__ import annotations


def play(ts: object, account: str = "listener-x", ms: object = 185_000, **fields: object) -> dict:
    """One raw listening record: Extended Streaming History fields plus `account_id`."""
    record: dict[str, object] = {
        "ts": ts,
        "platform": "android",
        "ms_played": ms,
        "conn_country": "DE",
        "master_metadata_track_name": "Song",
        "master_metadata_album_artist_name": "Band",
        "master_metadata_album_album_name": "Album",
        "spotify_track_uri": None,
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "incognito_mode": False,
        "account_id": account,
    }
    record.update(fields)
    return record


def export_play(ts: str, offline_timestamp: int) -> dict:
    """One record of an Extended Streaming History export, played offline, with its IP."""
    return {
        "ts": ts,
        "platform": "ios",
        "ms_played": 200_000,
        "conn_country": "SE",
        "ip_addr": "198.51.100.7",
        "master_metadata_track_name": "Offline Song",
        "master_metadata_album_artist_name": "Offline Band",
        "master_metadata_album_album_name": "Offline Album",
        "spotify_track_uri": "spotify:track:4iV5W9uYEdYUVa79Axb7Rh",
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": False,
        "offline": True,
        "offline_timestamp": offline_timestamp,
        "incognito_mode": False,
    }
