"""The live Spotify Web API through spotipy: the catalog resource and recently-played client.

Shaped by the API as it behaves in 2026:

- Development-mode apps get 403 from the batch lookups, so single lookups are the default and
  the batch path sits behind `batch_lookups`, falling back to single lookups on 403.
- 429 answers carry `Retry-After` values up to 86,400 s. spotipy's own retry would sleep that
  long, so spotipy runs with `retries=0` on a session of ours whose urllib3 `Retry` only handles
  5xx and ignores `Retry-After`; short waits are slept here, long ones raise
  `SpotifyRateLimited` at once so the run fails fast and says when to come back.
- spotipy logs Authorization headers and token request bodies at DEBUG and caches tokens in a
  `.cache` file: its loggers are held at INFO and redacted, and tokens live in memory only.
"""

import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
import spotipy
from pydantic import Field, PrivateAttr
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOAuth
from urllib3.util.retry import Retry

from spotify_platform.core.sources.api_payloads import (
    recently_played_records,
)
from spotify_platform.defs.resources.catalog import SpotifyCatalogResource

DEFAULT_API_URL = "https://api.spotify.com/v1/"
DEFAULT_AUTH_URL = "https://accounts.spotify.com/api/token"
RETRY_STATUSES = (500, 502, 503, 504)
BATCH_SIZE = 50
MAX_INLINE_WAITS = 3
RECENTLY_PLAYED_SCOPE = "user-read-recently-played"
# Only used by the interactive authorization-code flow, which this module never runs.
_UNUSED_REDIRECT_URI = "http://127.0.0.1:8888/callback"
_OFFICIAL_API_HOST = urlsplit(DEFAULT_API_URL).netloc

logger = logging.getLogger(__name__)
T = TypeVar("T")


class SpotifyRateLimited(RuntimeError):
    """Spotify answered 429 with a wait too long to sleep through inside a run."""

    def __init__(self, retry_after: int, endpoint: str | None = None) -> None:
        self.retry_after = retry_after
        self.endpoint = endpoint
        where = f" ({endpoint})" if endpoint else ""
        super().__init__(f"Spotify API rate limit: retry after {retry_after} s{where}")


class SpotifyApiError(RuntimeError):
    """Any other Web API or token failure; the message names status and path, never secrets."""

    def __init__(self, message: str, status: int | None = None, endpoint: str | None = None):
        self.status = status
        self.endpoint = endpoint
        super().__init__(message)


# -- secrets in logs ---------------------------------------------------------------------------

_SECRET_PATTERNS = (
    re.compile(r"(?i)(\b(?:Bearer|Basic)\s+)[^\s'\",;}]+"),
    re.compile(
        r"""(?i)(['"]?(?:access_token|refresh_token|client_secret)['"]?\s*[:=]\s*['"]?)"""
        r"""[^\s'\",&;}]+"""
    ),
)
_NOISY_LOGGERS = ("spotipy", "urllib3")
_REDACTED_LOGGERS = (
    "spotipy", "spotipy.client", "spotipy.oauth2", "spotipy.cache_handler", "spotipy.util",
    "urllib3", "urllib3.connectionpool", "urllib3.util.retry", __name__,
)


