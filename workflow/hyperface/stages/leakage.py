"""Leakage stage: top-k synthetic images nearest to real faces, with pictures of each pair."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hyperface.quality.leakage import load_real_faces, pair_picture, top_pairs
from hyperface.recognition.alignment import Aligner
from hyperface.recognition.embedders import embedder_from_settings
from hyperface.settings import EmbedderSettings, LeakageSettings
from hyperface.storage import manifests
from hyperface.storage.containers import Containers, load_shards
from hyperface.storage.images import save_png
from hyperface.storage.lineage import lineage_meta

log = logging.getLogger(__name__)


def shard_top_pairs(
    aligned: list[str | Path], real: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`top_pairs` over the shards' embeddings, one shard in memory at a time; synthetic
    rows are numbered across the shards in order."""
    best = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
    offset = 0
    for shard in aligned:
        synthetic = manifests.read_embeddings(shard)
        s, r, c = top_pairs(synthetic, real, k)
        merged = [np.concatenate([a, b]) for a, b in zip(best, (s + offset, r, c), strict=True)]
        keep = np.argsort(-merged[2], kind="stable")[:k]
        best = tuple(m[keep] for m in merged)
        offset += len(synthetic)
    return best


def find_leakage(
    aligned: list[str | Path],
    gallery: str | Path,
    out_pairs: str | Path,
    out_dir: str | Path,
    root: str | Path,
    *,
    leakage: LeakageSettings,
    embedder: EmbedderSettings,
    device: str,
) -> None:
    """The ``top_k`` synthetic-real pairs by cosine, with a side-by-side picture each.

    Settings: the ``leakage`` section (reference: gallery, a folder of faces or a .bin; top_k) and
    the ``embedder`` section (how the real faces are embedded).
    """
    reference = leakage.reference
    inputs = {
        "aligned": aligned,
        "gallery": gallery,
        "embedder": embedder.weights,
        **({} if reference == "gallery" else {"reference": reference}),
    }
    meta = lineage_meta("leakage", [leakage, embedder], inputs)
    frame = load_shards(aligned, ["identity", "sample", "container", "row"], root)
    embed = embedder_from_settings(embedder, device)
    aligner = Aligner(fallback="center_crop", min_face_prob=0.0, device=device)
    real = load_real_faces(reference, embedder=embed, aligner=aligner, gallery=gallery, root=root)
    rows_s, rows_r, cos = shard_top_pairs(aligned, real.embeddings, leakage.top_k)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pictures, store = [], Containers(root)
    for rank, (s, r) in enumerate(zip(rows_s, rows_r, strict=True)):
        path = out_dir / f"{rank:04d}.png"
        crop = store.images([frame["container"].iloc[s]], [frame["row"].iloc[s]])[0]
        save_png(pair_picture(crop, real.crop(int(r))), path)
        pictures.append(str(path.relative_to(root)))
    table = pd.DataFrame(
        {
            "rank": range(len(cos)),
            "identity": frame["identity"].to_numpy()[rows_s],
            "sample": frame["sample"].to_numpy()[rows_s],
            "real_face": [real.names[int(r)] for r in rows_r],
            "cosine": cos,
            "picture": pictures,
        }
    )
    manifests.write_frame(out_pairs, table, manifests.leakage_schema(), meta)
    log.info(
        "leakage: %d real faces; top-%d synthetic-real cosines %s",
        len(real.names),
        len(cos),
        ", ".join(f"{c:.3f}" for c in cos[:5]),
    )
