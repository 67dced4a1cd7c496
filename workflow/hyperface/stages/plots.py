"""Plots stage: every figure of the report, from the manifests of the finished stages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hyperface import figures, manifests
from hyperface.containers import Containers, load_shards
from hyperface.neighbours import summarise
from hyperface.packing import nearest
from hyperface.verdicts import judge_figures

GALLERY_GRID = 16  # gallery faces in the report's grid


def packing_rows(before: dict[str, float], after: dict[str, float]) -> tuple[list[str], list[list[str]]]:
    """The packing table: cosine distances of the identities before and after packing."""
    names = {"min_distance": "minimum pairwise distance", "mean_nn_distance": "mean nearest-neighbour distance",
             "nn_distance_median": "median nearest-neighbour distance",
             "mean_gallery_distance": "mean distance to the nearest gallery face"}
    return (["identities (cosine distance)", "before packing", "after packing"],
            [[label, f"{before[key]:.4f}", f"{after[key]:.4f}"] for key, label in names.items()])


def _grid_images(shards: list[str], root: Path, rows: int, cols: int) -> list[list[np.ndarray]]:
    """The first ``cols`` images of each of the first ``rows`` identities with images."""
    frame = load_shards(shards, ["identity", "sample", "has_image", "container", "row"], root)
    frame = frame[frame["has_image"]].sort_values(["identity", "sample"])
    store = Containers(root)
    return [store.images(group["container"].tolist()[:cols], group["row"].tolist()[:cols])
            for _, group in list(frame.groupby("identity", sort=True))[:rows]]


def make_plots(*, trace: str, references: str, gallery: str, generated: list[str], aligned: list[str],
               counts: str, images: str, similarity: str, history: str, summary_md: str,
               root: str | Path, out: dict[str, str], judge: dict[str, str] | None = None,
               grid_rows: int = 8, grid_cols: int = 8) -> None:
    """Every figure of the report (``out``: figure name -> path) from the finished manifests;
    the image grids from the first identities' shards (``generated``: none when the generated
    images are not kept, and then no ``samples_raw`` figure); ``judge``: the judge's images,
    identities and gallery manifests, when there is a judge."""
    root = Path(root)
    figures.packing_trace(manifests.read_manifest(trace), out["packing_trace"])
    refs = torch.from_numpy(manifests.read_embeddings(references))
    ref_frame = manifests.read_manifest(references)
    gal = torch.from_numpy(manifests.read_embeddings(gallery))
    start = ref_frame["init_index"].to_numpy()
    init = gal[start] if (start >= 0).all() else refs
    before, _ = nearest(init, init, exclude_self=True)
    after, _ = nearest(refs, refs, exclude_self=True)
    figures.nn_histogram(before.numpy(), after.numpy(), out["nn_histogram"])
    figures.html_table(*packing_rows(summarise(before, nearest(init, gal)[0]),
                                     summarise(after, nearest(refs, gal)[0])), out["packing"])
    gallery_rows = manifests.read_manifest(gallery, ["container", "row"]).head(GALLERY_GRID)
    faces = Containers(root).images(gallery_rows["container"].tolist(), gallery_rows["row"].tolist())
    figures.sample_grid([faces[i:i + grid_cols] for i in range(0, len(faces), grid_cols)], out["gallery"],
                        size=128)
    if generated:
        figures.sample_grid(_grid_images(generated, root, grid_rows, grid_cols), out["samples_raw"])
    figures.sample_grid(_grid_images(aligned, root, grid_rows, grid_cols), out["samples_aligned"])
    figures.similarity(pd.read_parquet(similarity), out["similarity"])
    image_stats = pd.read_parquet(images)
    figures.filter_counts(pd.read_parquet(counts), image_stats, out["filter_counts"])
    figures.pose(image_stats, out["pose"])
    figures.training(pd.read_parquet(history), out["training"])
    figures.benchmark_table(Path(summary_md).read_text(), out["benchmarks"])
    if judge:
        rows = judge_figures(judge["images"], judge["identities"], judge["gallery"])
        figures.html_table(["measure", "value"], [list(r) for r in rows], out["judge"])
