"""Generation stage: Arc2Face images of each identity, conditioned on beta-perturbed references.

Image k of identity i is drawn from the stream (seed, "generate", i, k) - both the embedding noise
v and the diffusion latents z - and batches never mix identities, so an identity's images are the
same whatever ``identities_per_shard`` is. Finished identities survive a killed job
(:mod:`hyperface.resume`): a re-run generates only the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from hyperface import manifests
from hyperface.containers import Encoding, image_cell
from hyperface.lineage import lineage_meta
from hyperface.resume import PartialShard, identity_folder
from hyperface.runtime import Throughput, chunks, progress
from hyperface.seeding import derive_seed, torch_generator

log = logging.getLogger(__name__)


def perturbed_condition(reference: np.ndarray, beta: float, seed: int, identity: int, sample: int,
                        latent_shape: tuple[int, ...]) -> tuple[np.ndarray, torch.Tensor]:
    """(x_ref + beta v) / |x_ref + beta v| and the initial latents z for one image (paper Eq. 3)."""
    gen = torch_generator(seed, "generate", identity, sample)
    v = torch.randn(len(reference), generator=gen).numpy()
    z = torch.randn(latent_shape, generator=gen)
    cond = reference + beta * v
    return (cond / np.linalg.norm(cond)).astype(np.float32), z


def generation_weights(generation: dict) -> list[Path]:
    """The folders Arc2Face is loaded from; their fingerprints are part of a shard's lineage."""
    weights, base = Path(generation["weights"]), Path(generation["base_model"])
    return [weights / "arc2face", weights / "encoder", base / "tokenizer", base / "vae", base / "scheduler"]


def generate_shard(references: str | Path, identities: range, out_manifest: str | Path,
                   root: str | Path, *, seed: int, generation: dict, encoding: dict,
                   device: str) -> None:
    """The shard manifest of ``identities``: every image (encoded in the manifest, see
    :mod:`hyperface.containers`), its seed and its perturbed condition.

    Settings: the ``generation`` section (weights, base_model, images_per_identity, beta,
    batch_size, steps, guidance_scale, resolution), ``seed`` and the images' ``encoding``.
    """
    from hyperface.arc2face import Arc2FaceGenerator

    refs = manifests.read_embeddings(references)
    meta = {"backends": {"generator": generation["generator"]},
            **lineage_meta("generate_shard", [seed, generation, encoding, [identities.start, identities.stop]],
                           {"references": references, "weights": generation_weights(generation)})}
    codec = Encoding(**encoding)
    dim = refs.shape[1]
    partial = PartialShard(root, out_manifest, manifests.generated_schema(dim), meta, device)
    done = set(partial.done(identities))
    todo = [i for i in identities if i not in done]
    log.info("kept %d identities already generated, generating %d", len(done), len(todo))
    speed = Throughput("images")
    gen = None
    for identity in progress(todo, desc="identities"):
        if gen is None:  # loaded once per job, and not at all when every identity is done
            gen = Arc2FaceGenerator(generation["weights"], generation["base_model"], device=device,
                                    steps=generation["steps"], guidance_scale=generation["guidance_scale"],
                                    resolution=generation["resolution"])
        rows: dict[str, list] = {"identity": [], "sample": [], "image": [], "seed": [], "condition": []}
        for batch in chunks(range(generation["images_per_identity"]), generation["batch_size"]):
            drawn = [perturbed_condition(refs[identity], generation["beta"], seed, identity, k,
                                         gen.latent_shape) for k in batch]
            conds = np.stack([c for c, _ in drawn])
            images = gen.generate(conds, torch.stack([z for _, z in drawn]))
            for k, image, cond in zip(batch, images, conds, strict=True):
                rows["identity"].append(identity)
                rows["sample"].append(k)
                rows["image"].append(image_cell(image, f"{identity_folder(identity)}/{k:04d}", codec))
                rows["seed"].append(derive_seed(seed, "generate", identity, k))
                rows["condition"].append(cond)
            speed.add(len(batch))
        partial.commit(identity, {**rows, "condition": np.stack(rows["condition"])})
    partial.finish(identities, out_manifest)
    speed.report()
