"""Comparing outputs of two runs: content and lineage, never timestamps or wall-clock columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hyperface.storage import manifests
from hyperface.storage.lineage import recorded_meta

RUN_SPECIFIC_META = {"iterations_run"}  # how much of the work this run did, not what it made


class Content:
    """A manifest's columns and metadata, without wall-clock columns; equal when every value is
    (NaN where the other has NaN counts as equal: "no face" rows hold NaN landmarks)."""

    def __init__(self, path: Path):
        table = pq.read_table(path)
        self.columns = {
            c: _values(table.column(c))
            for c in table.column_names
            if c not in manifests.TIMING_COLUMNS
        }
        self.meta = {
            k: v for k, v in manifests.read_meta(path).items() if k not in RUN_SPECIFIC_META
        }

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Content)
            and self.meta == other.meta
            and self.columns.keys() == other.columns.keys()
            and all(_same(self.columns[c], other.columns[c]) for c in self.columns)
        )


def _values(column: pa.ChunkedArray) -> np.ndarray:
    array = column.combine_chunks()
    while pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.flatten()
    return array.to_numpy(zero_copy_only=False)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return a.tolist() == b.tolist()


def parquet_content(path: Path) -> Content:
    return Content(path)


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
