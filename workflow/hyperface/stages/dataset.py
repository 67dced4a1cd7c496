"""Dataset stage: merge aligned shards, filter, hold identities out, label the rest 0..C-1."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hyperface import manifests

log = logging.getLogger(__name__)


def load_aligned(paths: list[str | Path]) -> pd.DataFrame:
    return pd.concat([manifests.read_manifest(p) for p in paths], ignore_index=True)


def holdout_set(n_identities: int, holdout_identities: int) -> set[int]:
    """The identities kept out of training for the held-out verification benchmark: the last ones."""
    return set(range(n_identities - holdout_identities, n_identities))


def select(frame: pd.DataFrame, *, n_identities: int, holdout_identities: int,
           min_reference_cos: float, keep_undetected: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows to train on and the number removed per reason (each row counted once, first reason)."""
    reasons = {
        "holdout": frame["identity"].isin(holdout_set(n_identities, holdout_identities)).to_numpy(),
        "no_crop": (frame["aligned"] == "").to_numpy(),
        "undetected": (~frame["status"].eq("ok").to_numpy()) & (not keep_undetected),
        "identity_consistency": (frame["reference_cos"].fillna(-np.inf) < min_reference_cos).to_numpy(),
    }
    removed = np.zeros(len(frame), bool)
    counts = {}
    for reason, mask in reasons.items():
        counts[reason] = int((mask & ~removed).sum())
        removed |= mask
    counts["kept"] = int((~removed).sum())
    return frame[~removed].reset_index(drop=True), counts


def build_dataset(aligned: list[str | Path], out: str | Path, *, n_identities: int,
                  holdout_identities: int, min_reference_cos: float, keep_undetected: bool) -> dict[str, int]:
    frame = load_aligned(aligned)
    kept, counts = select(frame, n_identities=n_identities, holdout_identities=holdout_identities,
                          min_reference_cos=min_reference_cos, keep_undetected=keep_undetected)
    labels = {ident: i for i, ident in enumerate(sorted(kept["identity"].unique()))}
    manifests.write_manifest(out, {
        "identity": kept["identity"].to_numpy(), "label": kept["identity"].map(labels).to_numpy(),
        "sample": kept["sample"].to_numpy(), "image": kept["aligned"].tolist(),
        "status": kept["status"].tolist(), "reference_cos": kept["reference_cos"].to_numpy()},
        manifests.dataset_schema(), {"counts": counts})
    log.info("dataset: %s from %d aligned images, %d identities", counts, len(frame), len(labels))
    return counts
