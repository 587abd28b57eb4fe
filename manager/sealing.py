"""``secret_env`` at rest: encrypted with a key the manager keeps beside its data.

A spec with secrets is stored with its ``secret_env`` cleared and a
``sealed_secret_env`` in its place: Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``) over the JSON of the map, prefixed by the key's id. The key
comes from ``--secret-key-file`` or is generated once under the data dir
(``secret.key``, mode 0600). Reading the database alone yields no secret.

The key is process-wide because both stores encode specs in module
functions (``manager.store.encode_spec``); a sealed value names its key, so
a process that opened several managers (tests) still opens each one's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from corral.errors import FailedPrecondition, ValidationError

KEY_FILE = "secret.key"
_PREFIX = b"v1:"
_keys: dict[bytes, Fernet] = {}
_current: list[bytes] = []


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).hexdigest()[:16].encode()


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


def use(key: bytes) -> None:
    """Seal new values with ``key``; keep it to open what it sealed."""
    ident = key_id(key)
    _keys[ident] = Fernet(key)
    _current[:] = [ident]


def seal(secret_env: Mapping[str, str]) -> bytes:
    if not _current:
        raise FailedPrecondition("no key to seal secret_env with (the manager sets one at start)")
    ident = _current[0]
    return _PREFIX + ident + b":" + _keys[ident].encrypt(json.dumps(dict(secret_env)).encode())


def unseal(blob: bytes) -> dict[str, str]:
    if not blob.startswith(_PREFIX):
        raise FailedPrecondition("sealed secret_env in an unknown format")
    ident, _, token = blob[len(_PREFIX) :].partition(b":")
    fernet = _keys.get(ident)
    if fernet is None:
        raise FailedPrecondition(
            "secret_env was sealed with another key: start the manager with the"
            " --secret-key-file it had"
        )
    try:
        return dict(json.loads(fernet.decrypt(token)))
    except InvalidToken:
        raise FailedPrecondition("sealed secret_env does not open with its key") from None
