"""ImageFolder export stage: the training set as <identity>/<sample>.<format> files, for other
training code. The stored bytes are copied out of the aligned shard containers (no re-encoding)."""

from __future__ import annotations

import logging
from pathlib import Path

from hyperface.storage import manifests
from hyperface.storage.containers import Containers

log = logging.getLogger(__name__)


def export_imagefolder(dataset: str | Path, root: str | Path, out_dir: str | Path) -> int:
    """The training set as an ImageFolder tree: <identity>/<sample>.<format>, the stored bytes."""
    frame = manifests.read_manifest(dataset, ["identity", "container", "row"])
    out_dir = Path(out_dir)
    for data, name in Containers(root).cells(frame["container"], frame["row"]):
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    log.info(
        "exported %d images of %d identities to %s",
        len(frame),
        frame["identity"].nunique(),
        out_dir,
    )
    return len(frame)
