"""Dataset stage: merge aligned shards, filter, hold identities out, label the rest 0..C-1."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from hyperface.settings import DatasetSettings
from hyperface.storage import manifests
from hyperface.storage.containers import load_shards
from hyperface.storage.lineage import lineage_meta
from hyperface.storage.shards import holdout_set

log = logging.getLogger(__name__)


def select(
    frame: pd.DataFrame,
    *,
    n_identities: int,
    holdout_identities: int,
    min_reference_cos: float,
    keep_undetected: bool,
    leaked: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows to train on and the number removed per reason (each row counted once, first reason)."""
    leaked_keys = (
        set() if leaked is None else set(zip(leaked["identity"], leaked["sample"], strict=True))
    )
    reasons = {
        "holdout": frame["identity"].isin(holdout_set(n_identities, holdout_identities)).to_numpy(),
        "no_crop": ~frame["has_image"].to_numpy(bool),
        "undetected": (~frame["status"].eq("ok").to_numpy()) & (not keep_undetected),
        "identity_consistency": (
            frame["reference_cos"].fillna(-np.inf) < min_reference_cos
        ).to_numpy(),
        "leakage": np.array(
            [
                (i, k) in leaked_keys
                for i, k in zip(frame["identity"], frame["sample"], strict=True)
            ],
            dtype=bool,
        ),
    }
    removed = np.zeros(len(frame), bool)
    counts = {}
    for reason, mask in reasons.items():
        counts[reason] = int((mask & ~removed).sum())
        removed |= mask
    counts["kept"] = int((~removed).sum())
    return frame[~removed].reset_index(drop=True), counts


def build_dataset(
    aligned: list[str | Path],
    out: Mapping[str, str | Path],
    root: str | Path,
    *,
    n_identities: int,
    holdout_identities: int,
    images_per_identity: int,
    dataset: DatasetSettings,
    leakage_pairs: str | Path | None = None,
) -> dict[str, int]:
    """``out["dataset"]``: dataset.parquet (the training set, labels 0..C-1; images addressed
    by aligned shard and row, relative to the results ``root``); ``out["counts"]``: the kept and
    removed counts per reason, after what the generator already set aside - draws rejected by its
    identity check and redrawn (``redrawn``), images given up after every redraw failed
    (``given_up``).

    Settings: the ``dataset`` section (keep_undetected, min_reference_cos), the number of
    identities and how many of them are held out; the leakage pairs when they are excluded.
    """
    frame = load_shards(
        aligned,
        [
            "identity",
            "sample",
            "container",
            "row",
            "has_image",
            "status",
            "reference_cos",
            "redraws",
        ],
        root,
    )
    inputs = {"aligned": aligned, **({"leakage": leakage_pairs} if leakage_pairs else {})}
    meta = lineage_meta("dataset", [n_identities, holdout_identities, dataset], inputs)
    leaked = (
        manifests.read_manifest(leakage_pairs, ["identity", "sample"]) if leakage_pairs else None
    )
    kept, counts = select(
        frame,
        n_identities=n_identities,
        holdout_identities=holdout_identities,
        min_reference_cos=dataset.min_reference_cos,
        keep_undetected=dataset.keep_undetected,
        leaked=leaked,
    )
    given_up = n_identities * images_per_identity - len(frame)
    labels = {ident: i for i, ident in enumerate(sorted(kept["identity"].unique()))}
    manifests.write_manifest(
        out["dataset"],
        {
            "identity": kept["identity"].to_numpy(),
            "label": kept["identity"].map(labels).to_numpy(),
            "sample": kept["sample"].to_numpy(),
            "container": kept["container"].tolist(),
            "row": kept["row"].to_numpy(),
            "status": kept["status"].tolist(),
            "reference_cos": kept["reference_cos"].to_numpy(),
        },
        manifests.dataset_schema(),
        {"counts": counts, **meta},
    )
    manifests.write_manifest(
        out["counts"],
        {
            "reason": ["redrawn", "given_up", "generated", *counts],
            "images": [int(frame["redraws"].sum()), given_up, len(frame), *counts.values()],
        },
        manifests.filter_counts_schema(),
        meta,
    )
    log.info("dataset: %s from %d aligned images, %d identities", counts, len(frame), len(labels))
    return counts
