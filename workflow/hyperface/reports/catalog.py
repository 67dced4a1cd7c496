"""The report's figures, registered in one place: a figure is one entry here and one drawing
function (``@draws(name)`` in :mod:`hyperface.stages.plots`) plus its caption
(``workflow/report/<name>.rst``). The plots rule's inputs and outputs, the report's categories
and the default targets all come from this table.

Light on purpose: the Snakefile imports it on every parse.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One figure: its name (file name and caption), report category, the plots rule inputs it
    reads, its file type, and the setting without which it is not drawn."""

    name: str
    category: str
    reads: tuple[str, ...]
    ext: str = "png"
    needs: str = ""  # "keep_generated" (images.keep_generated) or "judge" (quality.judge.backend)


FIGURES = (
    Figure("packing_trace", "1. Packing", ("trace",)),
    Figure("nn_histogram", "1. Packing", ("references", "gallery")),
    Figure("packing", "1. Packing", ("references", "gallery"), ext="html"),
    Figure("gallery", "2. Images", ("gallery",)),
    Figure("samples_raw", "2. Images", ("generated",), needs="keep_generated"),
    Figure("samples_aligned", "2. Images", ("aligned",)),
    Figure("similarity", "3. Dataset", ("similarity",)),
    Figure("filter_counts", "3. Dataset", ("counts", "images")),
    Figure("pose", "3. Dataset", ("images",)),
    Figure("judge", "3. Dataset", ("judge",), ext="html", needs="judge"),
    Figure("training", "4. Training", ("history",)),
    Figure("benchmarks", "5. Evaluation", ("summary",), ext="html"),
)


def figures_drawn(*, keep_generated: bool, judge: bool) -> list[Figure]:
    """The figures a run draws, given whether it keeps the generated images and has a judge."""
    on = {"": True, "keep_generated": keep_generated, "judge": judge}
    return [figure for figure in FIGURES if on[figure.needs]]


def inputs_read(figures: list[Figure]) -> list[str]:
    """The plots rule inputs the ``figures`` read, in first-use order."""
    return list(dict.fromkeys(name for figure in figures for name in figure.reads))
