"""Keyed pseudonyms for participant ids, and the participant-level split.

Ids in the output are ``HMAC-SHA256(key, "<dataset>/<participant>")``, cut to
16 hex characters: stable across runs with the same key, unlinkable without
it. The key is read from a file or an environment variable and is never
written to the output or the metadata database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from sensorpipe.config import ConfigError, PipelineConfig, SplitConfig


def load_key(cfg: PipelineConfig) -> bytes | None:
    """The pseudonymization key, or None when pseudonymization is off."""
    p = cfg.privacy
    if not p.pseudonymize:
        return None
    if p.key_file:
        path = Path(cfg.resolve(p.key_file))
        if not path.exists():
            raise ConfigError(f"privacy.key_file: {path} does not exist; create it with a long random secret "
                              f"(e.g. `python -c 'import secrets; print(secrets.token_hex(32))' > {path}`)")
        key = path.read_bytes().strip()
    else:
        key = os.environ.get(p.key_env, "").encode()
    if len(key) < 16:
        raise ConfigError(f"privacy: set a pseudonymization key of at least 16 characters in privacy.key_file or "
                          f"the environment variable {p.key_env} (or set privacy.pseudonymize: false)")
    out_dir = Path(cfg.output_dir).resolve()
    if p.key_file and out_dir in Path(cfg.resolve(p.key_file)).resolve().parents:
        raise ConfigError("privacy.key_file must not lie inside the output directory: the key would be published")
    return key


def pseudonym(key: bytes | None, dataset: str, participant_id: str) -> str:
    if key is None:
        return participant_id
    return hmac.new(key, f"{dataset}/{participant_id}".encode(), hashlib.sha256).hexdigest()[:16]


def device_token(key: bytes | None, serial: str) -> str:
    """A device serial number as shared outputs hold it: ``serial:<16 hex>``, an HMAC under the key.

    A lab's device log ties each serial to the person who wore it, so the
    serial is as identifying as a file name; keyed, the same device keeps one
    token across people and runs (counts can be compared per device) without
    being guessable. "" stays "" (no serial); without a key the serial is
    kept, as participant ids and paths are.
    """
    if not serial or key is None:
        return serial
    digest = hmac.new(key, b"sensorpipe/device-serial/v1\0" + serial.encode(), hashlib.sha256).hexdigest()
    return f"serial:{digest[:16]}"


def key_digest(key: bytes | None) -> str:
    """A digest that changes with the key, for cache keys and fingerprints: an HMAC under the key of a
    fixed label, so it cannot be inverted to the key, nor brute-forced without it. "none": no pseudonyms."""
    if key is None:
        return "none"
    return hmac.new(key, b"sensorpipe/cache-key/v1", hashlib.sha256).hexdigest()[:16]


def assign_split(cfg: SplitConfig, dataset: str, participant_id: str) -> str:
    """Split of a participant from a salted hash of its identity: stable, independent of the others."""
    h = hashlib.sha256(f"{cfg.salt}\0{dataset}\0{participant_id}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < cfg.train:
        return "train"
    if u < cfg.train + cfg.validation:
        return "validation"
    return "test"
