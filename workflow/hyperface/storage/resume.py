"""Per-identity progress of a shard job, kept outside the rule's outputs so a killed job keeps it.

A generation or alignment shard of 400 identities x 64 images runs for hours; when SLURM preempts
it or its time limit hits, the re-run keeps every identity already finished and redoes only the
rest. Snakemake deletes a failed job's declared outputs, so the finished identities live under
``{results}/partial/<output path>/<lineage>/``: each identity's manifest rows, images included, in
``<identity>.parquet`` (written atomically, so a file there means the identity is complete). The
folder is named by the job's lineage: a job with other settings or inputs never picks it up, and
starting one removes the stale folders of the same output. When the shard is complete, the rows
are streamed into the shard manifest - identical to an uninterrupted run's - and the partial
folder is removed.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hyperface.storage import manifests
from hyperface.storage.lineage import state_name

log = logging.getLogger(__name__)


def identity_folder(identity: int) -> str:
    return f"{identity:07d}"


class PartialShard:
    """Finished identities of one shard job, resumable by a re-run of the same lineage."""

    def __init__(
        self,
        root: str | Path,
        out_manifest: str | Path,
        schema: pa.Schema,
        meta: Mapping[str, Any],
        device: str,
    ):
        root, out_manifest = Path(root), Path(out_manifest)
        self.top = root / "partial"
        self.base = self.top / out_manifest.relative_to(root).with_suffix("")
        self.dir = self.base / state_name("lineage", meta, device)
        self.schema, self.meta = schema, meta
        if self.base.exists():
            for stale in self.base.iterdir():
                if stale != self.dir:
                    log.info("removing the partial state of another lineage: %s", stale)
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        self.dir.mkdir(parents=True, exist_ok=True)

    def _rows_file(self, identity: int) -> Path:
        return self.dir / f"{identity_folder(identity)}.parquet"

    def done(self, identities: range) -> list[int]:
        return [i for i in identities if self._rows_file(i).exists()]

    def commit(self, identity: int, columns: Mapping[str, Any]) -> None:
        """Record that ``identity`` is complete, with its manifest rows."""
        manifests.write_manifest(self._rows_file(identity), columns, self.schema)

    def finish(self, identities: range, out_manifest: str | Path) -> None:
        """Stream every identity's rows into the shard manifest, in identity order; drop the
        state."""
        missing = [i for i in identities if not self._rows_file(i).exists()]
        if missing:
            raise RuntimeError(f"{self.dir}: identities {missing[:5]} are not complete")
        with manifests.ManifestWriter(out_manifest, self.schema, self.meta) as writer:
            for identity in identities:
                writer.write(pq.read_table(self._rows_file(identity)))
        shutil.rmtree(self.dir)
        folder = self.base
        while folder.exists() and not any(folder.iterdir()):  # empty folders up to results/partial
            folder.rmdir()
            if folder == self.top:
                break
            folder = folder.parent


def claim_state(
    directory: str | Path, prefix: str, meta: Mapping[str, Any], device: str, suffix: str = ".pt"
) -> Path:
    """The checkpoint path of the job of ``meta`` in ``directory``; checkpoints of other lineages
    there (``prefix-*``) are stale - never resumed - and are removed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{state_name(prefix, meta, device)}{suffix}"
    for stale in directory.glob(f"{prefix}-*{suffix}"):
        if stale != path:
            log.info("removing the checkpoint of another lineage: %s", stale)
            stale.unlink()
    return path
