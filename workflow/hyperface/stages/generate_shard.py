"""Generation stage: images of each identity - Arc2Face conditioned on beta-perturbed references,
or MobileStyleGAN variants of a realised face (:mod:`hyperface.generators.stylegan_identities`).

Image k of identity i is drawn from the stream (seed, "generate", i, k) - both the embedding noise
v and the diffusion latents z - and batches never mix identities, so an identity's images are the
same whatever ``identities_per_shard`` is. Finished identities survive a killed job
(:mod:`hyperface.storage.resume`): a re-run generates only the rest.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hyperface.runtime import Throughput, chunks, progress
from hyperface.seeding import derive_seed, torch_generator
from hyperface.settings import EmbedderSettings, Encoding, GallerySettings, GenerationSettings
from hyperface.storage import manifests
from hyperface.storage.containers import image_cell
from hyperface.storage.lineage import lineage_meta
from hyperface.storage.resume import PartialShard, identity_folder

log = logging.getLogger(__name__)


def perturbed_condition(
    reference: np.ndarray,
    beta: float,
    seed: int,
    identity: int,
    sample: int,
    latent_shape: tuple[int, ...],
) -> tuple[np.ndarray, torch.Tensor]:
    """(x_ref + beta v) / |x_ref + beta v| and the initial latents z for one image (paper Eq. 3)."""
    gen = torch_generator(seed, "generate", identity, sample)
    v = torch.randn(len(reference), generator=gen).numpy()
    z = torch.randn(latent_shape, generator=gen)
    cond = reference + beta * v
    return (cond / np.linalg.norm(cond)).astype(np.float32), z


def generation_weights(generation: GenerationSettings) -> list[Path]:
    """The folders Arc2Face is loaded from; their fingerprints are part of a shard's lineage."""
    weights, base = Path(generation.weights), Path(generation.base_model)
    return [
        weights / "arc2face",
        weights / "encoder",
        base / "tokenizer",
        base / "vae",
        base / "scheduler",
    ]


def generate_shard(
    inputs: GenerationInputs,
    identities: range,
    out_manifest: str | Path,
    root: str | Path,
    *,
    seed: int,
    generation: GenerationSettings,
    encoding: Encoding,
    device: str,
) -> None:
    """The shard manifest of ``identities``: every image (encoded in the manifest, see
    :mod:`hyperface.storage.containers`), its seed and the embedding it was drawn for.

    Settings: the ``generation`` section (generator, weights, images_per_identity; Arc2Face's
    base_model, beta, batch_size, steps, guidance_scale; resolution; MobileStyleGAN's realise and
    variants), ``seed`` and the images' ``encoding``; MobileStyleGAN also reads the gallery,
    variation.json and the gallery and embedder sections (``inputs``).
    Threads encode images while the generator draws the next batch (PNG at 512 px is about 31 ms
    an image: in the main loop a GPU would wait for it): the job's cores but one.
    """
    refs = manifests.read_embeddings(inputs.references)
    if generation.generator == "mobilestylegan":
        if inputs.gallery_manifest is None:
            raise ValueError("generation.generator mobilestylegan needs the gallery's inputs")
        settings = [seed, generation, encoding, inputs.gallery, inputs.embedder]
        files = {"references": inputs.references, "weights": generation.weights,
                 "gallery": inputs.gallery_manifest, "variation": inputs.variation,
                 "embedder": inputs.embedder.weights}  # fmt: skip
    else:
        settings = [seed, generation, encoding]
        files = {"references": inputs.references, "weights": generation_weights(generation)}
    meta = {
        "backends": {"generator": generation.generator},
        **lineage_meta("generate_shard", [*settings, [identities.start, identities.stop]], files),
    }
    dim = refs.shape[1]
    partial = PartialShard(root, out_manifest, manifests.generated_schema(dim), meta, device)
    done = set(partial.done(identities))
    todo = [i for i in identities if i not in done]
    log.info("kept %d identities already generated, generating %d", len(done), len(todo))
    speed = Throughput("images")
    backend = None
    encoders = max(1, torch.get_num_threads() - 1)  # the job's threads (setup_job) but one
    with ThreadPoolExecutor(encoders, thread_name_prefix="encode") as pool:
        for identity in progress(todo, desc="identities"):
            if backend is None:  # loaded once per job, and not at all when every identity is done
                backend = load_backend(refs, seed, generation, device, inputs)
            rows = backend.rows(identity, encoding, pool)
            partial.commit(identity, rows)
            speed.add(len(rows["sample"]))
    partial.finish(identities, out_manifest)
    speed.report()


