"""Every figure a first GPU hour should produce, in one command: generation, embedding, detection,
training and packing speeds on the machine it runs on.

    python -m hyperface.bench.gpu --weights resources/weights     # a GPU, real weights: ~10 min
    python -m hyperface.bench.gpu --smoke                          # every section, smallest, CPU

Sections (each timed on its own; one that fails prints why and the others still run; the exit
status says whether any failed):

- arc2face: images/s and peak memory at batch 16/32/64 in float16 and bfloat16; at batch 32,
  channels_last and torch.compile on, with how far their images move from the plain run's
- arcface: the ArcFace ONNX model (onnxruntime's CUDA provider), images/s at batch 128
- mtcnn: detection + landmarks on 512 px faces, images/s
- training: iResNet50 + AdaFace under AMP at batch 256 with 10k and 300k classes, images/s, and
  whether the loader's decode + augmentation on this machine's cores keeps up
- packing: ms per iteration of the paper's objective at 10k identities, and one 300k neighbour-list
  refresh (float32 and bfloat16 search)

The GPU machine needs, installed beforehand (it has no network): torch 2.14 with CUDA, diffusers,
transformers, accelerate, safetensors, onnxruntime-gpu, insightface and facenet-pytorch (both with
--no-deps), numpy, pandas, pyarrow, opencv-python-headless, scikit-image, and this checkout's
``workflow/`` on PYTHONPATH. ``--weights`` holds Arc2Face's folders as scripts/fetch_weights.py
lays them out (arc2face/{arc2face,encoder,arcface.onnx}, stable-diffusion-v1-5/).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hyperface.bench.containers import faces

SECTIONS: dict[str, Callable[[Bench], list[dict]]] = {}


@dataclass
class Bench:
    """Where the models are and how large the runs: real weights on a GPU, tiny ones in --smoke."""

    device: str
    smoke: bool
    arc2face: Path  # the folder holding arc2face/ and encoder/
    base_model: Path
    arcface: Path

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def peak_gb(self) -> float:
        return torch.cuda.max_memory_allocated() / 2**30 if self.device.startswith("cuda") else 0.0

    def reset_peak(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()

    def timed(self, fn: Callable[[], object]) -> float:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0


def section(name: str):
    def register(fn):
        SECTIONS[name] = fn
        return fn

    return register


@section("arc2face")
def arc2face(b: Bench) -> list[dict]:
    cuda = b.device.startswith("cuda")
    dtypes = [torch.float16, torch.bfloat16] if cuda else [torch.float32]
    batches = [2] if b.smoke else [16, 32, 64]
    middle = batches[len(batches) // 2]
    cases = [(batch, dtype, False, False) for dtype in dtypes for batch in batches]
    cases += [(middle, dtypes[0], True, False)] + (
        [(middle, dtypes[0], False, True)] if cuda else []
    )
    rows, plain = [], {}
    for batch, dtype, channels_last, compiled in cases:
        row, images = _arc2face_case(b, batch, dtype, channels_last, compiled)
        key = (batch, dtype)
        moved = float(np.abs(images - plain[key]).mean()) if key in plain else 0.0
        plain.setdefault(key, images)
        rows.append({**row, "mean |image change| (0-255)": moved})
    return rows


def _arc2face_case(
    b: Bench, batch: int, dtype: torch.dtype, channels_last: bool, compiled: bool
) -> tuple[dict, np.ndarray]:
    """Images/s at 25 steps from two timed lengths (time = fixed + per step x steps), peak memory,
    and the images of the shorter run (to compare with the plain run's)."""
    from hyperface.generators.arc2face import Arc2FaceGenerator

    gen = Arc2FaceGenerator(b.arc2face, b.base_model, device=b.device, dtype=dtype,
                            resolution=64 if b.smoke else 512)  # fmt: skip
    if channels_last:
        gen.pipe.unet.to(memory_format=torch.channels_last)
    if compiled:
        gen.pipe.unet = torch.compile(gen.pipe.unet)
    ids = torch.nn.functional.normalize(torch.randn(batch, 512, generator=_seeded(0)), dim=1)
    z = torch.randn((batch, *gen.latent_shape), generator=_seeded(1))
    steps = (1, 3) if b.smoke else (2, 6)
    gen.steps = steps[0]
    gen.generate(ids.numpy(), z)  # warm-up: compilation, cuDNN's autotuning
    b.reset_peak()
    times = []
    for n in steps:  # the faster of two runs of each length: noise would bend the line
        gen.steps = n
        times.append(min(b.timed(lambda: gen.generate(ids.numpy(), z)) for _ in range(2)))  # noqa: B023
    per_step = (times[1] - times[0]) / (steps[1] - steps[0])
    at_25 = times[0] + (25 - steps[0]) * per_step
    gen.steps = steps[0]
    images = gen.generate(ids.numpy(), z).astype(np.float32)
    row = {"batch": batch, "dtype": str(dtype).split(".")[-1], "channels_last": channels_last,
           "compile": compiled, "images/s (25 steps)": batch / at_25, "s/step": per_step,
           "peak GiB": b.peak_gb()}  # fmt: skip
    return row, images


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@section("arcface")
def arcface(b: Bench) -> list[dict]:
    from hyperface.recognition.embedders import InsightFaceEmbedder

    n, batch = (8, 4) if b.smoke else (4096, 128)
    model = InsightFaceEmbedder(b.arcface, device=b.device, batch_size=batch)
    crops = faces(n, 112)
    model.embed(crops[:batch])  # warm-up
    secs = b.timed(lambda: model.embed(crops))
    return [{"images": n, "batch": batch, "images/s": n / secs}]


@section("mtcnn")
def mtcnn(b: Bench) -> list[dict]:
    from hyperface.recognition.alignment import Aligner

    n, batch = (2, 2) if b.smoke else (512, 32)
    aligner = Aligner(device=b.device)
    images = faces(n, 512)
    aligner.align(images[:batch])  # warm-up
    found = []
    secs = b.timed(
        lambda: [found.extend(aligner.align(images[i : i + batch])) for i in range(0, n, batch)]
    )
    ok = sum(a.status == "ok" for a in found)
    return [{"images": n, "batch": batch, "images/s": n / secs, "faces found": f"{ok}/{n}"}]


@section("training")
def training(b: Bench) -> list[dict]:
    from hyperface.bench.loader import PAPER_AUGMENTATION, rate, write_crops
    from hyperface.bench.training import throughput
    from hyperface.storage.containers import Encoding

    backbone, width, batch = ("iresnet18", 8, 4) if b.smoke else ("iresnet50", 64, 256)
    classes = (10, 100) if b.smoke else (10_000, 300_000)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        n = 64 if b.smoke else 2048
        write_crops(Path(tmp), n, Encoding("png"))
        per_core = rate(Path(tmp), n, min(batch, n), PAPER_AUGMENTATION)
    rows = []
    for c in classes:
        ips = throughput(backbone, width, 512, batch, b.device, steps=2 if b.smoke else 10,
                         n_classes=c)  # fmt: skip
        rows.append({"backbone": backbone, "batch": batch, "classes": c, "images/s": ips,
                     "loader images/s": per_core * cores, "loader cores": cores,
                     "loader keeps up": per_core * cores >= ips})  # fmt: skip
    return rows


@section("packing")
def packing(b: Bench) -> list[dict]:
    from hyperface.bench.packing import measure
    from hyperface.packing.neighbours import top_k

    n, big = (500, 2000) if b.smoke else (10_000, 300_000)
    it = measure("ours_reg", n, 512, 2 if b.smoke else 10, b.device)
    rows = [{"what": f"hard_min + gallery pull, n={n:,}", "ms": 1000 * it["seconds"],
             "peak MiB": it["peak_mb"]}]  # fmt: skip
    x = torch.nn.functional.normalize(torch.randn(big, 512, generator=_seeded(0)), dim=1)
    x = x.to(b.device)
    for search in ("exact", "bfloat16"):
        b.reset_peak()
        secs = b.timed(lambda s=search: top_k(x, x, 16, exclude_self=True, search=s))
        rows.append({"what": f"neighbour-list refresh, n={big:,}, {search}", "ms": 1000 * secs,
                     "peak MiB": 1024 * b.peak_gb()})  # fmt: skip
    return rows


def _print(name: str, rows: list[dict], seconds: float) -> None:
    """A markdown table (no tabulate on the GPU machine)."""

    def cell(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    print(f"\n## {name} ({seconds:.0f} s)\n")
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row.values()) + " |")


