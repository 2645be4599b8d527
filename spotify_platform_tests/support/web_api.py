"""Local servers that answer like Spotify's Web API and accounts service.

Both are pytest-httpserver with one handler that routes like Spotify. `FakeSpotify` serves the
catalog (single and batch lookups), one connected account's recently-played with absolute
`next` links, and scripted failures (429 with Retry-After, 5xx, 401) queued per path.
`FakeWebApi` knows several accounts by refresh token and, like Spotify, only reaches each
account's 50 latest plays.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
from collections import defaultdict, deque
from urllib.parse import parse_qs

from werkzeug import Request, Response

from spotify_platform.defs.resources.spotify_accounts import SpotifyAccountsResource
from spotify_platform.defs.resources.spotify_web_api import (
    LiveCatalogResource,
    RecentlyPlayedClient,
)

CLIENT_ID = "app-client-id"
CLIENT_SECRET = "client-secret-" + secrets.token_hex(8)
REFRESH_TOKEN = "refresh-token-" + secrets.token_hex(8)
BASIC = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

T1, T2, T_GONE = "4iV5W9uYEdYUVa79Axb7Rh", "1301WleyT98MSxVHPZCA6M", "0000000000000000000000"
A1 = "0OdUWJ0sBjDrqHygGUXeCF"

ALICE = "alice.listener@example.com"
BOB = "bob.revoked@example.com"
TOKENS = {
    ALICE: "refresh-alice-" + secrets.token_hex(8),
    BOB: "refresh-bob-" + secrets.token_hex(8),
}
WINDOW = 50  # the endpoint reaches an account's 50 latest plays, no further
RECENT = "/v1/me/player/recently-played"


def track(track_id: str, name: str, **extra: object) -> dict:
    """A 2026 development-mode track object: no popularity, no available_markets."""
    return {
        "id": track_id,
        "type": "track",
        "uri": f"spotify:track:{track_id}",
        "name": name,
        "duration_ms": 200_000,
        "explicit": False,
        "artists": [{"id": A1, "name": "Band of Horses", "type": "artist"}],
        "album": {"id": "alb" + track_id[:19], "name": "Everything All the Time"},
        **extra,
    }


def numbered_track(n: int) -> dict:
    """Track `n` of a recently-played history: an id of 22 digits, a name from its number."""
    track_id = f"{n:022d}"
    return {
        "id": track_id,
        "type": "track",
        "uri": f"spotify:track:{track_id}",
        "name": f"Track {n}",
        "duration_ms": 200_000,
        "artists": [{"id": A1, "name": "Band of Horses"}],
        "album": {"name": "Everything All the Time"},
    }


def artist(artist_id: str, name: str, **extra: object) -> dict:
    """A 2026 artist object: no followers, no popularity, genres only sometimes."""
    return {"id": artist_id, "type": "artist", "name": name, **extra}


def error_body(status: int, message: str) -> dict:
    return {"error": {"status": status, "message": message}}


def iso_ms(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


class FakeServer:
    """Every request to the httpserver is recorded, then answered by the subclass's `handle`."""

    def __init__(self, httpserver) -> None:
        self.server = httpserver
        self.requests: list[tuple[str, str, dict]] = []
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self.receive)

    @property
    def api_url(self) -> str:
        return self.server.url_for("/v1/")

    @property
    def auth_url(self) -> str:
        return self.server.url_for("/api/token")

    def receive(self, request: Request) -> Response:
        query = {k: v[-1] for k, v in parse_qs(request.query_string.decode()).items()}
        self.requests.append((request.method, request.path, query))
        return self.handle(request, query)

    def handle(self, request: Request, query: dict) -> Response:
        raise NotImplementedError

    @staticmethod
    def json(body: object, status: int = 200, headers: dict | None = None) -> Response:
        return Response(json.dumps(body), status, headers, content_type="application/json")


