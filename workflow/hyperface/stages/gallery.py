"""Gallery stage: unconditional faces -> aligned crops -> embeddings, one shard at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hyperface import manifests
from hyperface.alignment import Aligner
from hyperface.containers import Encoding, image_cell
from hyperface.embedders import embedder_from_config
from hyperface.gallery_generators import FolderGallery, load_gallery_generator
from hyperface.lineage import digest, fingerprint, lineage_meta
from hyperface.runtime import Throughput, chunks, progress
from hyperface.seeding import derive_seed


def gallery_source(generator, weights: str | Path, indices: range) -> dict[str, str]:
    """The generator's weights as an input; for a folder, only the images this shard reads (and
    the folder's listing, which fixes which image is which index)."""
    if isinstance(generator, FolderGallery):
        names = [str(f.relative_to(weights)) for f in generator.files]
        used = [fingerprint(generator.files[i]) for i in indices if i < len(generator.files)]
        return {"path": str(weights), "lineage": digest([names, used])}
    return {"path": str(weights), "lineage": fingerprint(weights)}


def gallery_shard(indices: range, out_manifest: str | Path, *, seed: int, gallery: dict,
                  embedder: dict, encoding: dict, device: str) -> None:
    """The gallery shard manifest for the ``indices``: each face's image (in the manifest, see
    :mod:`hyperface.containers`), seed and embedding, written batch by batch.

    Settings: the ``gallery`` section (generator, weights, batch_size, steps, truncation_psi,
    noise_mode), the ``embedder`` section, ``seed`` and the gallery's image ``encoding``.
    """
    generator = load_gallery_generator(gallery["generator"], gallery["weights"], device=device,
                                       steps=gallery["steps"], truncation_psi=gallery["truncation_psi"],
                                       noise_mode=gallery["noise_mode"], threads=torch.get_num_threads())
    meta = {"backends": {"gallery": gallery["generator"], "embedder": embedder["backend"]},
            **lineage_meta("gallery_shard", [seed, gallery, embedder, encoding, [indices.start, indices.stop]],
                           {"generator": gallery_source(generator, gallery["weights"], indices),
                            "embedder": embedder["weights"]})}
    embed = embedder_from_config(embedder, device)
    # gallery faces are embedded like every other face: aligned to the ArcFace template first
    aligner = Aligner(fallback="center_crop", min_face_prob=0.0, device=device)
    codec = Encoding(**encoding)
    speed = Throughput("images")
    batches = list(chunks(list(indices), gallery["batch_size"]))
    with manifests.ManifestWriter(out_manifest, manifests.gallery_shard_schema(embed.dim), meta) as out:
        for batch in progress(batches, desc="gallery batches"):
            images = generator.generate(list(batch), seed)
            faces = aligner.align(images)
            out.write({"index": list(batch),
                       "image": [image_cell(im, f"{i:07d}", codec) for i, im in zip(batch, images, strict=True)],
                       "seed": [derive_seed(seed, "gallery", i) for i in batch],
                       "face_prob": [a.prob if a.status != "no_face" else np.nan for a in faces],
                       "embedding": embed.embed([a.crop for a in faces])})
            speed.add(len(batch))
    speed.report()
