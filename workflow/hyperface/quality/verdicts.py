"""The judge's verdict on a set of identities, from its descriptors and its decision rule.

- detection: the share of images where the judge's detector found a face;
- consistency: the mean cosine of each pair of an identity's images;
- genuine match: the share of those pairs the judge calls the same person;
- separation: the cosine between an identity's mean descriptor and the nearest other identity's,
  and the share of image pairs across the two that the judge calls the same person (impostor
  match) - the hardest impostors, found in blocks (never all pairs of identities at once).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hyperface.packing import neighbours
from hyperface.packing.vectors import unit_rows
from hyperface.storage import manifests

MTCNN_FACE = 0.9  # the alignment stage's default min_face_prob


def judged_same(a: np.ndarray, b: np.ndarray, metric: str, threshold: float) -> np.ndarray:
    """The judge's decision on every pair (rows of ``a`` x rows of ``b``), raw descriptors."""
    if metric == "l2":
        return distances(a, b, metric) < threshold
    return unit_rows(a) @ unit_rows(b).T >= threshold


def identity_verdicts(
    identities: np.ndarray, descriptors: np.ndarray, metric: str, threshold: float
) -> pd.DataFrame:
    """Per identity: judged images, consistency, genuine match, nearest other identity, its
    cosine and the impostor match rate against it (NaN where an identity has too few faces)."""
    found = ~np.isnan(descriptors).any(axis=1)
    order = np.argsort(identities, kind="stable")  # one sort, not a scan of all images per identity
    ids, starts = np.unique(identities[order], return_index=True)
    groups = {
        i: rows[found[rows]] for i, rows in zip(ids, np.split(order, starts[1:]), strict=True)
    }
    unit = unit_rows(np.where(found[:, None], descriptors, 0.0))
    rows = []
    for ident in ids:
        idx = groups[ident]
        upper = np.triu_indices(len(idx), k=1)
        cos = (unit[idx] @ unit[idx].T)[upper]
        same = judged_same(descriptors[idx], descriptors[idx], metric, threshold)[upper]
        rows.append(
            {
                "identity": int(ident),
                "judged": len(idx),
                "consistency": float(cos.mean()) if len(cos) else np.nan,
                "genuine_match": float(same.mean()) if len(same) else np.nan,
                "genuine_pairs": len(cos),
            }
        )
    table = pd.DataFrame(rows)
    has = np.array([len(groups[i]) > 0 for i in ids])
    table["nearest_identity"], table["nearest_cos"], table["impostor_match"] = -1, np.nan, np.nan
    if has.sum() >= 2:
        means = unit_rows(np.stack([unit[groups[i]].mean(0) for i in ids[has]]))
        t = torch.from_numpy(means)
        cos, where = neighbours.nearest(t, t, exclude_self=True)
        near = ids[has][where.numpy()]
        impostor = [
            judged_same(descriptors[groups[a]], descriptors[groups[b]], metric, threshold).mean()
            for a, b in zip(ids[has], near, strict=True)
        ]
        table.loc[has, "nearest_identity"] = near
        table.loc[has, "nearest_cos"] = cos.numpy()
        table.loc[has, "impostor_match"] = impostor
    return table


def distances(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """The judge's distance of every pair (rows of ``a`` x rows of ``b``): Euclidean for dlib,
    one minus the cosine for SFace."""
    if metric == "l2":
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.maximum(sq, 0.0))
    return 1.0 - unit_rows(a) @ unit_rows(b).T


def impostors_accepted(
    identities: np.ndarray, descriptors: np.ndarray, metric: str, threshold: float
) -> float:
    """The share of all pairs of images of different identities the judge calls the same person
    (a block of rows at a time: 6,000 judged images are 18M pairs)."""
    found = ~np.isnan(descriptors).any(axis=1)
    ids, desc = identities[found], descriptors[found]
    accepted = pairs = 0
    for start in range(0, len(desc), 1024):
        block = slice(start, start + 1024)
        same = judged_same(desc[block], desc, metric, threshold)
        other = ids[block][:, None] != ids[None, :]
        accepted += int((same & other).sum())
        pairs += int(other.sum())
    return accepted / pairs if pairs else float("nan")