def redact(text: str) -> str:
    """Text with Bearer/Basic credentials and token or secret values replaced by [REDACTED]."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1[REDACTED]", text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Rewrites log records so credentials never reach a handler, whatever the logger level."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def protect_logs() -> None:
    """Hold spotipy and urllib3 at INFO or above and redact their records (idempotent).

    The level keeps the DEBUG lines that carry headers and token bodies from being made at all;
    the filter still redacts them when someone lowers the level on purpose to debug.
    """
    for name in _NOISY_LOGGERS:
        named = logging.getLogger(name)
        if named.level < logging.INFO:
            named.setLevel(logging.INFO)
    for name in _REDACTED_LOGGERS:
        named = logging.getLogger(name)
        if not any(isinstance(f, RedactSecretsFilter) for f in named.filters):
            named.addFilter(RedactSecretsFilter())


protect_logs()


# -- HTTP --------------------------------------------------------------------------------------


def build_session(
    max_retries: int = 3,
    backoff_factor: float = 0.5,
    backoff_jitter: float = 0.25,
    backoff_max: float = 10.0,
) -> requests.Session:
    """A session that retries 5xx and connection errors with bounded backoff, but never 429.

    `respect_retry_after_header=False` stops urllib3 from sleeping for a `Retry-After` of hours;
    `raise_on_status=False` hands the last 5xx back so the error names its real status.
    """
    retry = Retry(
        total=max_retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST"}),
        backoff_factor=backoff_factor,
        backoff_jitter=backoff_jitter,
        backoff_max=backoff_max,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def request_timeouts(timeout_s: float) -> tuple[float, float]:
    """(connect, read) timeouts for requests; connecting never needs more than a few seconds."""
    return (min(5.0, timeout_s), timeout_s)


def _retry_after_seconds(headers: object) -> int:
    """`Retry-After` in whole seconds (delta or HTTP date); 1 when Spotify leaves it out."""
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return 1
    try:
        return max(0, math.ceil(float(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return 1
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, math.ceil((when - datetime.now(UTC)).total_seconds()))


def _normalise_api_url(api_url: str) -> str:
    return api_url.rstrip("/") + "/"


def _path(url: str) -> str:
    """A URL's path only: query strings never reach messages."""
    return urlsplit(url).path or url


def _forget_token(cache: MemoryCacheHandler) -> None:
    """After a 401: expire a user token (its refresh token survives) or drop an app token."""
    info = cache.get_cached_token()
    if isinstance(info, dict) and info.get("refresh_token"):
        cache.save_token_to_cache({**info, "expires_at": 0})
    else:
        cache.save_token_to_cache(None)


