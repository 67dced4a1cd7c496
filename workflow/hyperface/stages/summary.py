"""Summary stage: every model's verification on every benchmark, in one table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hyperface.recognition.evaluation import summary_table
from hyperface.storage import manifests
from hyperface.storage.lineage import lineage_meta


def summarise(
    per_benchmark: list[str | Path], out_parquet: str | Path, out_md: str | Path
) -> pd.DataFrame:
    """The benchmark table as Parquet and Markdown (beside the paper's numbers)."""
    rows = []
    for path in per_benchmark:
        folds = manifests.read_manifest(path)
        rows.append(
            {
                "model": folds["model"].iloc[0],
                "benchmark": folds["benchmark"].iloc[0],
                "accuracy": folds["accuracy"].mean(),
                "std": folds["accuracy"].std(ddof=0),
                "val": folds["val"].mean(),
                "val_std": folds["val"].std(ddof=0),
                "far": folds["far"].mean(),
                "n_pairs": int(folds["n_pairs"].sum()),
            }
        )
    table = pd.DataFrame(rows, columns=manifests.summary_schema().names)
    manifests.write_frame(
        out_parquet,
        table,
        manifests.summary_schema(),
        lineage_meta("summary", [], {"benchmarks": per_benchmark}),
    )
    Path(out_md).write_text(summary_table(rows))
    return table
