"""Comparing outputs of two runs: content and lineage, never timestamps or wall-clock columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from hyperface import manifests
from hyperface.lineage import recorded_meta

RUN_SPECIFIC_META = {"iterations_run"}  # how much of the work this run did, not what it made


def parquet_content(path: Path) -> tuple[dict, dict]:
    """Columns (as Python lists) and metadata of a manifest, without wall-clock columns."""
    table = pq.read_table(path)
    keep = [c for c in table.column_names if c not in manifests.TIMING_COLUMNS]
    meta = {k: v for k, v in manifests.read_meta(path).items() if k not in RUN_SPECIFIC_META}
    return table.select(keep).to_pydict(), meta


def weights_content(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    from safetensors.torch import load_file

    return {k: v.numpy() for k, v in load_file(str(path)).items()}, recorded_meta(path)


def same_output(a: Path, b: Path) -> bool:
    """Whether two outputs hold the same content (and, for hyperface outputs, the same lineage)."""
    if a.suffix == ".parquet":
        return parquet_content(a) == parquet_content(b)
    if a.suffix == ".safetensors":
        (ta, ma), (tb, mb) = weights_content(a), weights_content(b)
        return ma == mb and ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)
    return a.read_bytes() == b.read_bytes()


def differing(root_a: Path, root_b: Path, relative: list[str]) -> list[str]:
    """The paths among ``relative`` whose content differs between two workdirs."""
    return [rel for rel in relative if not same_output(root_a / rel, root_b / rel)]
