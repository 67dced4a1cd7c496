"""Shard containers measured: Parquet with an image column (ours) against WebDataset tar shards.

    python -m hyperface.bench.containers --images 2048

Images are a real face photo (scikit-image's astronaut) jittered per image, at 512 px (what
generation writes) and as 112 px crops (what training reads). Printed per format: bytes per
image, encode and decode cost, then per container: write, sequential read (+ decode) and random
single-image reads, and files per shard. The tar reader gets byte offsets from an index built at
write time (WebDataset itself has none: random access would need one beside every shard).
"""

from __future__ import annotations

import argparse
import io
import tarfile
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa

from hyperface.storage import manifests
from hyperface.storage.containers import Container, Encoding, decode, encode


def faces(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` distinct photo-like images: the astronaut's face, shifted, scaled and re-lit."""
    from skimage import data

    photo = data.astronaut()[:300, 100:400]  # the face and shoulders
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        scale, dx, dy = rng.uniform(0.9, 1.1), rng.uniform(-8, 8), rng.uniform(-8, 8)
        m = cv2.getRotationMatrix2D((150, 150), rng.uniform(-5, 5), scale)
        m[:, 2] += (dx, dy)
        image = cv2.warpAffine(photo, m, (300, 300), borderMode=cv2.BORDER_REFLECT)
        image = cv2.resize(
            image, (size, size), interpolation=cv2.INTER_AREA if size < 300 else cv2.INTER_CUBIC
        )
        out.append(np.clip(image * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8))
    return out


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s"


def formats(images: list[np.ndarray]) -> None:
    for enc in (Encoding("png"), Encoding("jpeg", 95), Encoding("jpeg", 90), Encoding("webp", 90)):
        t0 = time.perf_counter()
        blobs = [encode(im, enc) for im in images]
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        for b in blobs:
            decode(b)
        t_dec = time.perf_counter() - t0
        print(
            f"| {images[0].shape[0]} | {enc.format} q{enc.quality} | "
            f"{np.mean([len(b) for b in blobs]) / 1024:,.1f} "
            f"| {_rate(len(blobs), t_enc)} | {_rate(len(blobs), t_dec)} |"
        )


def parquet(
    blobs: list[bytes], folder: Path, rng: np.random.Generator
) -> tuple[float, float, float, int]:
    path = folder / "shard.parquet"
    schema = pa.schema([("index", pa.int64()), ("image", manifests.IMAGE)])
    t0 = time.perf_counter()
    with manifests.ManifestWriter(path, schema) as writer:
        for start in range(0, len(blobs), 64):  # an identity at a time, as the shard jobs write
            part = blobs[start : start + 64]
            writer.write(
                {
                    "index": np.arange(start, start + len(part)),
                    "image": [{"bytes": b, "path": f"{start + i}.png"} for i, b in enumerate(part)],
                }
            )
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    reader = Container(path, cache_groups=1)
    for row in range(len(blobs)):
        decode(reader.encoded([row])[0])
    t_stream = time.perf_counter() - t0
    rows = rng.integers(0, len(blobs), 200)
    t0 = time.perf_counter()
    for row in rows:
        Container(path, cache_groups=1).encoded([int(row)])
    t_random = (time.perf_counter() - t0) / len(rows)
    return t_write, t_stream, t_random, 1


def webdataset(
    blobs: list[bytes], folder: Path, rng: np.random.Generator
) -> tuple[float, float, float, int]:
    path = folder / "shard.tar"
    t0 = time.perf_counter()
    offsets = []
    with tarfile.open(path, "w") as tar:
        for i, b in enumerate(blobs):
            info = tarfile.TarInfo(f"{i:07d}.png")
            info.size = len(b)
            tar.addfile(info, io.BytesIO(b))
            offsets.append(
                tar.offset
                - tarfile.BLOCKSIZE * ((len(b) + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE)
            )
    np.save(folder / "shard.idx.npy", np.array(offsets))  # the index random access needs
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    with tarfile.open(path, "r") as tar:
        for member in tar:
            decode(tar.extractfile(member).read())
    t_stream = time.perf_counter() - t0
    index = np.load(folder / "shard.idx.npy")
    rows = rng.integers(0, len(blobs), 200)
    t0 = time.perf_counter()
    for row in rows:
        with open(path, "rb") as f:
            f.seek(int(index[row]))
            f.read(len(blobs[row]))
    t_random = (time.perf_counter() - t0) / len(rows)
    return t_write, t_stream, t_random, 2


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hyperface.bench.containers")
    ap.add_argument("--images", type=int, default=2048)
    args = ap.parse_args(argv)
    sets = {
        size: faces(args.images if size == 112 else args.images // 4, size) for size in (112, 512)
    }
    print("| px | encoding | KiB/image | encode | decode |\n|---:|---|---:|---:|---:|")
    for images in sets.values():
        formats(images)
    print(
        "\n| px | container | write | read + decode (stream) | random read (ms/image) | "
        "files/shard |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for size, images in sets.items():
        blobs = [encode(im, Encoding("png")) for im in images]
        for name, run in (("parquet", parquet), ("webdataset tar", webdataset)):
            with tempfile.TemporaryDirectory() as tmp:
                t_write, t_stream, t_random, files = run(blobs, Path(tmp), np.random.default_rng(0))
            print(
                f"| {size} | {name} | {_rate(len(blobs), t_write)} | {_rate(len(blobs), t_stream)} "
                f"| {t_random * 1000:.2f} | {files} |"
            )


if __name__ == "__main__":
    main()
