"""What both cards say about a run: the models it used and how its dataset was made.

The dataset card (:mod:`hyperface.stages.dataset_card`) and the model card
(:mod:`hyperface.stages.export_model`) share these lines, so the two never describe one run twice
in different words.
"""

from __future__ import annotations

from pathlib import Path

from hyperface.reports.licences import licence_rows, licence_table, most_restrictive
from hyperface.settings import GenerationSettings, JudgeSettings, Settings


def is_tiny(path: str, tiny_root: str) -> bool:
    """Whether a weights path is one of the demo's tiny random models."""
    return Path(path).resolve().is_relative_to(Path(tiny_root).resolve())


def models_used(settings: Settings, tiny_root: str) -> dict[str, tuple[str, bool]]:
    """role -> (licence key, tiny?) for the models a run's settings name."""
    gallery, embedder = settings.gallery, settings.embedder
    return {
        "gallery": (
            gallery.generator,
            is_tiny(gallery.weights, tiny_root) and gallery.generator != "folder",
        ),
        "embedder (packed space, re-embedding)": (
            embedder.backend,
            is_tiny(embedder.weights, tiny_root),
        ),
        **identity_models(settings, tiny_root),
        "face detector / aligner": ("mtcnn", False),
        **judge_models(settings.quality.judge),
    }


def identity_models(settings: Settings, tiny_root: str) -> dict[str, tuple[str, bool]]:
    """The models that drew each identity's images: Arc2Face on its Stable Diffusion base, or
    MobileStyleGAN (the gallery's, realised and varied)."""
    generation = settings.generation
    if generation.generator == "mobilestylegan":
        return {"identity images (realised, varied)": ("mobilestylegan", False)}
    return {
        "identity-conditioned generator": ("arc2face", is_tiny(generation.weights, tiny_root)),
        "generator base (tokenizer, VAE)": ("sd15", is_tiny(generation.base_model, tiny_root)),
    }


def judge_models(judge: JudgeSettings) -> dict[str, tuple[str, bool]]:
    """The judge's recogniser and detector, when there is a judge."""
    if not judge.backend:
        return {}
    return {"judge recogniser": (judge.backend, False), "judge detector": ("yunet", False)}


def recipe_lines(settings: Settings, ref_meta: dict) -> list[str]:
    """How a dataset was made: one line per stage, from its settings and the references'
    metadata."""
    g, p, gen = settings.gallery, settings.packing, settings.generation
    optimizer = ref_meta.get("backends", {}).get("optimizer", p.optimizer)
    return [
        f"- gallery: {g.size:,} faces from `{g.generator}` (`{g.weights}`)",
        f"- packing: {p.n_identities:,} identities, objective `{p.objective}`, alpha {p.alpha}, "
        f"{p.iterations:,} iterations (`{optimizer}`)",
        generation_line(gen),
        f"- alignment: MTCNN to the ArcFace {settings.alignment.size} px template",
        f"- embedder: `{settings.embedder.backend}` (`{settings.embedder.weights}`)",
    ]


def generation_line(gen: GenerationSettings) -> str:
    if gen.generator == "mobilestylegan":
        v = gen.variants
        return (
            f"- generation: MobileStyleGAN (`{gen.weights}`), each identity realised from its "
            f"nearest gallery face ({gen.realise.calls} generator calls), "
            f"{gen.images_per_identity} variants each (donor styles from layer "
            f"{v.fine_from_layer}, truncation +-{v.truncation_jitter}, yaw +-{v.yaw} degrees, "
            f"fresh noise {v.fresh_noise}), kept at the embedder's FAR {v.accept_far} on the "
            f"gallery, {gen.resolution} px"
        )
    return (
        f"- generation: {gen.images_per_identity} images per identity, beta {gen.beta}, "
        f"{gen.steps} steps, guidance {gen.guidance_scale}, {gen.resolution} px (`{gen.weights}`)"
    )


def licence_lines(settings: Settings, tiny_root: str, preamble: str = "") -> list[str]:
    """The "Licences" section of a card: the most restrictive terms first, then every model's."""
    rows = licence_rows(models_used(settings, tiny_root))
    lead = [preamble, ""] if preamble else []
    return ["## Licences", "", *lead, most_restrictive(rows), "", licence_table(rows)]
