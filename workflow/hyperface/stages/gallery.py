"""Local merge stage: the gallery shards in one manifest (no model is loaded here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hyperface.storage import manifests
from hyperface.storage.lineage import lineage_meta


def concat_gallery(shards: list[str | Path], out: str | Path, root: str | Path) -> None:
    """All gallery shards in one manifest, in shard order; the images stay in the shards, named
    by (container, row) with container relative to the results ``root``."""
    dim = manifests.read_embeddings(shards[0]).shape[1]
    meta = {
        "backends": manifests.read_meta(shards[0])["backends"],
        **lineage_meta("gallery", [], {"shards": shards}),
    }
    schema = manifests.gallery_schema(dim)
    with manifests.ManifestWriter(out, schema, meta) as writer:
        for shard in shards:
            table = manifests.read_table(
                shard, ["index", "seed", "face_prob", "landmarks", "embedding"]
            )
            n = table.num_rows
            writer.write(
                {
                    "index": table["index"],
                    "container": [str(Path(shard).relative_to(root))] * n,
                    "row": np.arange(n),
                    "seed": table["seed"],
                    "face_prob": table["face_prob"],
                    "landmarks": table["landmarks"],
                    "embedding": table["embedding"],
                }
            )
