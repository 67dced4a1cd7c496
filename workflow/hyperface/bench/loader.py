"""The training input pipeline: decoded, augmented 112 px images/s per CPU core, from containers.

    python -m hyperface.bench.loader --images 8192

Writes one aligned shard of real face crops (scikit-image's astronaut, jittered; PNG and JPEG 95),
then reads it as training does - the epoch's streaming order, decode, AdaFace's augmentations at
the paper's probabilities, conversion to the network's tensor - in one process on one thread. A
GPU needs about 4,000 images/s for iResNet50 on an H100: divide by the rate here for the cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from hyperface.bench.containers import faces
from hyperface.recognition.training import FaceDataset
from hyperface.storage import manifests
from hyperface.storage.containers import Encoding, image_cell

PAPER_AUGMENTATION = {
    "flip_prob": 0.5,
    "crop_prob": 0.2,
    "low_res_prob": 0.2,
    "photometric_prob": 0.2,
}


def rate(root: Path, n: int, batch: int, augmentation: dict) -> float:
    frame = pd.DataFrame(
        {"container": "shard.parquet", "row": np.arange(n), "label": np.arange(n) // 64}
    )
    data = FaceDataset(frame, root, seed=0, **augmentation)
    batches = data.batches(batch)
    t0 = time.perf_counter()
    for rows in batches:
        torch.stack([data[i][0] for i in rows])
    return sum(map(len, batches)) / (time.perf_counter() - t0)


def write_crops(root: Path, n: int, encoding: Encoding) -> None:
    """``root``/shard.parquet: ``n`` jittered real face crops, 64 to an identity."""
    schema = pa.schema([("identity", pa.int64()), ("image", manifests.IMAGE)])
    manifests.write_manifest(
        root / "shard.parquet",
        {
            "identity": np.arange(n) // 64,
            "image": [image_cell(c, f"{i}", encoding) for i, c in enumerate(faces(n, 112))],
        },
        schema,
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hyperface.bench.loader")
    ap.add_argument("--images", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    print(f"# {args.images:,} crops, batches of {args.batch}, one process, one thread\n")
    print("| encoding | augmentation | images/s per core |\n|---|---|---:|")
    for encoding in (Encoding("png"), Encoding("jpeg", 95)):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_crops(root, args.images, encoding)
            for name, aug in (("none", {}), ("paper (AdaFace)", PAPER_AUGMENTATION)):
                print(
                    f"| {encoding.format} | {name} | "
                    f"{rate(root, args.images, args.batch, aug):,.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
