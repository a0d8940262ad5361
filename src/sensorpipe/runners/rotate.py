"""Key rotation: a new pseudonymization key, a dataset re-pseudonymized under it, and no old pseudonym left.

``sensorpipe rotate-key pipeline.yaml`` (:func:`rotate_key`):

1. writes a new random key next to ``privacy.key_file`` (``<key_file>.new``, mode 0600);
2. runs the pipeline with it, ``--overwrite``: the cache key and the dataset fingerprint depend on the key's
   digest (:func:`~sensorpipe.privacy.pseudonym.key_digest`), so every unit is recomputed with new pseudonyms;
3. once that run succeeded, moves the new key over ``privacy.key_file`` (the old key is gone);
4. removes what still holds old pseudonyms: the other version folders of ``output.name`` in the output
   folder, quarantine files that run did not rewrite, the pseudonym-bearing metadata rows of the earlier
   runs of that folder (the SQLite file is vacuumed), and the cache entries no remaining version uses;
5. writes a ``rotate-key`` audit row: the digests of the old and new key (never a key), what was removed.

If the run fails, nothing is removed and the old key stays in place. A key from the environment
(``privacy.key_env``) cannot be rewritten by sensorpipe: put the new key in the variable and run this
command with ``--key-from-env``, which skips steps 1 and 3.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensorpipe.config import ConfigError
from sensorpipe.privacy.pseudonym import key_digest, load_key
from sensorpipe.runners.cache import clean_cache
from sensorpipe.runners.driver import RunResult, run_pipeline
from sensorpipe.runners.plan import load_plan
from sensorpipe.storage.publish import version_labels


@dataclass
class Rotation:
    """What a key rotation did (printed by the CLI, recorded in the audit row)."""

    old_key_digest: str
    new_key_digest: str
    run: RunResult
    removed_versions: list[str] = field(default_factory=list)        # name/x.y.z
    removed_quarantine_files: list[str] = field(default_factory=list)
    metadata_rows_removed: dict[str, int] = field(default_factory=dict)
    cache_entries_removed: int = 0

    def text(self) -> str:
        return "\n".join([
            f"key rotated: digest {self.old_key_digest} -> {self.new_key_digest}",
            f"re-pseudonymized version: {self.run.version_dir} ({self.run.windows_kept} windows, "
            f"fingerprint {self.run.fingerprint})",
            f"removed versions under the old key: {', '.join(self.removed_versions) or 'none'}",
            f"removed quarantine files: {len(self.removed_quarantine_files)}; metadata rows: "
            f"{sum(self.metadata_rows_removed.values())}; cache entries: {self.cache_entries_removed}",
        ])


def _write_new_key(path: Path) -> bytes:
    """A fresh 256-bit key as hex text, created 0600 (never readable by the group)."""
    key = secrets.token_hex(32).encode()
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


def rotate_key(config: Any, key_from_env: bool = False, runner: str | None = None,
               workers: int | None = None) -> Rotation:
    """Rotate the pseudonymization key of ``config`` (YAML path, mapping or PipelineConfig); see the module."""
    cfg = load_plan(config).config
    if not cfg.privacy.pseudonymize:
        raise ConfigError("rotate-key: privacy.pseudonymize is false, there is no key to rotate")
    if not key_from_env and not cfg.privacy.key_file:
        raise ConfigError(f"rotate-key writes the new key to privacy.key_file, which is not set; with a key in "
                          f"${cfg.privacy.key_env}, put the new key there and pass --key-from-env")
    if key_from_env and cfg.privacy.key_file:
        raise ConfigError("rotate-key --key-from-env: privacy.key_file is set, so the key comes from that file; "
                          "drop --key-from-env to have a new key written there")
    old_digest = _recorded_key_digest(cfg) if key_from_env else key_digest(load_key(cfg))
    new_file = None
    if not key_from_env:
        key_file = Path(cfg.resolve(cfg.privacy.key_file))
        new_file = key_file.with_name(key_file.name + ".new")
        _write_new_key(new_file)
        cfg = dataclasses.replace(cfg, privacy=dataclasses.replace(cfg.privacy, key_file=str(new_file)))
    new_digest = key_digest(load_key(cfg))
    if new_digest == old_digest:
        raise ConfigError(f"rotate-key --key-from-env: ${cfg.privacy.key_env} still holds the old key; set the "
                          f"new key there first")
    started_ns = time.time_ns()
    try:
        result = run_pipeline(cfg, runner=runner, workers=workers, overwrite=True)
    except BaseException:
        if new_file is not None:
            new_file.unlink(missing_ok=True)     # the old key stays: the dataset is still under it
        raise
    if result.unchanged:     # the label already held this key's dataset: the variable still holds the old key
        raise ConfigError(f"rotate-key --key-from-env: {result.version_dir} already holds this key's dataset "
                          f"(fingerprint {result.fingerprint}), so ${cfg.privacy.key_env} still holds the old key; "
                          f"set the new key there first. Nothing was removed")
    if new_file is not None:
        os.replace(new_file, key_file)
    rotation = Rotation(old_digest, new_digest, result)
    _remove_old_traces(cfg, result, started_ns, rotation)
    from sensorpipe.metadata.store import MetadataStore

    store = MetadataStore(cfg.metadata_url)
    try:
        rotation.metadata_rows_removed = store.purge_pseudonymized_rows(str(Path(cfg.output_dir)), result.run_id)
        store.audit("rotate-key", result.run_id, {
            "old_key_digest": old_digest, "new_key_digest": new_digest, "fingerprint": result.fingerprint,
            "removed_versions": rotation.removed_versions,
            "removed_quarantine_files": len(rotation.removed_quarantine_files),
            "metadata_rows_removed": rotation.metadata_rows_removed,
            "cache_entries_removed": rotation.cache_entries_removed,
        }, versions=[f"{cfg.output.name}/{Path(result.version_dir).name}", *rotation.removed_versions])
    finally:
        store.close()
    from sensorpipe.storage.permissions import AccessPolicy, restrict_tree

    restrict_tree(cfg.output_dir, AccessPolicy.from_output(cfg.output))
    return rotation


def _recorded_key_digest(cfg) -> str:
    """The key digest of the last succeeded run of this output folder, from its audit row ("unknown": none).
    With ``--key-from-env`` the variable already holds the new key, so the old one is known only from there."""
    from sensorpipe.metadata.store import MetadataStore

    store = MetadataStore(cfg.metadata_url)
    try:
        runs = {r["run_id"] for r in store.list_runs(str(Path(cfg.output_dir))) if r["status"] == "succeeded"}
        digests = [e["details"].get("key_digest") for e in store.audit_log()
                   if e["event"] == "run" and e["subject"] in runs]
    finally:
        store.close()
    return next((d for d in reversed(digests) if d), "unknown")


def _remove_old_traces(cfg, result: RunResult, started_ns: int, rotation: Rotation) -> None:
    """Delete the files under the output folder that the rotation run did not rewrite and that hold old
    pseudonyms: other versions of the dataset, older quarantine files, unused cache entries."""
    out = Path(cfg.output_dir)
    dataset_dir = out / cfg.output.name
    kept = Path(result.version_dir).name
    for label in version_labels(dataset_dir):
        if label != kept:
            shutil.rmtree(dataset_dir / label)
            rotation.removed_versions.append(f"{cfg.output.name}/{label}")
    q_dir = out / "quarantine"
    for f in sorted(q_dir.iterdir()) if q_dir.is_dir() else ():
        if f.is_file() and f.stat().st_mtime_ns < started_ns:
            f.unlink()
            rotation.removed_quarantine_files.append(f.name)
    rotation.cache_entries_removed = len(clean_cache(out).removed)
