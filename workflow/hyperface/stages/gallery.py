"""Gallery stage: unconditional faces -> aligned crops -> embeddings, one shard at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hyperface import manifests
from hyperface.alignment import Aligner
from hyperface.embedders import embedder_from_config
from hyperface.gallery_generators import FolderGallery, load_gallery_generator
from hyperface.images import save_png
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


def gallery_shard(indices: range, out_manifest: str | Path, image_dir: str | Path, root: str | Path, *,
                  seed: int, gallery: dict, embedder: dict, device: str) -> None:
    """Gallery images ``image_dir``/<index>.png and their embeddings for the ``indices``.

    Settings: the ``gallery`` section (generator, weights, batch_size, steps, truncation_psi,
    noise_mode), the ``embedder`` section and ``seed``.
    """
    generator = load_gallery_generator(gallery["generator"], gallery["weights"], device=device,
                                       steps=gallery["steps"], truncation_psi=gallery["truncation_psi"],
                                       noise_mode=gallery["noise_mode"])
    meta = {"backends": {"gallery": gallery["generator"], "embedder": embedder["backend"]},
            **lineage_meta("gallery_shard", [seed, gallery, embedder, [indices.start, indices.stop]],
                           {"generator": gallery_source(generator, gallery["weights"], indices),
                            "embedder": embedder["weights"]})}
    embed = embedder_from_config(embedder, device)
    # gallery faces are embedded like every other face: aligned to the ArcFace template first
    aligner = Aligner(fallback="center_crop", min_face_prob=0.0, device=device)
    root, image_dir = Path(root), Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list] = {"index": [], "image": [], "seed": [], "embedding": []}
    speed = Throughput("images")
    batches = list(chunks(list(indices), gallery["batch_size"]))
    for batch in progress(batches, desc="gallery batches"):
        images = generator.generate(list(batch), seed)
        for i, image in zip(batch, images, strict=True):
            path = image_dir / f"{i:07d}.png"
            save_png(image, path)
            rows["index"].append(i)
            rows["image"].append(str(path.relative_to(root)))
            rows["seed"].append(derive_seed(seed, "gallery", i))
        rows["embedding"].append(embed.embed([a.crop for a in aligner.align(images)]))
        speed.add(len(batch))
    rows["embedding"] = np.concatenate(rows["embedding"]) if rows["embedding"] else np.zeros((0, embed.dim))
    manifests.write_manifest(out_manifest, rows, manifests.gallery_schema(embed.dim), meta)
    speed.report()
