"""Gallery stage: unconditional faces -> aligned crops -> embeddings, one shard at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hyperface.generators.gallery import FolderGallery, load_gallery_generator
from hyperface.recognition.alignment import Aligner
from hyperface.recognition.embedders import embedder_from_settings
from hyperface.runtime import Throughput, chunks, progress
from hyperface.seeding import derive_seed
from hyperface.settings import EmbedderSettings, Encoding, GallerySettings
from hyperface.storage import manifests
from hyperface.storage.containers import image_cell
from hyperface.storage.lineage import digest, fingerprint, lineage_meta


def gallery_source(generator, weights: str | Path, indices: range) -> dict[str, str]:
    """The generator's weights as an input; for a folder, only the images this shard reads (and
    the folder's listing, which fixes which image is which index)."""
    if isinstance(generator, FolderGallery):
        names = [str(f.relative_to(weights)) for f in generator.files]
        used = [fingerprint(generator.files[i]) for i in indices if i < len(generator.files)]
        return {"path": str(weights), "lineage": digest([names, used])}
    return {"path": str(weights), "lineage": fingerprint(weights)}


def gallery_shard(
    indices: range,
    out_manifest: str | Path,
    *,
    seed: int,
    gallery: GallerySettings,
    embedder: EmbedderSettings,
    encoding: Encoding,
    device: str,
) -> None:
    """The gallery shard manifest for the ``indices``: each face's image (in the manifest, see
    :mod:`hyperface.storage.containers`), seed and embedding, written batch by batch.

    Settings: the ``gallery`` section (generator, weights, batch_size, steps, truncation_psi,
    noise_mode), the ``embedder`` section, ``seed`` and the gallery's image ``encoding``.
    """
    g = gallery
    generator = load_gallery_generator(g.generator, g.weights, device=device, steps=g.steps,
                                       truncation_psi=g.truncation_psi, noise_mode=g.noise_mode,
                                       threads=torch.get_num_threads())  # fmt: skip
    meta = {
        "backends": {"gallery": gallery.generator, "embedder": embedder.backend},
        **lineage_meta(
            "gallery_shard",
            [seed, gallery, embedder, encoding, [indices.start, indices.stop]],
            {
                "generator": gallery_source(generator, gallery.weights, indices),
                "embedder": embedder.weights,
            },
        ),
    }
    embed = embedder_from_settings(embedder, device)
    # gallery faces are embedded like every other face: aligned to the ArcFace template first
    aligner = Aligner(fallback="center_crop", min_face_prob=0.0, device=device)
    speed = Throughput("images")
    batches = list(chunks(list(indices), gallery.batch_size))
    with manifests.ManifestWriter(
        out_manifest, manifests.gallery_shard_schema(embed.dim), meta
    ) as out:
        for batch in progress(batches, desc="gallery batches"):
            images = generator.generate(list(batch), seed)
            faces = aligner.align(images)
            cells = [
                image_cell(im, f"{i:07d}", encoding) for i, im in zip(batch, images, strict=True)
            ]
            out.write({"index": list(batch), "image": cells,
                       "seed": [derive_seed(seed, "gallery", i) for i in batch],
                       "face_prob": [a.prob if a.status != "no_face" else np.nan for a in faces],
                       "landmarks": np.stack([a.landmarks for a in faces]),
                       "embedding": embed.embed([a.crop for a in faces])})  # fmt: skip
            speed.add(len(batch))
    speed.report()