class FakeSpotify(FakeServer):
    """The catalog, one connected account and scripted failures, as the Web API answers."""

    def __init__(self, httpserver) -> None:
        super().__init__(httpserver)
        self.tracks: dict[str, dict] = {T1: track(T1, "The Funeral"), T2: track(T2, "Laredo")}
        self.artists: dict[str, dict] = {A1: artist(A1, "Band of Horses", genres=["indie"])}
        self.batch_allowed = False
        self.valid_tokens: set[str] = set()
        self.issued: list[str] = []
        self.refresh_tokens = {REFRESH_TOKEN}
        self.scripted: dict[str, deque[tuple[int, dict, dict]]] = defaultdict(deque)
        self.plays: list[dict] = []
        self.next_base = httpserver.url_for("/v1/")

    def script(self, path: str, status: int, headers: dict | None = None, times: int = 1) -> None:
        for _ in range(times):
            self.scripted[path].append((status, headers or {}, error_body(status, "scripted")))

    def paths(self, method: str = "GET") -> list[str]:
        return [p for m, p, _ in self.requests if m == method]

    def catalog(self, **config: object) -> LiveCatalogResource:
        return LiveCatalogResource(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_url=self.api_url,
            auth_url=self.auth_url,
            **config,
        )

    def recently_played(self, account: str = "alice", **config: object) -> RecentlyPlayedClient:
        return RecentlyPlayedClient(
            account=account,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            refresh_token=REFRESH_TOKEN,
            api_url=self.api_url,
            auth_url=self.auth_url,
            **config,
        )

    def handle(self, request: Request, query: dict) -> Response:
        if request.path in self.scripted and self.scripted[request.path]:
            status, headers, body = self.scripted[request.path].popleft()
            return self.json(body, status, headers)
        if request.path == "/api/token" and request.method == "POST":
            return self.token(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self.valid_tokens:
            return self.json(error_body(401, "Invalid access token"), 401)
        parts = request.path.strip("/").split("/")
        if parts[:1] != ["v1"]:
            return self.json(error_body(404, "Service not found"), 404)
        return self.route(parts[1:], query)

    def route(self, parts: list[str], query: dict) -> Response:
        kind = parts[0] if parts else ""
        if kind in ("tracks", "artists") and (len(parts) == 1 or parts[1] == ""):
            if not self.batch_allowed:
                return self.json(error_body(403, "Forbidden"), 403)
            store = self.tracks if kind == "tracks" else self.artists
            return self.json({kind: [store.get(i) for i in query.get("ids", "").split(",")]})
        if kind in ("tracks", "artists") and len(parts) == 2:
            store = self.tracks if kind == "tracks" else self.artists
            found = store.get(parts[1])
            if found is None:
                return self.json(error_body(404, "Resource not found"), 404)
            return self.json(found)
        if parts == ["me", "player", "recently-played"]:
            return self.json(self.recent_page(query))
        return self.json(error_body(404, "Service not found"), 404)

    def token(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Basic {BASIC}":
            return self.json({"error": "invalid_client", "error_description": "Bad client"}, 400)
        form = request.form
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return self.json(
                    {"error": "invalid_grant", "error_description": "Refresh token revoked"}, 400
                )
        elif form.get("grant_type") != "client_credentials":
            return self.json({"error": "unsupported_grant_type"}, 400)
        access = f"access-token-{len(self.issued)}-{secrets.token_hex(8)}"
        self.issued.append(access)
        self.valid_tokens.add(access)
        return self.json({"access_token": access, "token_type": "Bearer", "expires_in": 3600})

    def recent_page(self, query: dict) -> dict:
        limit = int(query.get("limit", 20))
        plays = self.plays
        if "after" in query:
            plays = [p for p in plays if p["_ms"] > int(query["after"])]
        if "before" in query:
            plays = [p for p in plays if p["_ms"] < int(query["before"])]
        page = plays[:limit]
        more = len(plays) > limit
        cursor = page[-1]["_ms"] if page else None
        return {
            "href": f"{self.next_base}me/player/recently-played?limit={limit}",
            "items": [{k: v for k, v in p.items() if k != "_ms"} for p in page],
            "next": f"{self.next_base}me/player/recently-played?before={cursor}&limit={limit}"
            if more
            else None,
            "cursors": {"after": str(page[0]["_ms"]), "before": str(cursor)} if page else None,
            "limit": limit,
        }

    def add_plays(self, count: int) -> list[dt.datetime]:
        """Plays newest first, as the endpoint lists them."""
        start = dt.datetime(2026, 3, 1, 12, 0, 0, 123_000, tzinfo=dt.UTC)
        moments = [start - dt.timedelta(minutes=4 * i) for i in range(count)]
        ids = [T1, T2]
        for i, moment in enumerate(moments):
            self.plays.append(
                {
                    "_ms": ms(moment),
                    "played_at": iso_ms(moment),
                    "track": self.tracks[ids[i % 2]],
                    "context": None,
                }
            )
        return moments


class FakeWebApi(FakeServer):
    """Token endpoint and recently-played for several accounts, with scripted refusals."""

    def __init__(self, httpserver) -> None:
        super().__init__(httpserver)
        self.plays: dict[str, list[dict]] = {token: [] for token in TOKENS.values()}
        self.revoked: set[str] = set()
        self.owner: dict[str, str] = {}
        self.retry_after: str | None = None
        self.ignore_after = False

    def accounts(self, **config: object) -> SpotifyAccountsResource:
        return SpotifyAccountsResource(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_url=self.api_url,
            auth_url=self.auth_url,
            **{"refresh_tokens_json": json.dumps(TOKENS), **config},
        )

    def play(self, account: str, moments: list[dt.datetime]) -> None:
        plays = self.plays[TOKENS[account]]
        for i, moment in enumerate(moments):
            plays.append(
                {"_ms": ms(moment), "played_at": iso_ms(moment), "track": numbered_track(i)}
            )
        plays.sort(key=lambda p: -p["_ms"])

    def recent_queries(self) -> list[dict]:
        return [q for m, p, q in self.requests if p == RECENT]

    def handle(self, request: Request, query: dict) -> Response:
        if request.path == "/api/token" and request.method == "POST":
            return self.token(request)
        if self.retry_after is not None:
            return self.json(
                error_body(429, "API rate limit exceeded"), 429, {"Retry-After": self.retry_after}
            )
        auth = request.headers.get("Authorization", "")
        refresh = self.owner.get(auth.removeprefix("Bearer "))
        if refresh is None or refresh in self.revoked:
            return self.json(error_body(401, "Invalid access token"), 401)
        if request.path != RECENT:
            return self.json(error_body(404, "Service not found"), 404)
        return self.json(self.page(self.plays[refresh][:WINDOW], query))

    def token(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Basic {BASIC}":
            return self.json({"error": "invalid_client", "error_description": "Bad client"}, 400)
        refresh = request.form.get("refresh_token")
        if request.form.get("grant_type") != "refresh_token" or refresh not in self.plays:
            return self.json({"error": "invalid_grant", "error_description": "Bad token"}, 400)
        if refresh in self.revoked:
            return self.json(
                {"error": "invalid_grant", "error_description": "Refresh token revoked"}, 400
            )
        access = f"access-{secrets.token_hex(8)}"
        self.owner[access] = refresh
        return self.json({"access_token": access, "token_type": "Bearer", "expires_in": 3600})

    def page(self, plays: list[dict], query: dict) -> dict:
        limit = int(query.get("limit", 20))
        if "after" in query and not self.ignore_after:
            plays = [p for p in plays if p["_ms"] > int(query["after"])]
        if "before" in query:
            plays = [p for p in plays if p["_ms"] < int(query["before"])]
        page = plays[:limit]
        base = self.api_url
        return {
            "items": [{k: v for k, v in p.items() if k != "_ms"} for p in page],
            "next": f"{base}me/player/recently-played?before={page[-1]['_ms']}&limit={limit}"
            if len(plays) > limit
            else None,
            "cursors": {"after": str(page[0]["_ms"]), "before": str(page[-1]["_ms"])}
            if page
            else None,
            "limit": limit,
        }


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        assert CLIENT_SECRET not in text
        assert BASIC not in text
        assert REFRESH_TOKEN not in text


def assert_no_tokens(spotify: FakeSpotify, *texts: str) -> None:
    assert spotify.issued, "no token was issued, so the check would prove nothing"
    assert_no_secrets(*texts)
    for text in texts:
        for token in spotify.issued:
            assert token not in text


def only(account: str) -> dict[str, str]:
    """The refresh-token mapping of one of `FakeWebApi`'s accounts."""
    return {account: TOKENS[account]}
