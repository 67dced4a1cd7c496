"""Identities drawn by MobileStyleGAN: a packed reference realised as a face the generator can draw,
and that face's variants - other images of the same person.

Packing moves references off the generator's face manifold; MobileStyleGAN has no embedding
input, so each reference is realised by searching w from the nearest gallery face's latent for a
face whose embedding is near it (a (1+1) evolution strategy with the 1/5th success rule: each call
draws one face, aligns and embeds it). The face found is the identity's anchor; what was reached
(its embedding and its cosine to the reference) is recorded, not assumed.

A variant keeps the anchor's coarse and middle styles (face shape, features: who it is) and
changes what does not make the person: fine styles from a random donor face (lighting, colours,
background), the truncation, a head turn along a direction fitted on the gallery, fresh noise maps.
Every random number of a variant is drawn, in a fixed order, from its own stream, whatever the
settings, so changing one setting leaves the others' draws as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyperface.generators.directions import Direction
from hyperface.generators.mobilestylegan import STYLE_LAYERS, Z_DIM, MobileStyleGANGallery
from hyperface.recognition.alignment import Aligner
from hyperface.settings import RealiseSettings, VariantSettings

POSE_LAYERS = 6  # the 8 and 16 px blocks' styles: head pose, face shape
GROW, SHRINK = 1.5, 1.5**-0.25  # the 1/5th rule: the step holds still at one success in five


class FaceEmbedding:
    """A generated face -> MTCNN to the ArcFace template -> the run's embedder, as the gallery
    embeds its faces; faces MTCNN does not find are reported as such."""

    def __init__(self, embedder, device: str = "cpu"):
        self.aligner = Aligner(fallback="center_crop", min_face_prob=0.0, device=device)
        self.embedder = embedder

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        return self.with_landmarks(image)[0]

    def with_landmarks(self, image: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """The embedding (None without a face) and MTCNN's five landmarks (NaN without one)."""
        found = self.aligner.align([image])[0]
        if found.status == "no_face":
            return None, found.landmarks
        return self.embedder.embed([found.crop])[0], found.landmarks


@dataclass(frozen=True)
class Realised:
    latent: np.ndarray  # (512,) w of the anchor face
    embedding: np.ndarray  # the embedder's embedding of the anchor face
    cos: float  # the anchor's cosine to the packed reference


def anchor_styles(latent: np.ndarray) -> np.ndarray:
    return np.tile(np.asarray(latent, np.float32), (STYLE_LAYERS, 1))


def realise(
    gen: MobileStyleGANGallery,
    face: FaceEmbedding,
    reference: np.ndarray,
    start: np.ndarray,
    settings: RealiseSettings,
    rng: np.random.Generator,
) -> Realised:
    """The face nearest ``reference`` found within ``settings.calls`` generator calls, starting
    from the latent ``start``; steps are random faces' offsets from the mean w (directions that
    stay among faces), scaled by a step size that grows on success and shrinks on failure."""
    target = np.asarray(reference, np.float64)
    target /= np.linalg.norm(target)

    def score(latent: np.ndarray) -> tuple[float, np.ndarray | None]:
        emb = face(gen.draw_styles(anchor_styles(latent)))
        return (-1.0, None) if emb is None else (float(emb @ target), emb)

    latent = np.asarray(start, np.float32)
    best, emb = score(latent)
    step = settings.step
    for _ in range(settings.calls - 1):
        offset = gen.latents(rng.standard_normal((1, Z_DIM)))[0] - gen.mean_w[0]
        candidate = latent + step * offset
        cos, cand_emb = score(candidate)
        if cos > best:
            latent, best, emb, step = candidate, cos, cand_emb, step * GROW
        else:
            step *= SHRINK
    if emb is None:  # not one call drew a face MTCNN finds: nothing to anchor the identity on
        raise RuntimeError("no face found near the packed reference")
    return Realised(latent, emb, best)


def variant(
    gen: MobileStyleGANGallery,
    anchor: np.ndarray,
    settings: VariantSettings,
    yaw: Direction | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Per-layer styles (23, 512) and noise maps (None: the network's own) of one variant of the
    face with latent ``anchor``."""
    psi_scale = 1.0 + rng.uniform(-1.0, 1.0) * settings.truncation_jitter / gen.psi
    donor = gen.latents(rng.standard_normal((1, Z_DIM)))[0]
    turn = rng.uniform(-1.0, 1.0) * settings.yaw
    noise = gen.fresh_noise(rng)
    mean = gen.mean_w[0]
    styles = anchor_styles(mean + psi_scale * (np.asarray(anchor, np.float32) - mean))
    styles[settings.fine_from_layer :] = donor
    if yaw is not None:
        styles[:POSE_LAYERS] += turn * yaw.step
    return styles, (noise if settings.fresh_noise else None)
