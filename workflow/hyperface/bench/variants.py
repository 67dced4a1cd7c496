"""How much each MobileStyleGAN variant setting changes a face, measured the way the workflow keeps
them: the embedder's cosine to the face, the share at or above the acceptance threshold, and the
head turn MTCNN measures.

    python -m hyperface.bench.variants --weights resources/packaged/mobilestylegan \\
        --embedder resources/packaged/sface [--faces 24]

One setting at a time, the others off (no donor, no jitter, no turn, the network's own noise); the
threshold is the one the ``variation`` rule would measure (FAR 1 %) on the same random faces. The
defaults of ``generation.variants`` were chosen from this table: each keeps nearly every image the
person while changing what a photo of that person changes.
"""

from __future__ import annotations

import argparse

import numpy as np

from hyperface.generators.directions import fit_direction
from hyperface.generators.identities import FaceEmbedding, variant
from hyperface.generators.mobilestylegan import STYLE_LAYERS, MobileStyleGANGallery
from hyperface.quality.statistics import head_pose
from hyperface.recognition.embedders import load_embedder
from hyperface.recognition.thresholds import impostor_threshold
from hyperface.seeding import numpy_rng
from hyperface.settings import VariantSettings

OFF = {"fine_from_layer": STYLE_LAYERS, "truncation_jitter": 0.0, "yaw": 0.0, "fresh_noise": False}
CASES = {
    "fresh noise maps": {"fresh_noise": True},
    "donor styles from layer 16": {"fine_from_layer": 16},
    "donor styles from layer 12": {"fine_from_layer": 12},
    "donor styles from layer 9": {"fine_from_layer": 9},
    "donor styles from layer 6": {"fine_from_layer": 6},
    "truncation jitter 0.1": {"truncation_jitter": 0.1},
    "yaw 30": {"yaw": 30.0},
    "yaw 60": {"yaw": 60.0},
    "all (the defaults)": {k: v for k, v in VariantSettings().as_section().items() if k in OFF},
}


def measure(weights: str, embedder: str, faces: int, per_face: int) -> str:
    gen = MobileStyleGANGallery(weights, truncation_psi=0.7)
    face = FaceEmbedding(load_embedder("sface", embedder))
    latents = gen.gallery_latents(list(range(faces)), seed=0)
    anchors, yaws = [], []
    for w in latents:
        embedding, marks = face.with_landmarks(gen.draw_styles(np.tile(w, (STYLE_LAYERS, 1))))
        anchors.append(embedding)
        yaws.append(head_pose(marks[None])[0, 0])
    found = [i for i, a in enumerate(anchors) if a is not None]
    emb = np.stack([anchors[i] for i in found])
    threshold, pairs = impostor_threshold(emb, 0.01)
    direction = fit_direction(latents[found], np.array(yaws)[found])
    lines = [
        f"# {len(found)} faces, {per_face} variants each; SFace threshold {threshold:.3f} "
        f"(FAR 1 % on {pairs} pairs of them); yaw direction held-out r {direction.heldout_r:.2f}",
        "| variant | mean cosine to the face | min | kept | measured yaw change (mean abs, deg) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, change in CASES.items():
        settings = VariantSettings(**{**OFF, **change})
        cos, turns = [], []
        for i in found:
            for k in range(per_face):
                styles, noise = variant(gen, latents[i], settings, direction,
                                        numpy_rng(0, "bench_variants", i, k))  # fmt: skip
                e, marks = face.with_landmarks(gen.draw_styles(styles, noise))
                cos.append(-1.0 if e is None else float(e @ anchors[i]))
                turns.append(abs(head_pose(marks[None])[0, 0] - yaws[i]))
        cos = np.array(cos)
        lines.append(f"| {name} | {cos.mean():.3f} | {cos.min():.3f} | "
                     f"{(cos >= threshold).mean():.0%} | {np.nanmean(turns):.1f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="resources/packaged/mobilestylegan")
    ap.add_argument("--embedder", default="resources/packaged/sface")
    ap.add_argument("--faces", type=int, default=24)
    ap.add_argument("--per-face", type=int, default=2)
    args = ap.parse_args(argv)
    print(measure(args.weights, args.embedder, args.faces, args.per_face))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
