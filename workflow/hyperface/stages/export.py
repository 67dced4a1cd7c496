"""Dataset exports for other training code: an ImageFolder tree and insightface's .rec/.idx.

Both stream the stored image bytes out of the aligned shard containers in dataset order (no
re-encoding): the exported pixels are the ones our own training reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from hyperface import manifests
from hyperface.containers import Containers
from hyperface.recordio import write_rec

log = logging.getLogger(__name__)


def _stored(frame: pd.DataFrame, root: str | Path) -> Iterator[tuple[bytes, str]]:
    """(encoded bytes, file name) of every row of ``frame`` (container, row), in order."""
    store = Containers(root)
    for name, row in zip(frame["container"], frame["row"], strict=True):
        yield store.container(name).cells([int(row)])[0]


def export_imagefolder(dataset: str | Path, root: str | Path, out_dir: str | Path) -> int:
    """The training set as an ImageFolder tree: <identity>/<sample>.<format>, the stored bytes."""
    frame = manifests.read_manifest(dataset, ["identity", "container", "row"])
    out_dir = Path(out_dir)
    for data, name in _stored(frame, root):
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    log.info("exported %d images of %d identities to %s", len(frame), frame["identity"].nunique(), out_dir)
    return len(frame)


def export_rec(dataset: str | Path, root: str | Path, out_rec: str | Path, out_idx: str | Path,
               out_property: str | Path, *, size: int) -> int:
    """The training set as insightface's train.rec/train.idx (labels 0..C-1, as in
    dataset.parquet) and its ``property`` file (classes, height, width)."""
    frame = manifests.read_manifest(dataset, ["label", "container", "row"])
    frame = frame.sort_values("label", kind="stable")
    records = write_rec(out_rec, out_idx, (data for data, _ in _stored(frame, root)), frame["label"].to_numpy())
    n_classes = int(frame["label"].max()) + 1 if len(frame) else 0
    Path(out_property).write_text(f"{n_classes},{size},{size}\n")
    log.info("exported %d images of %d identities to %s (%d records)", len(frame), n_classes, out_rec, records)
    return records