def run(b: Bench, only: list[str]) -> list[str]:
    """Every section (or ``only``), each on its own; the names of those that failed."""
    failed = []
    for name in only or list(SECTIONS):
        t0 = time.perf_counter()
        try:
            rows = SECTIONS[name](b)
        except Exception:  # a section's failure is a result: report it, run the others
            failed.append(name)
            print(f"\n## {name}: FAILED after {time.perf_counter() - t0:.0f} s\n")
            traceback.print_exc(file=sys.stdout)
            continue
        _print(name, rows, time.perf_counter() - t0)
    return failed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m hyperface.bench.gpu", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--weights", type=Path, default=Path("resources/weights"))
    ap.add_argument("--smoke", action="store_true", help="tiny models, smallest sizes, the CPU")
    ap.add_argument("--only", nargs="*", choices=list(SECTIONS), default=[])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            from hyperface.generators.tiny import write_all

            paths = write_all(Path(tmp), seed=0, resolution=64)
            b = Bench("cpu", True, paths["arc2face"], paths["base_model"], paths["arcface"])
        else:
            w = args.weights
            b = Bench(args.device, False, w / "arc2face", w / "stable-diffusion-v1-5",
                      w / "arc2face" / "arcface.onnx")  # fmt: skip
        name = torch.cuda.get_device_name(0) if b.device.startswith("cuda") else "CPU"
        print(f"# hyperface.bench.gpu on {name}, torch {torch.__version__}, "
              f"{time.strftime('%Y-%m-%d')}{' (smoke)' if b.smoke else ''}")  # fmt: skip
        failed = run(b, args.only)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
