"""Evaluation stage: 10-fold verification of the trained backbone on one benchmark, and the summary."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hyperface import manifests
from hyperface.evaluation import summary_table, verify
from hyperface.lineage import lineage_meta
from hyperface.runtime import Throughput
from hyperface.training import load_backbone

log = logging.getLogger(__name__)


def evaluate(weights: str | Path, bin_path: str | Path, out: str | Path, *, benchmark: str,
             batch_size: int, device: str) -> None:
    """Per-fold accuracy and thresholds of the model on one benchmark .bin (TAR@FAR in the metadata)."""
    meta = lineage_meta("evaluate", [benchmark], {"model": weights, "benchmark": bin_path})
    model = load_backbone(weights, device=device)
    speed = Throughput("pairs")
    result = verify(model, bin_path, batch_size=batch_size, device=device)
    speed.add(int(result.fold_pairs.sum()))
    k = len(result.fold_accuracy)
    manifests.write_manifest(out, {
        "benchmark": [benchmark] * k, "fold": np.arange(k), "threshold": result.fold_threshold,
        "accuracy": result.fold_accuracy, "n_pairs": result.fold_pairs},
        manifests.eval_schema(), {"tar_at_far_1e-3": result.tar_at_far, **meta})
    log.info("%s: accuracy %.4f +- %.4f, TAR@FAR=1e-3 %.4f", benchmark, result.accuracy,
             float(np.std(result.fold_accuracy)), result.tar_at_far)
    speed.report()


def summarise(per_benchmark: list[str | Path], out_parquet: str | Path, out_md: str | Path) -> pd.DataFrame:
    """The benchmark table as Parquet and Markdown (beside the paper's numbers)."""
    rows = []
    for path in per_benchmark:
        folds = manifests.read_manifest(path)
        rows.append({"benchmark": folds["benchmark"].iloc[0], "accuracy": folds["accuracy"].mean(),
                     "std": folds["accuracy"].std(ddof=0), "n_pairs": int(folds["n_pairs"].sum()),
                     "tar_at_far_1e-3": float(manifests.read_meta(path)["tar_at_far_1e-3"])})
    table = pd.DataFrame(rows, columns=manifests.summary_schema().names)
    manifests.write_frame(out_parquet, table, manifests.summary_schema(),
                          lineage_meta("summary", [], {"benchmarks": per_benchmark}))
    Path(out_md).write_text(summary_table(rows))
    return table
