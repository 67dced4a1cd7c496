"""Generation with MobileStyleGAN: each packed identity realised as a face, then its variants.

The CPU counterpart of Arc2Face (:mod:`hyperface.stages.generate_shard` runs either, with the
same shards, per-identity resume and lineage). Identity i starts from a gallery face of its own -
references in order of how near their nearest gallery face is, each taking the nearest one not
yet taken, so two identities never share a face - and is realised by
:func:`hyperface.generators.identities.realise`. Image k is the first of its draws
(seed, "generate", i, k, attempt) that the embedder accepts as the anchor's person at the
threshold of ``variation.json``; rejected draws are counted in ``redraws``, and an image whose
``max_redraws`` + 1 draws are all rejected is given up (no row).
"""

from __future__ import annotations

import json
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hyperface.generators.directions import Direction
from hyperface.generators.identities import FaceEmbedding, realise, variant
from hyperface.generators.mobilestylegan import MobileStyleGANGallery
from hyperface.recognition.embedders import embedder_from_settings
from hyperface.seeding import derive_seed, numpy_rng
from hyperface.settings import EmbedderSettings, Encoding, GallerySettings, GenerationSettings
from hyperface.storage import manifests
from hyperface.storage.containers import image_cell
from hyperface.storage.resume import identity_folder

CANDIDATES = 32  # nearest gallery faces considered per reference before scanning them all


def anchor_faces(references: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """The gallery row each reference starts from: references in order of their best cosine take
    their nearest free face (the same answer in every shard: it depends on all references)."""
    if len(gallery) < len(references):
        raise ValueError(
            f"generation.generator mobilestylegan gives each of the {len(references)} identities "
            f"a gallery face of its own: gallery.size must be at least packing.n_identities"
        )
    refs = references / np.linalg.norm(references, axis=1, keepdims=True)
    gal = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    nearest = np.empty((len(refs), min(CANDIDATES, len(gal))), np.int64)
    best = np.empty(len(refs))
    for start in range(0, len(refs), 1024):  # a block of references at a time: memory stays flat
        cos = refs[start : start + 1024] @ gal.T
        top = np.argsort(-cos, axis=1, kind="stable")[:, : nearest.shape[1]]
        nearest[start : start + 1024] = top
        best[start : start + 1024] = np.take_along_axis(cos, top[:, :1], 1)[:, 0]
    taken = np.zeros(len(gal), bool)
    anchor = np.empty(len(refs), np.int64)
    for r in np.argsort(-best, kind="stable"):
        free = [j for j in nearest[r] if not taken[j]]
        if not free:  # all its candidates are taken: scan the whole gallery
            cos = np.where(taken, -np.inf, gal @ refs[r])
            free = [int(np.argmax(cos))]
        anchor[r] = free[0]
        taken[free[0]] = True
    return anchor


class StyleGANIdentities:
    """Rows of the generated manifest, one identity at a time (see the module's docstring)."""

    def __init__(
        self,
        references: np.ndarray,
        gallery_manifest: str | Path,
        variation: str | Path,
        *,
        seed: int,
        generation: GenerationSettings,
        gallery: GallerySettings,
        embedder: EmbedderSettings,
        device: str,
    ):
        self.refs, self.seed, self.settings = references, seed, generation
        measured = json.loads(Path(variation).read_text())
        self.yaw = Direction.from_dict(measured["yaw"]) if generation.variants.yaw > 0 else None
        self.threshold = float(measured["accept"]["threshold"])
        index = manifests.read_table(gallery_manifest, ["index"])["index"].to_numpy()
        self.start = index[anchor_faces(references, manifests.read_embeddings(gallery_manifest))]
        self.gen = MobileStyleGANGallery(gallery.weights, truncation_psi=gallery.truncation_psi,
                                         threads=torch.get_num_threads())  # fmt: skip
        self.face = FaceEmbedding(embedder_from_settings(embedder, device), device)

    def rows(
        self, identity: int, encoding: Encoding, pool: Executor
    ) -> dict[str, list | np.ndarray]:
        g, seed = self.settings, self.seed
        start = self.gen.gallery_latents([int(self.start[identity])], seed)[0]
        anchor = realise(self.gen, self.face, self.refs[identity], start, g.realise,
                         numpy_rng(seed, "realise", identity))  # fmt: skip
        rows: dict[str, list] = {"sample": [], "image": [], "seed": [], "redraws": [],
                                 "identity_cos": []}  # fmt: skip
        for k in range(g.images_per_identity):
            for attempt in range(g.variants.max_redraws + 1):
                rng = numpy_rng(seed, "generate", identity, k, attempt)
                image = self.gen.draw_styles(*variant(self.gen, anchor.latent, g.variants,
                                                      self.yaw, rng))  # fmt: skip
                emb = self.face(image)
                cos = -1.0 if emb is None else float(emb @ anchor.embedding)
                if cos >= self.threshold:
                    break
            else:
                continue  # every draw was another person (or no face): given up
            small = np.asarray(Image.fromarray(image).resize((g.resolution,) * 2, Image.LANCZOS))
            name = f"{identity_folder(identity)}/{k:04d}"
            rows["sample"].append(k)
            rows["image"].append(pool.submit(image_cell, small, name, encoding))
            rows["seed"].append(derive_seed(seed, "generate", identity, k, attempt))
            rows["redraws"].append(attempt)
            rows["identity_cos"].append(cos)
        n = len(rows["sample"])
        return {
            "identity": [identity] * n,
            **rows,
            "image": [cell.result() for cell in rows["image"]],
            "condition": np.tile(anchor.embedding.astype(np.float32), (n, 1)),
            "realised_cos": [anchor.cos] * n,
        }
