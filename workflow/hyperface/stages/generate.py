"""Generation stage: Arc2Face images of each identity, conditioned on beta-perturbed references.

Image k of identity i is drawn from the stream (seed, "generate", i, k) - both the embedding noise
v and the diffusion latents z - and batches never mix identities, so an identity's images are the
same whatever ``identities_per_shard`` is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hyperface import manifests
from hyperface.arc2face import Arc2FaceGenerator
from hyperface.images import save_png
from hyperface.runtime import Throughput, chunks, progress
from hyperface.seeding import derive_seed, torch_generator


def perturbed_condition(reference: np.ndarray, beta: float, seed: int, identity: int, sample: int,
                        latent_shape: tuple[int, ...]) -> tuple[np.ndarray, torch.Tensor]:
    """(x_ref + beta v) / |x_ref + beta v| and the initial latents z for one image (paper Eq. 3)."""
    gen = torch_generator(seed, "generate", identity, sample)
    v = torch.randn(len(reference), generator=gen).numpy()
    z = torch.randn(latent_shape, generator=gen)
    cond = reference + beta * v
    return (cond / np.linalg.norm(cond)).astype(np.float32), z


def generate_shard(references: str | Path, identities: range, out_manifest: str | Path,
                   image_dir: str | Path, root: str | Path, *, seed: int, params: dict,
                   device: str) -> None:
    refs = manifests.read_embeddings(references)
    gen = Arc2FaceGenerator(params["weights"], params["base_model"], device=device,
                            steps=params["steps"], guidance_scale=params["guidance_scale"],
                            resolution=params["resolution"])
    root, image_dir = Path(root), Path(image_dir)
    rows: dict[str, list] = {"identity": [], "sample": [], "image": [], "seed": [], "condition": []}
    speed = Throughput("images")
    for identity in progress(identities, desc="identities"):
        samples = range(params["images_per_identity"])
        for batch in chunks(samples, params["batch_size"]):
            drawn = [perturbed_condition(refs[identity], params["beta"], seed, identity, k,
                                         gen.latent_shape) for k in batch]
            conds = np.stack([c for c, _ in drawn])
            images = gen.generate(conds, torch.stack([z for _, z in drawn]))
            for k, image, cond in zip(batch, images, conds, strict=True):
                path = image_dir / f"{identity:07d}" / f"{k:04d}.png"
                save_png(image, path)
                rows["identity"].append(identity)
                rows["sample"].append(k)
                rows["image"].append(str(path.relative_to(root)))
                rows["seed"].append(derive_seed(seed, "generate", identity, k))
                rows["condition"].append(cond)
            speed.add(len(batch))
    dim = refs.shape[1]
    rows["condition"] = np.stack(rows["condition"]) if rows["condition"] else np.zeros((0, dim))
    manifests.write_manifest(out_manifest, rows, manifests.generated_schema(dim),
                             {"backends": {"generator": params["generator"]},
                              "config_hash": manifests.config_hash([seed, params])})
    speed.report()
