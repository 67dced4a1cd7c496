"""Plots stage: every figure of the report, from the manifests of the finished stages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from hyperface import figures, manifests
from hyperface.packing import nearest
from hyperface.stages.dataset import load_aligned


def _grid_paths(frame: pd.DataFrame, column: str, root: Path, rows: int, cols: int) -> list[list[Path]]:
    frame = frame[frame[column] != ""]
    idents = sorted(frame["identity"].unique())[:rows]
    return [[root / p for p in frame[frame["identity"] == i].sort_values("sample")[column][:cols]]
            for i in idents]


def make_plots(*, trace: str, references: str, gallery: str, aligned: list[str], counts: str,
               images: str, similarity: str, history: str, summary_md: str, root: str | Path,
               out: dict[str, str], grid_rows: int = 8, grid_cols: int = 8) -> None:
    """Every figure of the report (``out``: figure name -> path) from the finished manifests."""
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
    frame = load_aligned(aligned, ["identity", "sample", "image", "aligned"])
    figures.sample_grid(_grid_paths(frame, "image", root, grid_rows, grid_cols), out["samples_raw"])
    figures.sample_grid(_grid_paths(frame, "aligned", root, grid_rows, grid_cols), out["samples_aligned"])
    figures.similarity(pd.read_parquet(similarity), out["similarity"])
    image_stats = pd.read_parquet(images)
    figures.filter_counts(pd.read_parquet(counts), image_stats, out["filter_counts"])
    figures.pose(image_stats, out["pose"])
    figures.training(pd.read_parquet(history), out["training"])
    figures.benchmark_table(Path(summary_md).read_text(), out["benchmarks"])