def spread(descriptors: np.ndarray, metric: str, threshold: float) -> dict[str, float]:
    """How far apart a set of faces (one per person) lie for the judge: the smallest and mean
    distance to the nearest other face, and the share of pairs it calls the same person."""
    desc = descriptors[~np.isnan(descriptors).any(axis=1)]
    if len(desc) < 2:
        return {"faces": len(desc), "min_nearest": np.nan, "mean_nearest": np.nan,
                "pairs_accepted": np.nan}  # fmt: skip
    dist = distances(desc, desc, metric)
    np.fill_diagonal(dist, np.inf)
    nearest = dist.min(axis=1)
    upper = np.triu_indices(len(desc), k=1)
    same = judged_same(desc, desc, metric, threshold)[upper]
    return {
        "faces": len(desc),
        "min_nearest": float(nearest.min()),
        "mean_nearest": float(nearest.mean()),
        "pairs_accepted": float(same.mean()),
    }


def overall(images: pd.DataFrame, identities: pd.DataFrame) -> dict[str, float]:
    """The judge's figures for a whole set: detection rate, mean consistency, pooled genuine match,
    mean nearest-identity cosine, mean impostor match."""
    pairs = identities["genuine_pairs"]
    weighted = (identities["genuine_match"].fillna(0) * pairs).sum()
    return {
        "images": len(images),
        "detection_rate": float((images["face_score"] > 0).mean()),
        "consistency": float(identities["consistency"].mean()),
        "genuine_match": float(weighted / pairs.sum()) if pairs.sum() else float("nan"),
        "nearest_identity_cos": float(identities["nearest_cos"].mean()),
        "impostor_match": float(identities["impostor_match"].mean()),
    }


def judge_figures(
    images: str | Path, identities: str | Path, gallery: str | Path
) -> list[tuple[str, str]]:
    """(measure, value) rows of the judge's verdict, for the report and the dataset card."""
    verdict = manifests.read_meta(identities)["judge"]
    ids = manifests.read_manifest(identities)
    figures = overall(manifests.read_manifest(images), ids)
    gal = manifests.read_manifest(gallery)
    same = "distance <" if verdict["metric"] == "l2" else "cosine >="

    def share(x: float) -> str:
        return "n/a (no faces found)" if np.isnan(x) else f"{x:.1%}"

    def mean(x: float) -> str:
        return "n/a (no faces found)" if np.isnan(x) else f"{x:.3f}"

    return [
        (
            "judge",
            f"{verdict['backend']} recogniser, YuNet detector (same person: {same} "
            f"{verdict['threshold']})",
        ),
        (
            f"gallery faces found by MTCNN (probability >= {MTCNN_FACE})",
            f"{(gal['face_prob'] >= MTCNN_FACE).mean():.1%} of {len(gal):,}",
        ),
        ("gallery faces found by YuNet", f"{(gal['face_score'] > 0).mean():.1%} of {len(gal):,}"),
        ("dataset images judged", f"{figures['images']:,} ({len(ids):,} identities)"),
        ("dataset images with a face (YuNet)", f"{figures['detection_rate']:.1%}"),
        ("identity consistency (mean cosine within an identity)", mean(figures["consistency"])),
        ("genuine pairs called the same person", share(figures["genuine_match"])),
        ("cosine to the nearest other identity (mean)", mean(figures["nearest_identity_cos"])),
        (
            "pairs with the nearest other identity called the same person",
            share(figures["impostor_match"]),
        ),
        (
            "pairs of images of different identities called the same person",
            share(verdict.get("impostors_accepted", float("nan"))),
        ),
    ]
