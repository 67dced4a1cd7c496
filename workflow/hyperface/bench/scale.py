"""The CPU-side stages at the paper's scale: seconds and peak memory of each, on synthetic shards.

    python -m hyperface.bench.scale --identities 10000 --images 64

Builds what the GPU stages would have left - aligned shards of 400 identities (each image a real
112 px face crop, PNG or JPEG, inside the shard; consistent embeddings, landmarks, statuses), references
and a gallery - then runs each CPU-side stage as the workflow does, each in a fresh process so its
peak resident memory is its own. Verification is insightface's 10-fold protocol on 400k pairs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np

from hyperface import manifests
from hyperface.containers import Encoding, image_cell
from hyperface.images import ARCFACE_TEMPLATE
from hyperface.shards import shard_names, shard_range

DIM = 512


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def build(root: Path, identities: int, images: int, gallery: int, encoding: Encoding,
          per_shard: int = 400) -> list[Path]:
    """references.parquet, a gallery and the aligned shards; returns the shard paths."""
    from hyperface.bench.containers import faces
    from hyperface.stages.merge import concat_gallery

    rng = np.random.default_rng(0)
    refs = _unit(rng.normal(size=(identities, DIM)))
    manifests.write_manifest(root / "references.parquet", {
        "identity": np.arange(identities), "embedding": refs, "init_index": np.arange(identities) % gallery,
        "nearest_gallery": np.arange(identities), "nearest_gallery_cos": np.ones(identities),
        "nearest_identity_cos": np.zeros(identities)}, manifests.references_schema(DIM))
    crop = image_cell(faces(1, 112)[0], "face", encoding)
    shard = root / "gallery/shard-00000.parquet"
    manifests.write_manifest(shard, {"index": np.arange(gallery), "image": [crop] * gallery,
                                     "seed": np.arange(gallery), "embedding": _unit(rng.normal(size=(gallery, DIM)))},
                             manifests.gallery_shard_schema(DIM), {"backends": {"gallery": "synthetic"}})
    concat_gallery([shard], root / "gallery.parquet", root)
    paths = []
    for name in shard_names(identities, per_shard):
        span = shard_range(name, identities, per_shard)
        ids = np.repeat(np.arange(span.start, span.stop), images)
        n = len(ids)
        emb = _unit(refs[ids] + rng.normal(scale=0.04, size=(n, DIM)).astype(np.float32))
        marks = (ARCFACE_TEMPLATE * 4 + 120).reshape(-1)[None] + rng.normal(scale=2, size=(n, 10))
        path = root / f"aligned/shard-{name}.parquet"
        manifests.write_manifest(path, {
            "identity": ids, "sample": np.tile(np.arange(images), n // images), "image": [crop] * n,
            "status": np.where(rng.random(n) < 0.97, "ok", "low_prob"), "face_prob": rng.uniform(0.9, 1, n),
            "box": np.tile([80.0, 80.0, 430.0, 470.0], (n, 1)), "landmarks": marks, "embedding": emb,
            "reference_cos": np.einsum("ij,ij->i", emb, refs[ids]), "nearest_other_cos": rng.uniform(0.1, 0.3, n)},
            manifests.aligned_schema(DIM))
        paths.append(path)
    return paths


def _stage(name: str, root: Path, aligned: list[Path], args: argparse.Namespace) -> None:
    """One stage, as its rule runs it."""
    if name == "dataset":
        from hyperface.stages.dataset import build_dataset

        build_dataset(aligned, root / "dataset.parquet", root / "stats/filter_counts.parquet", root,
                      n_identities=args.identities, holdout_identities=args.holdout,
                      dataset={"keep_undetected": False, "min_reference_cos": 0.3})
    elif name == "stats":
        from hyperface.stages.stats import dataset_stats

        dataset_stats(aligned, root / "references.parquet", root / "stats/identities.parquet",
                      root / "stats/similarity.parquet", root / "stats/images.parquet")
    elif name == "holdout_bin":
        from hyperface.stages.holdout import build_holdout_bin

        build_holdout_bin(aligned, root / "eval/holdout.bin", root, seed=0, n_identities=args.identities,
                          holdout_identities=args.holdout, max_pairs=6000)
    elif name == "leakage":
        from hyperface.stages.leakage import find_leakage
        from hyperface.tiny_models import write_arcface_onnx

        write_arcface_onnx(root / "arcface.onnx")  # the real faces come from the gallery's embeddings
        find_leakage(aligned, root / "gallery.parquet", root / "leakage/pairs.parquet", root / "leakage/pairs",
                     root, leakage={"reference": "gallery", "top_k": 16},
                     embedder={"backend": "insightface", "weights": str(root / "arcface.onnx"), "batch_size": 64},
                     device="cpu")
    elif name == "verification (400k pairs)":
        from hyperface.evaluation import ten_fold

        rng = np.random.default_rng(0)
        same = rng.random(400_000) < 0.5
        ten_fold(np.where(same, rng.normal(0.8, 0.3, same.size), rng.normal(1.6, 0.3, same.size)), same)
    elif name == "summary":
        from hyperface.stages.summary import summarise

        folds = [root / f"eval/trained/{b}.parquet" for b in ("lfw", "cplfw", "calfw", "cfp_fp", "agedb_30")]
        for path in folds:
            manifests.write_manifest(path, {"model": ["trained"] * 10, "benchmark": [path.stem] * 10,
                                            "fold": range(10), "threshold": np.ones(10), "accuracy": np.full(10, 0.9),
                                            "val_threshold": np.ones(10), "val": np.full(10, 0.5),
                                            "far": np.full(10, 1e-3), "n_pairs": np.full(10, 600)},
                                     manifests.eval_schema())
        summarise(folds, root / "eval/summary.parquet", root / "eval/summary.md")
    elif name == "plots":
        from hyperface.stages.plots import make_plots

        manifests.write_manifest(root / "pack/trace.parquet", {
            "iteration": np.arange(100), "min_distance": np.linspace(0.5, 1, 100), "mean_nn_distance": np.ones(100),
            "regulariser": np.ones(100), "lr": np.full(100, 0.01), "elapsed_s": np.arange(100.0)}, manifests.trace_schema())
        manifests.write_manifest(root / "train/history.parquet", {
            "epoch": np.arange(1, 31), "loss": np.linspace(40, 5, 30), "lr": np.full(30, 0.1), "images": np.full(30, 600_000),
            "seconds": np.ones(30), "images_per_s": np.ones(30)}, manifests.history_schema())
        out = {n: str(root / f"plots/{n}.png") for n in ("packing_trace", "nn_histogram", "samples_aligned",
                                                         "similarity", "filter_counts", "pose", "training")}
        make_plots(trace=str(root / "pack/trace.parquet"), references=str(root / "references.parquet"),
                   gallery=str(root / "gallery.parquet"), generated=[], aligned=[str(aligned[0])],
                   counts=str(root / "stats/filter_counts.parquet"), images=str(root / "stats/images.parquet"),
                   similarity=str(root / "stats/similarity.parquet"), history=str(root / "train/history.parquet"),
                   summary_md=str(root / "eval/summary.md"), root=root,
                   out={**out, "benchmarks": str(root / "plots/benchmarks.html")})
    elif name == "export_rec":
        from hyperface.stages.export import export_rec

        export_rec(root / "dataset.parquet", root, root / "rec/train.rec", root / "rec/train.idx",
                   root / "rec/property", size=112)
    else:
        raise ValueError(name)


def _measured(name: str, root: Path, aligned: list[Path], args: argparse.Namespace, queue) -> None:
    t0 = time.perf_counter()
    _stage(name, root, aligned, args)
    # this process's own high-water mark (getrusage's ru_maxrss carries the parent's over exec)
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    queue.put((time.perf_counter() - t0, peak_kib / 2**20))


STAGES = ["dataset", "stats", "holdout_bin", "leakage", "verification (400k pairs)", "summary", "plots",
          "export_rec"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hyperface.bench.scale")
    ap.add_argument("--identities", type=int, default=10_000)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--holdout", type=int, default=100)
    ap.add_argument("--gallery", type=int, default=10_000)
    ap.add_argument("--crop-format", default="png", choices=["png", "jpeg"],
                    help="the crops' encoding (jpeg: 50k x 64 fits in less disk)")
    ap.add_argument("--stages", nargs="*", default=STAGES)
    args = ap.parse_args(argv)
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        aligned = build(root, args.identities, args.images, args.gallery, Encoding(args.crop_format))
        size = sum(p.stat().st_size for p in aligned) / 2**30
        print(f"# {args.identities:,} identities x {args.images} images = {args.identities * args.images:,} images "
              f"in {len(aligned)} aligned shards ({size:.1f} GiB, {args.crop_format} crops), built in "
              f"{time.perf_counter() - t0:.0f} s\n", flush=True)
        print("| stage | seconds | peak memory (GiB) |\n|---|---:|---:|")
        for name in args.stages:
            queue = ctx.Queue()
            proc = ctx.Process(target=_measured, args=(name, root, aligned, args, queue))
            proc.start()
            proc.join()
            if proc.exitcode:
                print(f"| {name} | failed (exit code {proc.exitcode}) | |", flush=True)
                continue
            seconds, peak = queue.get()
            print(f"| {name} | {seconds:.1f} | {peak:.2f} |", flush=True)


if __name__ == "__main__":
    main()
