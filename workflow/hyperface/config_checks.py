"""Checks across config keys that JSON Schema cannot express, run when the Snakefile is parsed.

Every message names the key(s) at fault, so a bad config fails before any job runs.
"""

from __future__ import annotations

import os

from hyperface.settings import Settings

TINY_ROOT = "resources/tiny"  # the demo's tiny random models (the tiny_models rule writes them)


def config_errors(settings: Settings) -> list[str]:
    """Every cross-key problem of a config, one message each."""
    return [
        *packing_errors(settings),
        *evaluation_errors(settings),
        *training_errors(settings),
        *model_errors(settings),
    ]


def packing_errors(settings: Settings) -> list[str]:
    errors = []
    gallery, packing = settings.gallery, settings.packing
    n_id, gen = packing.n_identities, settings.generation
    # each identity needs a gallery face of its own to start packing from, or to be drawn from
    reasons = {
        "packing.init: gallery": packing.init == "gallery",
        "generation.generator: mobilestylegan": gen.generator == "mobilestylegan",
    }
    needs = [why for why, on in reasons.items() if on]
    if needs and gallery.size < n_id:
        errors.append(
            f"packing.n_identities ({n_id}) exceeds gallery.size ({gallery.size}); "
            f"{' and '.join(needs)}: each identity starts from a gallery face of its own"
        )
    if packing.batch_size is not None and packing.batch_size > n_id:
        errors.append(
            f"packing.batch_size ({packing.batch_size}) exceeds packing.n_identities ({n_id})"
        )
    if gen.generator == "mobilestylegan" and (gallery.generator, gallery.weights) != (
        "mobilestylegan",
        gen.weights,
    ):
        errors.append(
            "generation.generator mobilestylegan starts each identity from a gallery face's "
            "latent: it needs gallery.generator mobilestylegan and generation.weights equal to "
            f"gallery.weights (got gallery.generator {gallery.generator}, gallery.weights "
            f"{gallery.weights}, generation.weights {gen.weights})"
        )
    if settings.generation.resolution % 8:
        errors.append(
            f"generation.resolution ({settings.generation.resolution}) must be a multiple of 8"
        )
    return errors


def evaluation_errors(settings: Settings) -> list[str]:
    errors = []
    evaluation, n_id = settings.evaluation, settings.packing.n_identities
    holdout = evaluation.holdout_identities
    if holdout and not 2 <= holdout < n_id:
        errors.append(
            f"evaluation.holdout_identities ({holdout}) must be 0, or at least 2 and less "
            f"than packing.n_identities ({n_id})"
        )
    if holdout and settings.generation.images_per_identity < 2:
        errors.append(
            "evaluation.holdout_identities needs generation.images_per_identity >= 2 "
            "to form genuine pairs"
        )
    if holdout and "holdout" in evaluation.benchmarks:
        errors.append(
            "evaluation.benchmarks: the name 'holdout' is reserved for the held-out "
            "identities benchmark"
        )
    return errors


def training_errors(settings: Settings) -> list[str]:
    errors = []
    training = settings.training
    if training.batch_size % training.gpus:
        errors.append(
            f"training.batch_size ({training.batch_size}) must be a multiple of training.gpus "
            f"({training.gpus}): each rank takes an equal part of every batch"
        )
    if training.partial_fc and training.diversity_weight:
        errors.append(
            "training.diversity_weight needs every class centre on each rank: set it to 0 "
            "or training.partial_fc to false"
        )
    if training.sample_rate < 1.0 and not training.partial_fc:
        errors.append(
            "training.sample_rate applies to training.partial_fc: set training.partial_fc: true"
        )
    return errors


def model_errors(settings: Settings) -> list[str]:
    """The embedder must be the space the generator understands; the judge must be someone else."""
    errors = []
    embedder, generation = settings.embedder, settings.generation
    real_arc2face = generation.generator == "arc2face" and not os.path.normpath(
        generation.weights
    ).startswith(TINY_ROOT)
    if real_arc2face and embedder.backend != "insightface":
        errors.append(
            f"embedder.backend is {embedder.backend!r}, but Arc2Face ({generation.weights}) "
            "is conditioned on its own ArcFace space: pack and re-embed with "
            f"embedder.backend: insightface and embedder.weights: {generation.weights}/arcface.onnx"
        )
    judge = settings.quality.judge
    if judge.backend and judge.backend == embedder.backend:
        errors.append(
            f"quality.judge.backend ({judge.backend}) is also embedder.backend: the judge "
            "must be a recogniser that took no part in making the dataset"
        )
    return errors
