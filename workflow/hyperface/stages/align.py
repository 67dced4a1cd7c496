"""Alignment stage: MTCNN to the ArcFace template, re-embedding, identity consistency per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hyperface import manifests
from hyperface.alignment import Aligner
from hyperface.embedders import embedder_from_config
from hyperface.images import load_rgb, save_png
from hyperface.runtime import Throughput, chunks, progress


def align_shard(generated: str | Path, references: str | Path, out_manifest: str | Path,
                out_dir: str | Path, root: str | Path, *, alignment: dict, embedder: dict,
                device: str) -> None:
    frame = manifests.read_manifest(generated)
    refs = manifests.read_embeddings(references)
    aligner = Aligner(size=alignment["size"], min_face_prob=alignment["min_face_prob"],
                      fallback=alignment["fallback"], device=device)
    embed = embedder_from_config(embedder, device)
    root, out_dir = Path(root), Path(out_dir)
    n, dim = len(frame), embed.dim
    cols = {"aligned": [""] * n, "status": [""] * n, "face_prob": np.zeros(n, np.float32),
            "box": np.full((n, 4), np.nan, np.float32), "landmarks": np.full((n, 10), np.nan, np.float32),
            "embedding": np.full((n, dim), np.nan, np.float32)}
    speed = Throughput("images")
    for rows in progress(list(chunks(range(n), alignment["batch_size"])), desc="alignment batches"):
        images = [load_rgb(root / frame["image"].iloc[r]) for r in rows]
        results = aligner.align(images)
        crops, crop_rows = [], []
        for r, res in zip(rows, results, strict=True):
            cols["status"][r], cols["face_prob"][r] = res.status, res.prob
            cols["box"][r], cols["landmarks"][r] = res.box, res.landmarks
            if res.crop is not None:
                ident, sample = int(frame["identity"].iloc[r]), int(frame["sample"].iloc[r])
                path = out_dir / f"{ident:07d}" / f"{sample:04d}.png"
                save_png(res.crop, path)
                cols["aligned"][r] = str(path.relative_to(root))
                crops.append(res.crop)
                crop_rows.append(r)
        if crops:
            cols["embedding"][crop_rows] = embed.embed(crops)
        speed.add(len(rows))
    ident = frame["identity"].to_numpy()
    own, other = identity_consistency(cols["embedding"], ident, refs)
    manifests.write_manifest(out_manifest, {
        "identity": ident, "sample": frame["sample"].to_numpy(), "image": frame["image"].tolist(),
        **cols, "reference_cos": own, "nearest_other_cos": other},
        manifests.aligned_schema(dim),
        {"backends": {"detector": "mtcnn", "embedder": embedder["backend"]},
         "config_hash": manifests.config_hash([alignment, embedder])})
    speed.report()


def identity_consistency(embeddings: np.ndarray, identity: np.ndarray, refs: np.ndarray,
                         block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each image to its own reference and to the nearest other one (NaN if no crop)."""
    n = len(embeddings)
    own = np.full(n, np.nan, np.float32)
    other = np.full(n, np.nan, np.float32)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        sims = np.nan_to_num(embeddings[rows]) @ refs.T
        own[rows] = sims[np.arange(len(rows)), identity[rows]]
        if refs.shape[0] > 1:
            sims[np.arange(len(rows)), identity[rows]] = -np.inf
            other[rows] = sims.max(axis=1)
    missing = np.isnan(embeddings[:, 0])
    own[missing], other[missing] = np.nan, np.nan
    return own, other
