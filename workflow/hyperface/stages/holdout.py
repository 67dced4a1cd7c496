"""Held-out benchmark: a verification .bin from identities never seen in training."""

from __future__ import annotations

import logging
from pathlib import Path

from hyperface.evaluation import holdout_pairs, write_bin
from hyperface.images import load_rgb
from hyperface.seeding import numpy_rng
from hyperface.stages.dataset import holdout_set, load_aligned

log = logging.getLogger(__name__)


def build_holdout_bin(aligned: list[str | Path], out_bin: str | Path, root: str | Path, *, seed: int,
                      n_identities: int, holdout_identities: int) -> None:
    """eval/holdout.bin: balanced genuine/impostor pairs of the aligned crops of the last
    ``holdout_identities`` identities (never trained on), drawn from ``seed``."""
    frame = load_aligned(aligned, ["identity", "aligned"])
    frame = frame[frame["identity"].isin(holdout_set(n_identities, holdout_identities))
                  & (frame["aligned"] != "")].reset_index(drop=True)
    if frame["identity"].nunique() < 2:
        raise ValueError("evaluation.holdout_identities needs at least 2 identities with aligned images")
    pairs, same = holdout_pairs(frame["identity"].to_numpy(), numpy_rng(seed, "holdout-pairs"))
    images = [load_rgb(Path(root) / frame["aligned"].iloc[int(i)]) for i in pairs.reshape(-1)]
    write_bin(out_bin, images, same)
    log.info("holdout benchmark: %d pairs (%d genuine) from %d identities", len(pairs), int(same.sum()),
             frame["identity"].nunique())
