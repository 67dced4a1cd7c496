"""Held-out benchmark: a verification .bin from identities never seen in training."""

from __future__ import annotations

import logging
from pathlib import Path

from hyperface.recognition.evaluation import holdout_pairs, write_bin
from hyperface.seeding import numpy_rng
from hyperface.storage.containers import Containers, load_shards
from hyperface.storage.shards import holdout_set

log = logging.getLogger(__name__)


def build_holdout_bin(
    aligned: list[str | Path],
    out_bin: str | Path,
    root: str | Path,
    *,
    seed: int,
    n_identities: int,
    holdout_identities: int,
    max_pairs: int | None = None,
) -> None:
    """eval/holdout.bin: balanced genuine/impostor pairs of the aligned crops of the last
    ``holdout_identities`` identities (never trained on), at most ``max_pairs`` of them, drawn
    from ``seed``; ``root`` is the results folder the shard containers are named from."""
    frame = load_shards(aligned, ["identity", "has_image", "container", "row"], root)
    frame = frame[
        frame["identity"].isin(holdout_set(n_identities, holdout_identities)) & frame["has_image"]
    ].reset_index(drop=True)
    if frame["identity"].nunique() < 2:
        raise ValueError(
            "evaluation.holdout_identities needs at least 2 identities with aligned images"
        )
    pairs, same = holdout_pairs(
        frame["identity"].to_numpy(), numpy_rng(seed, "holdout-pairs"), max_pairs
    )
    take = pairs.reshape(-1)
    # the crops' stored bytes go into the .bin as they are: the pixels training saw, no re-encoding
    encoded = Containers(root).encoded(
        frame["container"].to_numpy()[take], frame["row"].to_numpy()[take]
    )
    write_bin(out_bin, encoded, same)
    log.info(
        "holdout benchmark: %d pairs (%d genuine) from %d identities",
        len(pairs),
        int(same.sum()),
        frame["identity"].nunique(),
    )
