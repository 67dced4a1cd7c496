"""The CPU-side stages at the paper's scale: seconds and peak memory of each, on synthetic shards.

    python -m hyperface.bench.scale --identities 10000 --images 64

Builds what the GPU stages would have left - aligned shards of 400 identities (each image a real
112 px face crop, PNG or JPEG, inside the shard; consistent embeddings, landmarks, statuses),
references
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

from hyperface.settings import DatasetSettings, EmbedderSettings, LeakageSettings
from hyperface.storage import manifests
from hyperface.storage.containers import Encoding, image_cell
from hyperface.storage.images import ARCFACE_TEMPLATE
from hyperface.storage.shards import shard_names, shard_range

DIM = 512


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _write_gallery(root: Path, gallery: int, crop: dict, rng: np.random.Generator) -> None:
    """A one-shard gallery of ``gallery`` copies of one crop with random embeddings."""
    from hyperface.stages.gallery import concat_gallery

    shard = root / "gallery/shard-00000.parquet"
    columns = {
        "index": np.arange(gallery),
        "image": [crop] * gallery,
        "seed": np.arange(gallery),
        "face_prob": np.ones(gallery, np.float32),
        "landmarks": np.tile(ARCFACE_TEMPLATE.reshape(-1), (gallery, 1)),
        "embedding": _unit(rng.normal(size=(gallery, DIM))),
    }
    manifests.write_manifest(
        shard, columns, manifests.gallery_shard_schema(DIM), {"backends": {"gallery": "synthetic"}}
    )
    concat_gallery([shard], root / "gallery.parquet", root)


def build(
    root: Path, identities: int, images: int, gallery: int, encoding: Encoding, per_shard: int = 400
) -> list[Path]:
    """references.parquet, a gallery and the aligned shards; returns the shard paths."""
    from hyperface.bench.containers import faces

    rng = np.random.default_rng(0)
    refs = _unit(rng.normal(size=(identities, DIM)))
    manifests.write_manifest(
        root / "references.parquet",
        {
            "identity": np.arange(identities),
            "embedding": refs,
            "init_index": np.arange(identities) % gallery,
            "nearest_gallery": np.arange(identities),
            "nearest_gallery_cos": np.ones(identities),
            "nearest_identity_cos": np.zeros(identities),
        },
        manifests.references_schema(DIM),
    )
    crop = image_cell(faces(1, 112)[0], "face", encoding)
    _write_gallery(root, gallery, crop, rng)
    paths = []
    for name in shard_names(identities, per_shard):
        span = shard_range(name, identities, per_shard)
        ids = np.repeat(np.arange(span.start, span.stop), images)
        n = len(ids)
        emb = _unit(refs[ids] + rng.normal(scale=0.04, size=(n, DIM)).astype(np.float32))
        marks = (ARCFACE_TEMPLATE * 4 + 120).reshape(-1)[None] + rng.normal(scale=2, size=(n, 10))
        path = root / f"aligned/shard-{name}.parquet"
        manifests.write_manifest(
            path,
            {
                "identity": ids,
                "sample": np.tile(np.arange(images), n // images),
                "redraws": np.zeros(n, np.int64),
                "image": [crop] * n,
                "status": np.where(rng.random(n) < 0.97, "ok", "low_prob"),
                "face_prob": rng.uniform(0.9, 1, n),
                "box": np.tile([80.0, 80.0, 430.0, 470.0], (n, 1)),
                "landmarks": marks,
                "embedding": emb,
                "reference_cos": np.einsum("ij,ij->i", emb, refs[ids]),
                "nearest_other_cos": rng.uniform(0.1, 0.3, n),
            },
            manifests.aligned_schema(DIM),
        )
        paths.append(path)
    return paths


def _dataset(root: Path, aligned: list[Path], args: argparse.Namespace) -> None:
    from hyperface.stages.dataset import build_dataset

    build_dataset(
        aligned,
        {"dataset": root / "dataset.parquet", "counts": root / "stats/filter_counts.parquet"},
        root,
        n_identities=args.identities,
        holdout_identities=args.holdout,
        images_per_identity=args.images,
        dataset=DatasetSettings(keep_undetected=False, min_reference_cos=0.3),
    )


def _stats(root: Path, aligned: list[Path], args: argparse.Namespace) -> None:
    from hyperface.stages.stats import dataset_stats

    stats = root / "stats"
    dataset_stats(
        aligned,
        root / "references.parquet",
        stats / "identities.parquet",
        stats / "similarity.parquet",
        stats / "images.parquet",
    )


def _holdout_bin(root: Path, aligned: list[Path], args: argparse.Namespace) -> None:
    from hyperface.stages.holdout_bin import build_holdout_bin

    build_holdout_bin(
        aligned,
        root / "eval/holdout.bin",
        root,
        seed=0,
        n_identities=args.identities,
        holdout_identities=args.holdout,
        max_pairs=6000,
    )


def _leakage(root: Path, aligned: list[Path], args: argparse.Namespace) -> None:
    from hyperface.generators.tiny import write_arcface_onnx
    from hyperface.stages.leakage import find_leakage

    write_arcface_onnx(root / "arcface.onnx")  # the real faces come from the gallery's embeddings
    embedder = EmbedderSettings(backend="insightface", weights=str(root / "arcface.onnx"))
    find_leakage(
        aligned,
        root / "gallery.parquet",
        root / "leakage/pairs.parquet",
        root / "leakage/pairs",
        root,
        leakage=LeakageSettings(reference="gallery", top_k=16),
        embedder=embedder,
        device="cpu",
    )


def _verification(root: Path, aligned: list[Path], args: argparse.Namespace) -> None:
    from hyperface.recognition.evaluation import ten_fold

    rng = np.random.default_rng(0)
    same = rng.random(400_000) < 0.5
    ten_fold(np.where(same, rng.normal(0.8, 0.3, same.size), rng.normal(1.6, 0.3, same.size)), same)


def _summary(root: Path, aligned: list[Path], args: argparse.Namespace) -> None:
    from hyperface.stages.summary import summarise

    folds = [
        root / f"eval/trained/{b}.parquet" for b in ("lfw", "cplfw", "calfw", "cfp_fp", "agedb_30")
    ]
    for path in folds:
        columns = {
            "model": ["trained"] * 10,
            "benchmark": [path.stem] * 10,
            "fold": range(10),
            "threshold": np.ones(10),
            "accuracy": np.full(10, 0.9),
            "val_threshold": np.ones(10),
            "val": np.full(10, 0.5),
            "far": np.full(10, 1e-3),
            "n_pairs": np.full(10, 600),
        }
        manifests.write_manifest(path, columns, manifests.eval_schema())
    summarise(folds, root / "eval/summary.parquet", root / "eval/summary.md")


PLOTTED = {
    "trace": "pack/trace.parquet",
    "references": "references.parquet",
    "gallery": "gallery.parquet",
    "counts": "stats/filter_counts.parquet",
    "images": "stats/images.parquet",
    "similarity": "stats/similarity.parquet",
    "history": "train/history.parquet",
    "summary": "eval/summary.md",
}


def _plots(root: Path, aligned: list[Path], args: argparse.Namespace) -> None:
    from hyperface.reports.catalog import figures_drawn
    from hyperface.stages.plots import make_plots

    trace = {
        "iteration": np.arange(100),
        "min_distance": np.linspace(0.5, 1, 100),
        "mean_nn_distance": np.ones(100),
        "regulariser": np.ones(100),
        "lr": np.full(100, 0.01),
        "elapsed_s": np.arange(100.0),
    }
    manifests.write_manifest(root / "pack/trace.parquet", trace, manifests.trace_schema())
    history = {
        "epoch": np.arange(1, 31),
        "loss": np.linspace(40, 5, 30),
        "lr": np.full(30, 0.1),
        "images": np.full(30, 600_000),
        "seconds": np.ones(30),
        "images_per_s": np.ones(30),
    }
    manifests.write_manifest(root / "train/history.parquet", history, manifests.history_schema())
    figures = [f for f in figures_drawn(keep_generated=False, judge=False) if f.name != "gallery"]
    make_plots(
        {**{k: str(root / v) for k, v in PLOTTED.items()}, "aligned": [str(aligned[0])]},
        {f.name: str(root / f"plots/{f.name}.{f.ext}") for f in figures},
        root,
    )


def _export_rec(root: Path, aligned: list[Path], args: argparse.Namespace) -> None:
    from hyperface.stages.export_rec import export_rec

    rec = root / "rec"
    export_rec(
        root / "dataset.parquet",
        root,
        rec / "train.rec",
        rec / "train.idx",
        rec / "property",
        size=112,
    )


STAGES = {
    "dataset": _dataset,
    "stats": _stats,
    "holdout_bin": _holdout_bin,
    "leakage": _leakage,
    "verification (400k pairs)": _verification,
    "summary": _summary,
    "plots": _plots,
    "export_rec": _export_rec,
}


def _stage(name: str, root: Path, aligned: list[Path], args: argparse.Namespace) -> None:
    """One stage, as its rule runs it."""
    STAGES[name](root, aligned, args)


def _measured(name: str, root: Path, aligned: list[Path], args: argparse.Namespace, queue) -> None:
    t0 = time.perf_counter()
    _stage(name, root, aligned, args)
    # this process's own high-water mark (getrusage's ru_maxrss carries the parent's over exec)
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    queue.put((time.perf_counter() - t0, peak_kib / 2**20))


STAGES = [
    "dataset",
    "stats",
    "holdout_bin",
    "leakage",
    "verification (400k pairs)",
    "summary",
    "plots",
    "export_rec",
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hyperface.bench.scale")
    ap.add_argument("--identities", type=int, default=10_000)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--holdout", type=int, default=100)
    ap.add_argument("--gallery", type=int, default=10_000)
    ap.add_argument(
        "--crop-format",
        default="png",
        choices=["png", "jpeg"],
        help="the crops' encoding (jpeg: 50k x 64 fits in less disk)",
    )
    ap.add_argument("--stages", nargs="*", default=STAGES)
    args = ap.parse_args(argv)
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        aligned = build(
            root, args.identities, args.images, args.gallery, Encoding(args.crop_format)
        )
        size = sum(p.stat().st_size for p in aligned) / 2**30
        print(
            f"# {args.identities:,} identities x {args.images} images = "
            f"{args.identities * args.images:,} images "
            f"in {len(aligned)} aligned shards ({size:.1f} GiB, {args.crop_format} crops), built "
            f"in "
            f"{time.perf_counter() - t0:.0f} s\n",
            flush=True,
        )
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
