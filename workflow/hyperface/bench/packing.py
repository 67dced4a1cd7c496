"""Packing benchmark: speed and peak memory per iteration, and quality at equal wall time.

    python -m hyperface.bench.packing                 # n=10,000, d=512, as in the paper
    python -m hyperface.bench.packing --n 2000 --quality-seconds 5
    python -m hyperface.bench.packing scale --n 20000 --dim 128 --seconds 60
    python -m hyperface.bench.packing search --n 20000 50000 --dim 512

``scale`` starts the full-batch soft-min, the paper's Algorithm 2 (hard_min on mini-batches) and
the neighbour list from the same random points, gives each the same wall time (SLURM's way: a
SIGUSR1 when the time is up, on which the run checkpoints and stops), and measures each result
exactly over the whole set.

Each speed measurement runs in a fresh subprocess so its peak memory is its own (peak RSS above the
process's state before the first step on CPU, ``torch.cuda.max_memory_allocated`` on CUDA).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from hyperface.packing import neighbours
from hyperface.packing import solver as packing
from hyperface.settings import PackingSettings

METHODS = ("naive", "ours", "ours_reg", "matmul")
DESCRIPTION = {
    "naive": "naive: full n x n cosine matrix through autograd (hard_min)",
    "ours": "ours: blocked closest pair, gradient through that pair only (hard_min, alpha=0)",
    "ours_reg": "ours + regulariser (hard_min, alpha=0.5, gallery of n)",
    "matmul": "bare X @ X.T",
}
PAPER_SECONDS = 6 * 3600  # 10k identities, 100k iterations, one RTX 3090 (paper, Sec. 2)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _step(method: str, x: torch.Tensor, gallery: torch.Tensor) -> None:
    if method == "matmul":
        _ = x @ x.T
    elif method == "naive":
        x = x.detach().requires_grad_(True)
        xn = torch.nn.functional.normalize(x, dim=1)
        sims = xn @ xn.T - 3.0 * torch.eye(len(x), device=x.device)
        sims.max().backward()
    else:
        alpha = 0.5 if method == "ours_reg" else 0.0
        packing.loss_gradient(x, gallery, objective="hard_min", alpha=alpha)


def measure(method: str, n: int, dim: int, iters: int, device: str) -> dict:
    """Median seconds per iteration and peak extra memory (MiB) of one method, in this process."""
    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=1).to(device)
    gallery = torch.nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=1).to(device)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_mb()
    times = []
    for i in range(iters + 1):
        sync()
        t0 = time.perf_counter()
        _step(method, x, gallery)
        sync()
        if i:  # the first call warms up kernels and allocators
            times.append(time.perf_counter() - t0)
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    return {"method": method, "seconds": statistics.median(times), "peak_mb": max(peak, 0.0)}


def quality(n: int, dim: int, seconds: float, device: str) -> list[dict]:
    """Final min / mean nearest-neighbour distance of each objective after ``seconds`` of work."""
    rows = []
    x0 = np.random.default_rng(0).normal(size=(n, dim))
    temperature = {"softmin": 0.01, "energy": 0.1}
    for objective in packing.OBJECTIVES:
        kwargs = dict(
            alpha=0.0,
            lr=0.01,
            lr_decay=1.0,
            objective=objective,
            temperature=temperature.get(objective, 0.01),
        )
        iterations = 20
        for _ in range(3):  # calibrate the iteration count to the time budget
            s = PackingSettings.from_section(kwargs, iterations=iterations, trace_every=iterations)
            res = packing.optimize(s, x0, device=device)
            spent = res.trace["elapsed_s"].iloc[-1]
            if spent >= 0.9 * seconds:
                break
            iterations = max(iterations + 1, int(iterations * seconds / max(spent, 1e-3)))
        last = res.trace.iloc[-1]
        rows.append(
            {
                "objective": objective,
                "iterations": iterations,
                "seconds": last["elapsed_s"],
                "min_distance": last["min_distance"],
                "max_cos": 1 - last["min_distance"],
                "mean_nn_distance": last["mean_nn_distance"],
            }
        )
    return rows


def timed_run(
    x0: np.ndarray, seconds: float, device: str, folder: Path, method: dict
) -> tuple[int, torch.Tensor]:
    """Iterations done and points reached by one method in ``seconds`` of wall time."""
    ckpt = folder / "timed.pt"
    ckpt.unlink(missing_ok=True)
    forever = 10**12
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.start()
    try:
        s = PackingSettings.from_section(
            method,
            alpha=0.0,
            lr=0.01,
            iterations=forever,
            lr_step=forever,
            trace_every=forever,
            checkpoint_every=forever,
        )
        result = packing.optimize(s, x0, checkpoint=ckpt, device=device)
        return result.iterations_run, torch.from_numpy(result.embeddings)
    except packing.PackingInterrupted:
        state = torch.load(ckpt, weights_only=True)
        return int(state["iteration"]), torch.nn.functional.normalize(state["x"], dim=1)
    finally:
        timer.cancel()


def scale(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m hyperface.bench.packing scale")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--batch-size", type=int, default=1000, help="Algorithm 2's mini-batch")
    ap.add_argument("--neighbours", type=int, default=16)
    ap.add_argument("--refresh-every", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=0.01)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    x0 = np.random.default_rng(0).normal(size=(args.n, args.dim)).astype(np.float32)
    methods = {
        "full-batch softmin (Algorithm 1)": {
            "objective": "softmin",
            "temperature": args.temperature,
        },
        f"paper's Algorithm 2: hard_min on mini-batches of {args.batch_size}": {
            "objective": "hard_min",
            "batch_size": args.batch_size,
        },
        f"neighbour list: softmin over {args.neighbours} neighbours, refreshed every "
        f"{args.refresh_every} iterations": {
            "objective": "neighbour_list",
            "neighbours": args.neighbours,
            "refresh_every": args.refresh_every,
            "temperature": args.temperature,
        },
    }
    start = neighbours.quality(
        torch.nn.functional.normalize(torch.from_numpy(x0), dim=1).to(args.device)
    )
    print(
        f"# packing at scale: n={args.n}, d={args.dim}, {args.seconds:.0f} s per method, "
        f"device={args.device}, torch threads={torch.get_num_threads()}, Adam lr 0.01, alpha 0; "
        f"start: min pairwise distance {start['min_distance']:.4f}\n"
    )
    print("| method | iterations | seconds | min pairwise distance | max cosine |")
    print("|---|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in methods.items():
            t0 = time.perf_counter()
            iterations, x = timed_run(x0, args.seconds, args.device, Path(tmp), settings)
            spent = time.perf_counter() - t0
            q = neighbours.quality(x.to(args.device))
            print(
                f"| {name} | {iterations} | {spent:.0f} | {q['min_distance']:.4f} | "
                f"{q['max_cosine']:.4f} |",
                flush=True,
            )


def speed_table(args: argparse.Namespace) -> None:
    """Seconds and peak memory per iteration of each method, each in a fresh process."""
    print(
        f"# packing benchmark: n={args.n}, d={args.dim}, device={args.device}, "
        f"torch threads={torch.get_num_threads()}\n"
    )
    results = {}
    for method in METHODS:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "hyperface.bench.packing",
                "--only",
                method,
                "--n",
                str(args.n),
                "--dim",
                str(args.dim),
                "--iters",
                str(args.iters),
                "--device",
                args.device,
            ],  # fmt: skip
            capture_output=True,
            text=True,
            check=True,
        )
        results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    print("| method | s / iteration | peak extra memory (MiB) | vs naive | vs bare matmul |")
    print("|---|---:|---:|---:|---:|")
    for method in METHODS:
        r = results[method]
        print(
            f"| {DESCRIPTION[method]} | {r['seconds']:.3f} | {r['peak_mb']:.0f} | "
            f"{results['naive']['seconds'] / r['seconds']:.2f}x faster | "
            f"{r['seconds'] / results['matmul']['seconds']:.2f}x |"
        )
    for method in ("ours", "ours_reg"):
        hours = results[method]["seconds"] * 100_000 / 3600
        print(
            f"\nprojected 100,000 iterations with {method} at n={args.n}: {hours:.1f} h on "
            f"{args.device} (paper: {PAPER_SECONDS / 3600:.0f} h on one RTX 3090)"
        )


def search(argv: list[str]) -> None:
    """One neighbour-list refresh (k nearest of every point among all, the step that dominates
    packing at 300k): float32 scan in the old 64 MiB blocks, in 1 GiB blocks, and a bfloat16 scan
    with exact re-scoring; seconds, GFLOP/s and the share of lists equal to the exact ones."""
    ap = argparse.ArgumentParser(prog="python -m hyperface.bench.packing search")
    ap.add_argument("--n", type=int, nargs="+", default=[20_000])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    print("| n | search | blocks | seconds | GFLOP/s | lists equal to exact |")
    print("|---:|---|---|---:|---:|---:|")
    for n in args.n:
        x = torch.nn.functional.normalize(
            torch.randn(n, args.dim, generator=torch.Generator().manual_seed(0)), dim=1
        ).to(args.device)
        flop = 2.0 * n * n * args.dim
        exact = None
        for mode, rows in [("exact", (1 << 24) // n), ("exact", None), ("bfloat16", None)]:
            t0 = time.perf_counter()
            _, where = neighbours.top_k(x, x, args.k, exclude_self=True, chunk_size=rows,
                                        search=mode)  # fmt: skip
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            secs = time.perf_counter() - t0
            exact = where.sort(1).values if exact is None else exact
            equal = float((where.sort(1).values == exact).all(1).float().mean())
            blocks = rows or neighbours.chunk_rows(n, None)
            rate = flop / secs / 1e9
            print(f"| {n:,} | {mode} | {blocks} rows | {secs:.2f} | {rate:.0f} | {equal:.4f} |")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["scale"]:
        return scale(argv[1:])
    if argv[:1] == ["search"]:
        return search(argv[1:])
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quality-n", type=int, default=1000)
    ap.add_argument("--quality-dim", type=int, default=64)
    ap.add_argument("--quality-seconds", type=float, default=20.0)
    ap.add_argument("--only", choices=METHODS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.only:
        print(json.dumps(measure(args.only, args.n, args.dim, args.iters, args.device)))
        return

    speed_table(args)
    print(
        f"\n# quality at equal wall time: n={args.quality_n}, d={args.quality_dim}, alpha=0, "
        f"Adam lr 0.01, {args.quality_seconds:.0f} s each\n"
    )
    print(
        "| objective | iterations | seconds | min pairwise distance | max cosine | mean NN "
        "distance |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in quality(args.quality_n, args.quality_dim, args.quality_seconds, args.device):
        print(
            f"| {r['objective']} | {r['iterations']} | {r['seconds']:.1f} | "
            f"{r['min_distance']:.4f} | "
            f"{r['max_cos']:.4f} | {r['mean_nn_distance']:.4f} |"
        )


if __name__ == "__main__":
    main()
