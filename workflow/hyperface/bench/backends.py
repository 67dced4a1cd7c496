"""Throughput of every model backend on the tiny checkpoints (or on real ones, by path).

    python -m hyperface.bench.backends                       # writes tiny models to a temp dir
    python -m hyperface.bench.backends --tiny resources/tiny  # reuse the demo's tiny models

Alignment is measured on 512x512 inputs (Arc2Face's output size), batched, with real faces from
scikit-image's astronaut photo so MTCNN has faces to find.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch


def rate(fn: Callable[[], int], repeats: int = 3) -> float:
    fn()  # warm-up: first calls allocate and select kernels
    t0, items = time.perf_counter(), 0
    for _ in range(repeats):
        items += fn()
    return items / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    from skimage import data

    from hyperface.generators.arc2face import Arc2FaceGenerator
    from hyperface.generators.gallery import load_gallery_generator
    from hyperface.generators.tiny import write_all
    from hyperface.recognition.alignment import Aligner
    from hyperface.recognition.embedders import load_embedder

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--tiny", type=Path, help="folder of tiny models (default: write them to a temp dir)"
    )
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    root = args.tiny or Path(tempfile.mkdtemp()) / "tiny"
    if args.tiny is None:
        write_all(root)
    b, dev = args.batch, args.device
    idx = list(range(b))
    rows = []
    sg = load_gallery_generator(
        "stylegan2", root / "stylegan2" / "ffhq-tiny.safetensors", device=dev
    )
    rows.append(("StyleGAN2 gallery (64 px)", "images", rate(lambda: len(sg.generate(idx, 0)))))
    ldm = load_gallery_generator("ldm", root / "ldm", device=dev, steps=4)
    rows.append(("LDM gallery (64 px, 4 steps)", "images", rate(lambda: len(ldm.generate(idx, 0)))))
    arcface = load_embedder("insightface", root / "arc2face" / "arcface.onnx", device=dev)
    faces = [np.random.default_rng(i).integers(0, 255, (112, 112, 3), dtype=np.uint8) for i in idx]
    rows.append(
        ("ArcFace ONNX embedder (112 px)", "faces", rate(lambda: len(arcface.embed(faces))))
    )
    a2f = Arc2FaceGenerator(
        root / "arc2face", root / "stable-diffusion-v1-5", device=dev, steps=4, resolution=64
    )
    emb = np.random.default_rng(0).normal(size=(b, 512)).astype(np.float32)
    z = torch.randn(b, *a2f.latent_shape)
    rows.append(
        ("Arc2Face (64 px, 4 steps, guidance 3)", "images", rate(lambda: len(a2f.generate(emb, z))))
    )
    aligner = Aligner(device=dev)
    photo = cv2.resize(data.astronaut(), (512, 512))
    images = [np.roll(photo, 8 * i, axis=1) for i in idx]
    rows.append(
        (
            "MTCNN alignment (512x512 in, 112 out)",
            "images",
            rate(lambda: len(aligner.align(images))),
        )
    )
    print(f"device={dev}, torch threads={torch.get_num_threads()}, batch={b}\n")
    print("| backend | items/s |")
    print("|---|---:|")
    for name, unit, value in rows:
        print(f"| {name} | {value:.1f} {unit}/s |")


if __name__ == "__main__":
    main()
