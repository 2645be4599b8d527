"""The key that pseudonymises account names; from ACCOUNT_HMAC_KEY, else a local key file."""

import os
import secrets
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

DEFAULT_KEY_FILE = ".data/account_hmac.key"


class IdentityResource(ConfigurableResource):
    """Holds the HMAC key; the key never appears in metadata, logs or errors.

    Without `hmac_key` (the embedded default) a random key is generated once into `key_file`,
    so pseudonyms stay stable across runs on one machine. Production sets ACCOUNT_HMAC_KEY.
    """

    hmac_key: str | None = Field(default=None, repr=False, description="ACCOUNT_HMAC_KEY")
    key_file: str = DEFAULT_KEY_FILE

    def key(self) -> bytes:
        if self.hmac_key:
            return self.hmac_key.encode("utf-8")
        path = Path(self.key_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return path.read_text().strip().encode("utf-8")
