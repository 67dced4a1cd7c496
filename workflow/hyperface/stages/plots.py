"""Plots stage: every figure of the report, from the manifests of the finished stages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from hyperface.packing.neighbours import summarise
from hyperface.packing.solver import nearest
from hyperface.quality.verdicts import judge_figures
from hyperface.reports import figures
from hyperface.storage import manifests
from hyperface.storage.containers import Containers, load_shards

GALLERY_GRID = 16  # gallery faces in the report's grid


def packing_rows(
    before: dict[str, float], after: dict[str, float]
) -> tuple[list[str], list[list[str]]]:
    """The packing table: cosine distances of the identities before and after packing."""
    names = {
        "min_distance": "minimum pairwise distance",
        "mean_nn_distance": "mean nearest-neighbour distance",
        "nn_distance_median": "median nearest-neighbour distance",
        "mean_gallery_distance": "mean distance to the nearest gallery face",
    }
    return (
        ["identities (cosine distance)", "before packing", "after packing"],
        [[label, f"{before[key]:.4f}", f"{after[key]:.4f}"] for key, label in names.items()],
    )


@dataclass
class Grid:
    """Images in rows, with a label per row (the identity) and per image (the sample)."""

    images: list[list[np.ndarray]]
    row_labels: list[str]
    cell_labels: list[list[str]]

    def draw(self, path: str, size: int = 112) -> None:
        figures.sample_grid(self.images, path, size, self.row_labels, self.cell_labels)


def _grid_images(shards: list[str], root: Path, rows: int, cols: int) -> Grid:
    """The first ``cols`` images of each of the first ``rows`` identities with images."""
    frame = load_shards(shards, ["identity", "sample", "has_image", "container", "row"], root)
    frame = frame[frame["has_image"]].sort_values(["identity", "sample"])
    store = Containers(root)
    groups = [group.head(cols) for _, group in list(frame.groupby("identity", sort=True))[:rows]]
    return Grid(
        [store.images(g["container"].tolist(), g["row"].tolist()) for g in groups],
        [f"identity {g['identity'].iloc[0]}" for g in groups],
        [[f"#{k}" for k in g["sample"]] for g in groups],
    )


class Sources:
    """The plots rule's inputs (name -> path, or paths for the shard lists), read on demand and
    shared by the figures that need the same thing."""

    def __init__(
        self,
        inputs: Mapping[str, str | list[str]],
        root: str | Path,
        grid_rows: int = 8,
        grid_cols: int = 8,
    ):
        self.inputs, self.root, self.grid_rows, self.grid_cols = (
            inputs,
            Path(root),
            grid_rows,
            grid_cols,
        )

    def path(self, name: str) -> str:
        return str(self.inputs[name])

    def grid(self, name: str) -> Grid:
        """The image grid of the shard list ``name`` (generated or aligned)."""
        return _grid_images(list(self.inputs[name]), self.root, self.grid_rows, self.grid_cols)

    @cached_property
    def packing(self) -> dict[str, np.ndarray | dict[str, float]]:
        """Nearest-neighbour cosines of the identities before and after packing, and their
        summaries (distance to the gallery included): one blocked search, two figures."""
        refs = torch.from_numpy(manifests.read_embeddings(self.path("references")))
        frame = manifests.read_manifest(self.path("references"), ["init_index"])
        start = torch.tensor(frame["init_index"].to_numpy(), dtype=torch.int64)
        gal = torch.from_numpy(manifests.read_embeddings(self.path("gallery")))
        init = gal[start] if (start >= 0).all() else refs
        before, _ = nearest(init, init, exclude_self=True)
        after, _ = nearest(refs, refs, exclude_self=True)
        return {
            "before": before.numpy(),
            "after": after.numpy(),
            "summary_before": summarise(before, nearest(init, gal)[0]),
            "summary_after": summarise(after, nearest(refs, gal)[0]),
        }


DRAWERS: dict[str, Callable[[Sources, str], None]] = {}


def draws(name: str) -> Callable:
    """Register the function that draws figure ``name`` of
    :data:`hyperface.reports.catalog.FIGURES`."""

    def register(fn: Callable[[Sources, str], None]) -> Callable[[Sources, str], None]:
        DRAWERS[name] = fn
        return fn

    return register


@draws("packing_trace")
def _packing_trace(src: Sources, out: str) -> None:
    figures.packing_trace(manifests.read_manifest(src.path("trace")), out)


@draws("nn_histogram")
def _nn_histogram(src: Sources, out: str) -> None:
    figures.nn_histogram(src.packing["before"], src.packing["after"], out)


@draws("packing")
def _packing_table(src: Sources, out: str) -> None:
    figures.html_table(
        *packing_rows(src.packing["summary_before"], src.packing["summary_after"]), out
    )


@draws("gallery")
def _gallery(src: Sources, out: str) -> None:
    rows = manifests.read_manifest(src.path("gallery"), ["index", "container", "row"])
    rows = rows.head(GALLERY_GRID)
    faces = Containers(src.root).images(rows["container"].tolist(), rows["row"].tolist())
    names = [f"face {i}" for i in rows["index"]]
    cols = src.grid_cols
    starts = range(0, len(faces), cols)
    figures.sample_grid([faces[i : i + cols] for i in starts], out, size=128,
                        cell_labels=[names[i : i + cols] for i in starts])  # fmt: skip


@draws("samples_raw")
def _samples_raw(src: Sources, out: str) -> None:
    src.grid("generated").draw(out)


@draws("samples_aligned")
def _samples_aligned(src: Sources, out: str) -> None:
    src.grid("aligned").draw(out)


@draws("similarity")
def _similarity(src: Sources, out: str) -> None:
    figures.similarity(manifests.read_manifest(src.path("similarity")), out)


@draws("filter_counts")
def _filter_counts(src: Sources, out: str) -> None:
    figures.filter_counts(
        manifests.read_manifest(src.path("counts")),
        manifests.read_manifest(src.path("images")),
        out,
    )


@draws("pose")
def _pose(src: Sources, out: str) -> None:
    figures.pose(manifests.read_manifest(src.path("images")), out)


@draws("judge")
def _judge(src: Sources, out: str) -> None:
    rows = judge_figures(*src.inputs["judge"][:3])  # images, identities, gallery (not spread)
    figures.html_table(["measure", "value"], [list(r) for r in rows], out)


@draws("training")
def _training(src: Sources, out: str) -> None:
    figures.training(manifests.read_manifest(src.path("history")), out)


@draws("benchmarks")
def _benchmarks(src: Sources, out: str) -> None:
    figures.benchmark_table(Path(src.path("summary")).read_text(), out)


def make_plots(
    inputs: Mapping[str, str | list[str]],
    outputs: Mapping[str, str],
    root: str | Path,
    grid_rows: int = 8,
) -> None:
    """Every figure of ``outputs`` (figure name -> path) from the plots rule's ``inputs``."""
    sources = Sources(inputs, root, grid_rows)
    for name, out in outputs.items():
        DRAWERS[name](sources, str(out))
