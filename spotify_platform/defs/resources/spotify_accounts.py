"""Connected Spotify accounts: the app credentials plus one refresh token per account.

Recently-played needs user OAuth, so each account authorises the app once and its refresh token
is kept as a secret, never in the repository:

- `accounts_file` (env `SPOTIFY_ACCOUNTS_FILE`): a JSON object `{"account name": "refresh
  token", ...}`, e.g. `.data/spotify_accounts.json` (git-ignored) on a laptop, or a mounted
  secret such as `/run/secrets/spotify_accounts.json` in production;
- `refresh_tokens_json` (env `SPOTIFY_REFRESH_TOKENS`): the same object as a JSON string.

Both may be set; a name in `refresh_tokens_json` wins over the file. Account names are the ones
exports are imported under, so staging pseudonymises both to the same account id. Tokens and the
client secret are excluded from repr and never appear in error messages.
"""

import json
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from spotify_platform.defs.resources.settings import env_or
from spotify_platform.defs.resources.spotify_web_api import (
    DEFAULT_API_URL,
    DEFAULT_AUTH_URL,
    RecentlyPlayedClient,
)


class SpotifyAccountsError(RuntimeError):
    """The accounts configuration is unusable; the message names the source, never a token."""


def _parse_mapping(text: str, source: str) -> dict[str, str]:
    """`{"name": "token"}` from JSON text; errors say where and what, not the content."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpotifyAccountsError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise SpotifyAccountsError(
            f"{source} must be a JSON object of account name to refresh token"
        )
    bad = sum(
        1
        for name, token in value.items()
        if not name.strip() or not isinstance(token, str) or not token.strip()
    )
    if bad:
        raise SpotifyAccountsError(
            f"{source}: {bad} entries lack a name or a refresh token (a non-empty string)"
        )
    return {name.strip(): token.strip() for name, token in value.items()}


class SpotifyAccountsResource(ConfigurableResource):
    """Which accounts are connected, and a recently-played client for each."""

    client_id: str | None = Field(default=None, description="Spotify app client id.")
    client_secret: str | None = Field(
        default=None, repr=False, description="Spotify app client secret."
    )
    api_url: str = Field(default=DEFAULT_API_URL, description="Web API base URL.")
    auth_url: str = Field(default=DEFAULT_AUTH_URL, description="Accounts token endpoint.")
    accounts_file: str | None = Field(
        default=None,
        description="Path of a JSON secrets file {account name: refresh token}; never committed.",
    )
    refresh_tokens_json: str | None = Field(
        default=None,
        repr=False,
        description="The same mapping as a JSON string (SPOTIFY_REFRESH_TOKENS).",
    )
    max_inline_wait_s: int = Field(
        default=30, description="Longest 429 Retry-After slept through; longer ones fail the run."
    )
    timeout_s: float = Field(default=10, description="Read timeout per request, in seconds.")

    def _tokens(self) -> dict[str, str]:
        tokens: dict[str, str] = {}
        if self.accounts_file:
            path = Path(self.accounts_file)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise SpotifyAccountsError(
                    f"accounts file {path} (SPOTIFY_ACCOUNTS_FILE) cannot be read: "
                    f"{exc.strerror or type(exc).__name__}"
                ) from None
            tokens.update(_parse_mapping(text, f"accounts file {path}"))
        if self.refresh_tokens_json:
            tokens.update(_parse_mapping(self.refresh_tokens_json, "SPOTIFY_REFRESH_TOKENS"))
        return tokens

    def connected(self) -> list[str]:
        """Names of the accounts that have a refresh token, sorted."""
        return sorted(self._tokens())

    def client(self, account: str) -> RecentlyPlayedClient:
        """A recently-played client for one connected account."""
        if not self.client_id or not self.client_secret:
            raise SpotifyAccountsError(
                "SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET must be set to fetch recently-played"
            )
        token = self._tokens().get(account)
        if token is None:
            raise SpotifyAccountsError("that account is not connected (no refresh token)")
        return RecentlyPlayedClient(
            account=account,
            client_id=self.client_id,
            client_secret=self.client_secret,
            refresh_token=token,
            api_url=self.api_url,
            auth_url=self.auth_url,
            max_inline_wait_s=self.max_inline_wait_s,
            timeout_s=self.timeout_s,
        )


def build_spotify_accounts() -> SpotifyAccountsResource:
    """The resource from the environment; secrets as EnvVars, resolved only at run time."""
    return SpotifyAccountsResource(
        client_id=env_or("SPOTIFY_CLIENT_ID"),
        client_secret=env_or("SPOTIFY_CLIENT_SECRET"),
        refresh_tokens_json=env_or("SPOTIFY_REFRESH_TOKENS"),
        accounts_file=env_or("SPOTIFY_ACCOUNTS_FILE"),
        api_url=env_or("SPOTIFY_API_URL", DEFAULT_API_URL),
        auth_url=env_or("SPOTIFY_AUTH_URL", DEFAULT_AUTH_URL),
    )