class _ApiCaller:
    """One spotipy client plus the error policy every call shares."""

    def __init__(
        self,
        sp: spotipy.Spotify,
        cache: MemoryCacheHandler,
        max_inline_wait_s: int,
        credential_hint: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sp = sp
        self.cache = cache
        self.max_inline_wait_s = max_inline_wait_s
        self.credential_hint = credential_hint
        self.sleep = sleep

    def call(
        self, endpoint: str, fn: Callable[[], T], tolerate: Iterable[int] = ()
    ) -> T | None:
        """Run one request: sleep short 429s, refresh once on 401, None for tolerated statuses."""
        tolerated = frozenset(tolerate)
        waits = 0
        refreshed = False
        while True:
            try:
                return fn()
            except SpotifyException as exc:
                status = exc.http_status
                if status == 429:
                    retry_after = _retry_after_seconds(exc.headers)
                    if retry_after > self.max_inline_wait_s or waits >= MAX_INLINE_WAITS:
                        raise SpotifyRateLimited(retry_after, endpoint) from None
                    waits += 1
                    logger.warning(
                        "Spotify API rate limit on %s: waiting %s s (%s/%s)",
                        endpoint, retry_after, waits, MAX_INLINE_WAITS,
                    )
                    self.sleep(retry_after)
                    continue
                if status == 401 and not refreshed:
                    refreshed = True
                    logger.info("Spotify API answered 401 on %s: fetching a new token", endpoint)
                    _forget_token(self.cache)
                    continue
                if status in tolerated:
                    return None
                reason = f", {exc.reason}" if exc.reason else ""
                raise SpotifyApiError(
                    f"Spotify API error {status} on {endpoint}{reason}",
                    status=status,
                    endpoint=endpoint,
                ) from None
            except SpotifyOauthError as exc:
                detail = str(exc.error or "error")[:200]
                if exc.error_description:
                    detail += f": {str(exc.error_description)[:200]}"
                raise SpotifyApiError(
                    redact(f"Spotify refused the token request for {self.credential_hint} "
                           f"({detail})"),
                    endpoint=endpoint,
                ) from None
            except requests.RequestException as exc:
                raise SpotifyApiError(
                    f"Spotify API unreachable on {endpoint}: {type(exc).__name__}",
                    endpoint=endpoint,
                ) from None


def _spotify_client(
    auth_manager: SpotifyClientCredentials | SpotifyOAuth,
    session: requests.Session,
    api_url: str,
    timeout_s: float,
) -> spotipy.Spotify:
    sp = spotipy.Spotify(
        auth_manager=auth_manager,
        requests_session=session,
        retries=0,
        status_retries=0,
        requests_timeout=request_timeouts(timeout_s),
    )
    sp.prefix = _normalise_api_url(api_url)
    return sp


# -- catalog -----------------------------------------------------------------------------------


class LiveCatalogResource(SpotifyCatalogResource):
    """Track and artist details from the Web API with app (client-credentials) tokens.

    `fetch_*` return the raw JSON objects so a caller can land them in the lake before parsing;
    `tracks()` / `artists()` are `parse_*(fetch_*())`.
    """

    client_id: str = Field(description="Spotify app client id.")
    client_secret: str = Field(repr=False, description="Spotify app client secret.")
    api_url: str = Field(default=DEFAULT_API_URL, description="Web API base URL.")
    auth_url: str = Field(default=DEFAULT_AUTH_URL, description="Accounts token endpoint.")
    batch_lookups: bool = Field(
        default=False,
        description="Use GET /tracks?ids= and /artists?ids= (extended-quota apps only).",
    )
    max_inline_wait_s: int = Field(
        default=30, description="Longest 429 Retry-After slept through; longer ones fail the run."
    )
    timeout_s: float = Field(default=10, description="Read timeout per request, in seconds.")
    max_retries: int = Field(default=3, description="Retries on 5xx and connection errors.")
    backoff_factor: float = Field(default=0.5, description="urllib3 backoff factor for retries.")

    _caller: _ApiCaller | None = PrivateAttr(default=None)
    _batch_refused: bool = PrivateAttr(default=False)

    def _api(self) -> _ApiCaller:
        if self._caller is None:
            session = build_session(self.max_retries, self.backoff_factor)
            cache = MemoryCacheHandler()
            auth = SpotifyClientCredentials(
                client_id=self.client_id,
                client_secret=self.client_secret,
                requests_session=session,
                requests_timeout=request_timeouts(self.timeout_s),
                cache_handler=cache,
            )
            auth.OAUTH_TOKEN_URL = self.auth_url
            sp = _spotify_client(auth, session, self.api_url, self.timeout_s)
            self._caller = _ApiCaller(
                sp, cache, self.max_inline_wait_s,
                credential_hint="the app's client credentials (SPOTIFY_CLIENT_ID/SECRET)",
            )
        return self._caller

    def fetch_tracks(self, track_ids: Sequence[str]) -> list[dict]:
        """Raw track objects for the ids Spotify knows; removed tracks (404) are left out."""
        return self._fetch("track", track_ids)

    def fetch_artists(self, artist_ids: Sequence[str]) -> list[dict]:
        """Raw artist objects for the ids Spotify knows."""
        return self._fetch("artist", artist_ids)

    def _fetch(self, kind: str, ids: Sequence[str]) -> list[dict]:
        api = self._api()
        pending = list(dict.fromkeys(i for i in ids if i))
        found: list[dict] = []
        if self.batch_lookups and not self._batch_refused:
            pending = self._fetch_batches(api, kind, pending, found)
        single = api.sp.track if kind == "track" else api.sp.artist
        # 404: removed from the catalog; 400: an id Spotify (or spotipy) cannot parse. Neither
        # is known to the catalog, so both are simply absent, as the contract says.
        for object_id in pending:
            payload = api.call(
                f"GET /{kind}s/{object_id}",
                lambda object_id=object_id: single(object_id),
                tolerate=(400, 404),
            )
            if isinstance(payload, dict):
                found.append(payload)
        return found

    def _fetch_batches(
        self, api: _ApiCaller, kind: str, ids: list[str], found: list[dict]
    ) -> list[str]:
        """Fill `found` batch by batch; returns the ids still to look up one by one."""
        batch = api.sp.tracks if kind == "track" else api.sp.artists
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            payload = api.call(f"GET /{kind}s?ids=", lambda chunk=chunk: batch(chunk), (403,))
            if payload is None:
                self._batch_refused = True
                logger.warning(
                    "Spotify refused the batch %s lookup (403): this app has no extended quota; "
                    "using single lookups",
                    kind,
                )
                return ids[start:]
            found.extend(p for p in payload.get(f"{kind}s") or [] if isinstance(p, dict))
        return []


# -- recently played ---------------------------------------------------------------------------


class _RefreshTokenOAuth(SpotifyOAuth):
    """The refresh-token half of SpotifyOAuth: never prompts, opens a browser or writes `.cache`."""

    def get_auth_response(self, open_browser: bool | None = None) -> str:
        raise SpotifyOauthError(
            "the stored token does not cover the scope", error="authorization_required"
        )


class RecentlyPlayedClient:
    """One account's latest plays through user OAuth, from a stored refresh token.

    The endpoint returns at most the 50 latest plays and its cursors cannot reach further back,
    so this must run more often than an account plays 50 tracks to miss nothing.
    """

    def __init__(
        self,
        *,
        account: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        api_url: str = DEFAULT_API_URL,
        auth_url: str = DEFAULT_AUTH_URL,
        max_inline_wait_s: int = 30,
        timeout_s: float = 10,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        max_pages: int = 10,
    ) -> None:
        self.account = account
        self.api_url = _normalise_api_url(api_url)
        self.max_pages = max_pages
        session = build_session(max_retries, backoff_factor)
        cache = MemoryCacheHandler(
            token_info={
                "access_token": "",
                "token_type": "Bearer",
                "expires_at": 0,
                "refresh_token": refresh_token,
                "scope": RECENTLY_PLAYED_SCOPE,
            }
        )
        auth = _RefreshTokenOAuth(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=_UNUSED_REDIRECT_URI,
            scope=RECENTLY_PLAYED_SCOPE,
            requests_session=session,
            requests_timeout=request_timeouts(timeout_s),
            open_browser=False,
            cache_handler=cache,
        )
        auth.OAUTH_TOKEN_URL = auth_url
        self._api = _ApiCaller(
            _spotify_client(auth, session, self.api_url, timeout_s),
            cache,
            max_inline_wait_s,
            credential_hint=f"account {account!r}: its refresh token is revoked or invalid, "
            "the account must authorise the app again",
        )

    def __repr__(self) -> str:
        return f"RecentlyPlayedClient(account={self.account!r}, api_url={self.api_url!r})"

    def fetch_pages(self, after: int | None = None, limit: int = 50) -> list[dict]:
        """Raw recently-played pages, following `next` links; `after` is a ms epoch cursor."""
        endpoint = "GET /me/player/recently-played"
        sp = self._api.sp
        page = self._api.call(
            endpoint, lambda: sp.current_user_recently_played(limit=limit, after=after)
        )
        pages: list[dict] = []
        followed: set[str] = set()
        while isinstance(page, dict):
            pages.append(page)
            link = page.get("next")
            if not link or not page.get("items") or len(pages) >= self.max_pages:
                break
            url = self._api_link(link)
            if url in followed:
                break
            followed.add(url)
            page = self._api.call(endpoint, lambda url=url: sp.next({"next": url}))
        return pages

    def records(self, after: int | None = None, limit: int = 50) -> list[dict]:
        """Raw listening records (RAW_FIELDS) for the plays after the `after` cursor."""
        pages = self.fetch_pages(after, limit)
        items = [item for page in pages for item in page.get("items") or []]
        return recently_played_records(items, account_id=self.account)

    def _api_link(self, link: str) -> str:
        """A pagination link pointed at `api_url`, so the bearer token goes nowhere else.

        Links naming api.spotify.com are rebased onto `api_url` (a proxy or test server);
        links to any other host are refused.
        """
        base = urlsplit(self.api_url)
        parts = urlsplit(link)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc) and parts.path.startswith(
            base.path
        ):
            return link
        official = urlsplit(DEFAULT_API_URL)
        if parts.netloc == _OFFICIAL_API_HOST and parts.path.startswith(official.path):
            rest = parts.path[len(official.path) :]
            return urlunsplit(
                (base.scheme, base.netloc, base.path + rest, parts.query, parts.fragment)
            )
        raise SpotifyApiError(
            f"Spotify pagination link leaves the API ({parts.netloc}{_path(link)}): "
            "not following it with the account's token",
            endpoint="GET /me/player/recently-played",
        )
