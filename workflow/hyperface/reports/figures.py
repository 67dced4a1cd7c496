"""The figures of `snakemake --report`: one function per plot, each writing a PNG."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def packing_trace(trace: pd.DataFrame, path: str | Path) -> None:
    """Min pairwise and mean nearest-neighbour cosine distance per iteration, lr on a second
    axis."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(trace["iteration"], trace["min_distance"], label="min pairwise distance")
    ax.plot(trace["iteration"], trace["mean_nn_distance"], label="mean nearest-neighbour distance")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cosine distance")
    lr = ax.twinx()
    lr.plot(trace["iteration"], trace["lr"], color="grey", linestyle=":", label="lr")
    lr.set_ylabel("learning rate")
    ax.legend(loc="lower right")
    ax.set_title("HyperFace packing")
    _save(fig, path)


def nn_histogram(before: np.ndarray, after: np.ndarray, path: str | Path) -> None:
    """Histogram of each reference's cosine to its nearest other reference, before/after packing."""
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(
        min(before.min(), after.min()) - 0.02, max(before.max(), after.max()) + 0.02, 50
    )
    ax.hist(before, bins=bins, alpha=0.6, label="initial (gallery)")
    ax.hist(after, bins=bins, alpha=0.6, label="packed references")
    ax.set_xlabel("cosine to the nearest other identity")
    ax.set_ylabel("identities")
    ax.legend()
    _save(fig, path)


def sample_grid(
    images: list[list[np.ndarray]],
    path: str | Path,
    size: int = 112,
    row_labels: list[str] | None = None,
    cell_labels: list[list[str]] | None = None,
) -> None:
    """Rows = identities, columns = samples (RGB images), on a white sheet with a border around
    every cell; ``row_labels`` on the left (the identity), ``cell_labels`` in each cell's corner
    (the sample number), so rows and columns can be told apart."""
    import cv2
    from PIL import Image, ImageDraw, ImageFont

    gap, cols = 4, max(map(len, images), default=0)
    font = ImageFont.load_default(size=max(11, size // 9))
    left = (max(int(font.getlength(label)) for label in row_labels) + 2 * gap) if row_labels else 0
    sheet = Image.new(
        "RGB", (left + gap + cols * (size + gap), gap + len(images) * (size + gap)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(images):
        y = gap + r * (size + gap)
        if row_labels:
            draw.text((gap, y + size // 2), row_labels[r], fill="black", font=font, anchor="lm")
        for c, image in enumerate(row):
            x = left + gap + c * (size + gap)
            tile = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            sheet.paste(Image.fromarray(tile), (x, y))
            if cell_labels:
                draw.text((x + 3, y + size - 3), cell_labels[r][c], fill="white", font=font,
                          anchor="ld", stroke_width=2, stroke_fill="black")  # fmt: skip
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def similarity(table: pd.DataFrame, path: str | Path) -> None:
    """Intra-class image pairs vs inter-class (references and identity means), as densities."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, group in table.groupby("kind", sort=False):
        centres = (group["bin_left"] + group["bin_right"]) / 2
        total = group["count"].sum()
        if total:
            ax.plot(
                centres,
                group["count"] / total / (group["bin_right"] - group["bin_left"]),
                label=kind,
            )
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.legend()
    _save(fig, path)


def filter_counts(counts: pd.DataFrame, images: pd.DataFrame, path: str | Path) -> None:
    """Alignment status counts and the dataset filter (kept / removed per reason)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
    status = images["status"].value_counts()
    a.bar(status.index, status.values)
    a.set_title("alignment status")
    reasons = counts[counts["reason"] != "generated"]
    b.bar(reasons["reason"], reasons["images"])
    b.set_title(
        f"dataset filter ({int(counts.loc[counts['reason'] == 'generated', 'images'].iloc[0])} "
        f"generated)"
    )
    b.tick_params(axis="x", rotation=30)
    _save(fig, path)


def pose(images: pd.DataFrame, path: str | Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for ax, name in zip(axes, ["yaw", "pitch", "roll"], strict=True):
        values = images[name].dropna()
        ax.hist(values, bins=30) if len(values) else ax.text(
            0.5, 0.5, "no face detected", ha="center"
        )
        ax.set_title(f"{name} (degrees)")
    _save(fig, path)


def training(history: pd.DataFrame, path: str | Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history["epoch"], history["loss"], marker="o", label="loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    lr = ax.twinx()
    lr.step(history["epoch"], history["lr"], color="grey", where="post", label="lr")
    lr.set_ylabel("learning rate")
    _save(fig, path)


def html_table(header: list[str], rows: list[list[str]], path: str | Path) -> None:
    """A small HTML table page (the report shows it as is)."""
    cells = "".join(f"<th>{html.escape(h.strip())}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>" for r in rows
    )
    Path(path).write_text(f"<table border='1' cellpadding='4'><tr>{cells}</tr>{body}</table>\n")


def benchmark_table(summary_md: str, path: str | Path) -> None:
    """The evaluation table (with the paper's HyperFace numbers) as a small HTML page."""
    lines = [line.strip().strip("|").split("|") for line in summary_md.strip().splitlines()]
    html_table(lines[0], lines[2:], path)
