"""RecordIO export stage: the training set as insightface's train.rec/train.idx, what
arcface_torch reads. The stored bytes are copied out of the aligned shard containers in label
order (no re-encoding)."""

from __future__ import annotations

import logging
from pathlib import Path

from hyperface.storage import manifests
from hyperface.storage.containers import Containers
from hyperface.storage.recordio import write_rec

log = logging.getLogger(__name__)


def export_rec(
    dataset: str | Path,
    root: str | Path,
    out_rec: str | Path,
    out_idx: str | Path,
    out_property: str | Path,
    *,
    size: int,
) -> int:
    """The training set as train.rec/train.idx (labels 0..C-1, as in dataset.parquet) and its
    ``property`` file (classes, height, width)."""
    frame = manifests.read_manifest(dataset, ["label", "container", "row"])
    frame = frame.sort_values("label", kind="stable")
    cells = Containers(root).cells(frame["container"], frame["row"])
    records = write_rec(out_rec, out_idx, (data for data, _ in cells), frame["label"].to_numpy())
    n_classes = int(frame["label"].max()) + 1 if len(frame) else 0
    Path(out_property).write_text(f"{n_classes},{size},{size}\n")
    log.info(
        "exported %d images of %d identities to %s (%d records)",
        len(frame),
        n_classes,
        out_rec,
        records,
    )
    return records