@dataclass(frozen=True)
class GenerationInputs:
    """What a shard's identities are made from: the packed references; for MobileStyleGAN also
    the gallery manifest, variation.json and the gallery and embedder settings."""

    references: str | Path
    gallery_manifest: str | Path | None = None
    variation: str | Path | None = None
    gallery: GallerySettings | None = None
    embedder: EmbedderSettings | None = None


def load_backend(refs: np.ndarray, seed: int, generation: GenerationSettings, device: str,
                 inputs: GenerationInputs):  # fmt: skip
    """The generator of ``generation.generator``, with a ``rows(identity, encoding, pool)``."""
    if generation.generator == "mobilestylegan":
        from hyperface.generators.stylegan_identities import StyleGANIdentities

        return StyleGANIdentities(refs, inputs.gallery_manifest, inputs.variation, seed=seed,
                                  generation=generation, gallery=inputs.gallery,
                                  embedder=inputs.embedder, device=device)  # fmt: skip
    return Arc2FaceIdentities(refs, seed, generation, device)


class Arc2FaceIdentities:
    """Arc2Face's rows for one identity at a time."""

    def __init__(self, refs: np.ndarray, seed: int, generation: GenerationSettings, device: str):
        from hyperface.generators.arc2face import Arc2FaceGenerator

        g = generation
        self.gen = Arc2FaceGenerator(
            g.weights, g.base_model, device=device, steps=g.steps,
            guidance_scale=g.guidance_scale, resolution=g.resolution,
        )  # fmt: skip
        self.refs, self.seed, self.generation = refs, seed, generation

    def rows(
        self, identity: int, encoding: Encoding, pool: Executor
    ) -> dict[str, list | np.ndarray]:
        rows = identity_rows(self.gen, self.refs[identity], identity, self.seed, self.generation,
                             encoding, pool)  # fmt: skip
        n = len(rows["sample"])
        return {**rows, "redraws": [0] * n, "identity_cos": [np.nan] * n,
                "realised_cos": [np.nan] * n}  # fmt: skip


def identity_rows(
    gen,
    reference: np.ndarray,
    identity: int,
    seed: int,
    generation: GenerationSettings,
    encoding: Encoding,
    pool: Executor,
) -> dict[str, list | np.ndarray]:
    """The manifest columns of one identity's images, generated batch by batch (batches never
    mix identities); ``pool`` encodes a batch while the next one is drawn."""  # fmt: skip
    rows: dict[str, list] = {"identity": [], "sample": [], "image": [], "seed": [], "condition": []}
    for batch in chunks(range(generation.images_per_identity), generation.batch_size):
        shape = gen.latent_shape
        drawn = [perturbed_condition(reference, generation.beta, seed, identity, k, shape)
                 for k in batch]  # fmt: skip
        conds = np.stack([c for c, _ in drawn])
        images = gen.generate(conds, torch.stack([z for _, z in drawn]))
        for k, image, cond in zip(batch, images, conds, strict=True):
            rows["identity"].append(identity)
            rows["sample"].append(k)
            name = f"{identity_folder(identity)}/{k:04d}"
            rows["image"].append(pool.submit(image_cell, image, name, encoding))
            rows["seed"].append(derive_seed(seed, "generate", identity, k))
            rows["condition"].append(cond)
    images = [cell.result() for cell in rows["image"]]
    return {**rows, "image": images, "condition": np.stack(rows["condition"])}
