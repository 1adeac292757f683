"""The project key and everything derived from it.

One secret key per project makes every replacement stable (the same original UID, patient or
date always becomes the same new value, across files, runs and uploads) and irreversible for
anyone without the key. Each derivation uses HMAC-SHA256 with its own domain label so that,
for example, a patient's pseudonym can never be compared with a UID hash.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

MIN_KEY_BYTES = 32

# The 2.25 root takes a UUID-sized decimal integer (ITU-T X.667 / PS3.5 B.2); 128 bits keeps
# a new UID at most 44 characters, well inside the 64-character limit of VR UI.
UUID_DERIVED_UID_ROOT = "2.25."

# Date shifts move every date of one patient back by 1 to 3650 days (about ten years):
# wide enough that the true dates cannot be guessed, and always into the past, so a shifted
# date never lies in the future.
MAX_DATE_SHIFT_DAYS = 3650


class KeyFileError(ValueError):
    """A key file is missing, unreadable or too short."""


def new_key() -> bytes:
    """Return a fresh random key of 32 bytes."""
    return secrets.token_bytes(MIN_KEY_BYTES)


def new_key_file(path) -> bytes:
    """Create a key file (hex text, readable only by its owner) and return the key.

    Refuses to overwrite an existing file: losing a key breaks the link between uploads.
    """
    path = Path(path)
    key = new_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.hex() + "\n")
    return key


def load_key(path) -> bytes:
    """Read a key file written by `new_key_file` (hex text) and return the key bytes."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise KeyFileError(f"key file {path} cannot be read: {error}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"key file {path} does not hold a hexadecimal key") from None
    check_key(key, source=str(path))
    return key


def check_key(key: bytes, *, source: str = "key") -> None:
    if not isinstance(key, (bytes, bytearray)):
        raise KeyFileError(f"{source} must be bytes, not {type(key).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"{source} holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")


def key_fingerprint(key: bytes) -> str:
    """A short, non-secret name for a key, so a report shows which key was used."""
    return hashlib.sha256(b"mica key fingerprint\0" + key).hexdigest()[:16]


def _digest(key: bytes, domain: bytes, value: str) -> bytes:
    return _cached_digest(bytes(key), domain, value)


# The same study, series and frame-of-reference UIDs and the same patient recur in every file
# of a series, so recent digests are kept; the bound keeps a worker's memory flat.
@lru_cache(maxsize=4096)
def _cached_digest(key: bytes, domain: bytes, value: str) -> bytes:
    return hmac.new(key, domain + b"\0" + value.encode("utf-8"), hashlib.sha256).digest()


def keyed_uid(key: bytes, original_uid: str) -> str:
    """Return the `2.25.<integer>` UID that replaces `original_uid` under `key`."""
    integer = int.from_bytes(_digest(key, b"uid", original_uid)[:16], "big")
    return UUID_DERIVED_UID_ROOT + str(integer)


def patient_pseudonym(key: bytes, patient_identity: str) -> str:
    """Return the pseudonym (e.g. `MICA-3F9A0C12B7DE`) that replaces PatientID and PatientName."""
    return "MICA-" + _digest(key, b"patient", patient_identity).hex()[:12].upper()


def date_shift_days(key: bytes, patient_identity: str) -> int:
    """Return how many days every date of this patient is moved back (1..MAX_DATE_SHIFT_DAYS)."""
    integer = int.from_bytes(_digest(key, b"date shift", patient_identity)[:8], "big")
    return 1 + integer % MAX_DATE_SHIFT_DAYS


def source_name(key: bytes, source: str) -> str:
    """The name a report shows for an input file: a stable keyed hash of its path in SRC.

    Paths and zip entry names often hold patient names; this one says nothing, stays the same
    for the same path and key, and differs between projects.
    """
    return "file-" + _digest(key, b"source path", source).hex()[:16]


def keyed_file_name(key: bytes, content_digest: str) -> str:
    """Return the name stem of an anonymized PNG/JPEG, derived from its content."""
    return _digest(key, b"file name", content_digest).hex()[:32]
