"""A remote ``output.dir`` (``s3://``, ``gs://``, ``memory://``): build locally, then upload the finished version.

Object storage has no rename and no lock, so a run whose output is a URL works
in a local folder, ``$SENSORPIPE_CACHE_DIR/outputs/<url key>/`` (default
``~/.cache/sensorpipe``; :func:`sensorpipe.urls.url_key` derives the name
from the URL), which holds what a local output folder holds: the ``.work/``
cache (a re-run only redoes what changed), the lock, the staging folder, the
published version and, unless ``metadata.url`` says otherwise, the metadata
database ``metadata.db`` (logged at each run). After the local run has
published, :meth:`RemoteOutput.publish` uploads ``quarantine/``,
``report.html`` and the version's files, ``dataset_info.json`` last.

What object storage guarantees (S3, GCS, Azure Blob; fsspec's memory store
too): one object's PUT is atomic (a reader sees the old object or the whole
new one) and, on S3 since 2020 and on GCS, a new object is at once visible to
every reader; nothing spans two objects. So the version becomes visible with
one object: readers (``sensorpipe.open``, TFDS) find a version by its
``dataset_info.json``, put last, and a failed or killed upload leaves shards
without it: no version. The next run of the config uploads again (its local
version is unchanged, so nothing is recomputed). A label never changes content:
a remote version of the same label with another fingerprint is refused unless
``--overwrite``, which first deletes the old ``dataset_info.json`` (the old
version disappears), then its files, then uploads the new one. Two machines
writing one URL are not locked against each other: give each its own URL.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from sensorpipe.config import PipelineConfig
from sensorpipe.urls import cache_root, filesystem, is_remote, probe, put_file, reaching, upload_tree, url_key

log = logging.getLogger(__name__)

#: the file whose presence makes a version visible to open() and TFDS: uploaded last, deleted first
VISIBLE = "dataset_info.json"


class RemoteVersionConflict(ValueError):
    """The remote label already holds another dataset (another fingerprint)."""


class RemoteOutput:
    """The remote ``output.dir`` of one config and the local folder its runs work in."""

    def __init__(self, url: str, local_dir: Path) -> None:
        self.url = url.rstrip("/")
        self.local_dir = local_dir

    @classmethod
    def of(cls, cfg: PipelineConfig) -> "RemoteOutput | None":
        """None for a local ``output.dir`` (or ``file://``); else the remote output, its protocol checked."""
        url = cfg.output.dir
        if not is_remote(url):
            return None
        probe(url)   # an unknown protocol, a missing backend, bucket or credentials fail here, before any work
        return cls(url, cache_root() / "outputs" / url_key(url.rstrip("/")))

    def local_config(self, cfg: PipelineConfig) -> PipelineConfig:
        """``cfg`` writing to the local work folder; says where the metadata database goes."""
        local = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, dir=str(self.local_dir)))
        if not cfg.metadata.url:
            log.warning("output.dir %s is remote: the run works in %s and the metadata database is the local "
                        "SQLite file %s (set metadata.url for a shared database)", self.url, self.local_dir,
                        local.metadata_url.removeprefix("sqlite:///"))
        return local

    def publish(self, result: Any, overwrite: bool = False) -> Any:
        """Upload the run's published version (unless the remote label already holds it), its quarantine
        files and report; returns ``result`` with the remote paths."""
        version_dir = Path(result.version_dir)
        rel = version_dir.relative_to(self.local_dir).as_posix()
        remote_version = f"{self.url}/{rel}"
        if not self._holds(remote_version, result.fingerprint, overwrite):
            quarantine = self.local_dir / "quarantine"
            if quarantine.is_dir():
                upload_tree(quarantine, f"{self.url}/quarantine")
            if (self.local_dir / "report.html").is_file():
                put_file(self.local_dir / "report.html", f"{self.url}/report.html")
            upload_tree(version_dir, remote_version, last=("sensorpipe.json", VISIBLE))
            log.info("uploaded %s to %s", version_dir, remote_version)
        return dataclasses.replace(result, output_dir=self.url, version_dir=remote_version,
                                   report=f"{self.url}/report.html")

    def _holds(self, remote_version: str, fingerprint: str, overwrite: bool) -> bool:
        """True when the remote label already holds this dataset; clears it when it holds another and
        ``overwrite``; refuses otherwise."""
        fs, root = filesystem(remote_version)
        if not reaching(remote_version, fs.exists, f"{root}/{VISIBLE}"):
            return False
        try:
            theirs = json.loads(fs.cat_file(f"{root}/sensorpipe.json")).get("fingerprint")
        except (OSError, ValueError):
            theirs = None
        if theirs == fingerprint:
            return True
        if not overwrite:
            raise RemoteVersionConflict(
                f"{remote_version} already holds another dataset (fingerprint {theirs}, this run {fingerprint}); "
                f"a version label never changes content: set output.version to a new label (or auto), or pass "
                f"--overwrite to replace it")
        fs.rm_file(f"{root}/{VISIBLE}")   # the old version disappears first, then its files go
        fs.rm(root, recursive=True)
        return False
