"""Local merge stage: the gallery shards in one manifest (no model is loaded here)."""

from __future__ import annotations

from pathlib import Path

from hyperface import manifests
from hyperface.lineage import lineage_meta


def concat_gallery(shards: list[str | Path], out: str | Path) -> None:
    """All gallery shards in one manifest, in shard order."""
    dim = manifests.read_embeddings(shards[0]).shape[1]
    meta = {"backends": manifests.read_meta(shards[0])["backends"],
            **lineage_meta("gallery", [], {"shards": shards})}
    manifests.concat_manifests(shards, manifests.gallery_schema(dim), out, meta)
