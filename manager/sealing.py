"""``secret_env`` at rest: encrypted with a key the manager keeps beside its data.

A spec with secrets is stored with its ``secret_env`` cleared and a
``sealed_secret_env`` in its place: Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``) over the JSON of the map. The key comes from
``--secret-key-file`` or is generated once under the data dir
(``secret.key``, mode 0600). Reading the database alone yields no secret;
losing the key loses the stored secrets (the manager refuses to start on a
key that does not open them rather than run tasks without them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from corral.errors import FailedPrecondition, ValidationError

KEY_FILE = "secret.key"


def load_key(data_dir: Path, key_file: Path | None) -> bytes:
    """The key from ``key_file``, else ``<data-dir>/secret.key`` (made when absent)."""
    path = key_file or data_dir / KEY_FILE
    field = "secret_key_file"
    if not path.exists():
        if key_file is not None:
            raise ValidationError(field, f"{path} does not exist")
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
    key = path.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError:
        raise ValidationError(
            field, f"{path} is not a key (32 url-safe base64-encoded bytes)"
        ) from None
    return key


class Sealer:
    """Seals and opens one manager's secrets with its key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secret_env: Mapping[str, str]) -> bytes:
        return self._fernet.encrypt(json.dumps(dict(secret_env)).encode())

    def unseal(self, blob: bytes) -> dict[str, str]:
        try:
            return dict(json.loads(self._fernet.decrypt(blob)))
        except InvalidToken:
            raise FailedPrecondition(
                "stored secret_env does not open with this key: start the manager with the"
                " --secret-key-file it had"
            ) from None
