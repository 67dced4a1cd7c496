"""Face verification on insightface-format ``.bin`` benchmarks (LFW, CPLFW, CALFW, CFP-FP,
AgeDB-30).

A ``.bin`` is a pickle of ``(list of encoded images, list of is-same flags)``, images in pair order.
Pickles can run code, so :func:`read_bin` uses an unpickler that resolves no globals at all and then
checks the structure. Verification follows insightface's protocol to the threshold grid, so the
numbers compare with the papers' tables: accuracy over 10 folds and VAL@FAR=1e-3.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from hyperface.storage.containers import decode
from hyperface.storage.images import to_network


class BinFormatError(ValueError):
    """Not an insightface verification .bin, or one that tries to do more than hold data."""


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise BinFormatError(
            f"refusing to load {module}.{name}: a verification .bin holds only "
            "lists of bytes and booleans"
        )


def read_bin(path: str | Path) -> tuple[list[bytes], np.ndarray]:
    """(encoded images, is-same flags) from a .bin, refusing anything but plain data."""
    path = Path(path)
    if not path.exists():
        raise BinFormatError(f"{path}: benchmark file not found")
    try:
        with open(path, "rb") as f:
            obj = _DataOnlyUnpickler(f, encoding="bytes").load()
    except BinFormatError as err:
        raise BinFormatError(f"{path}: {err}") from err
    except Exception as err:
        raise BinFormatError(f"{path}: not a pickle ({type(err).__name__}: {err})") from err
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise BinFormatError(f"{path}: expected (images, issame), got {type(obj).__name__}")
    bins, issame = obj
    if not all(isinstance(b, (bytes, bytearray)) for b in bins):
        raise BinFormatError(f"{path}: images must be encoded bytes")
    if not all(isinstance(s, (bool, int)) for s in issame):
        raise BinFormatError(f"{path}: is-same flags must be booleans")
    if len(bins) != 2 * len(issame):
        raise BinFormatError(
            f"{path}: {len(bins)} images for {len(issame)} pairs (need 2 per pair)"
        )
    return [bytes(b) for b in bins], np.asarray(issame, dtype=bool)


def write_bin(
    path: str | Path, encoded: Sequence[bytes], issame: Sequence[bool] | np.ndarray
) -> None:
    """Write encoded images (2 per pair, any format OpenCV decodes) as an insightface .bin."""
    if len(encoded) != 2 * len(issame):
        raise ValueError(f"need 2 images per pair: {len(encoded)} images, {len(issame)} pairs")
    encoded = [bytes(b) for b in encoded]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump((encoded, [bool(s) for s in issame]), f, protocol=4)


def decode_images(bins: list[bytes], size: int = 112) -> np.ndarray:
    out = np.empty((len(bins), size, size, 3), np.uint8)
    for i, b in enumerate(bins):
        try:
            rgb = decode(b)
        except ValueError as err:
            raise BinFormatError(f"image {i} cannot be decoded") from err
        if rgb.shape[:2] != (size, size):
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = rgb
    return out


Features = Callable[[np.ndarray], np.ndarray]  # RGB uint8 (N, 112, 112, 3) -> raw (N, d) features


def torch_features(model: torch.nn.Module, device: str = "cpu") -> Features:
    """Raw features (unit direction x norm) of one of our backbones."""

    @torch.no_grad()
    def features(images: np.ndarray) -> np.ndarray:
        unit, norm = model(to_network(images).to(device))
        return (unit * norm).cpu().numpy()

    return features


def flip_fused(features: Features, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Unit embeddings of image + horizontal flip, as insightface's verification: the two raw
    (unnormalised) features are summed, then normalised, in float64."""
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        flipped = np.ascontiguousarray(batch[:, :, ::-1])
        out.append(features(batch).astype(np.float64) + features(flipped).astype(np.float64))
    fused = np.concatenate(out)
    return fused / np.linalg.norm(fused, axis=1, keepdims=True)


def embed_flip_fused(
    model: torch.nn.Module, images: np.ndarray, batch_size: int = 64, device: str = "cpu"
) -> np.ndarray:
    return flip_fused(torch_features(model, device), images, batch_size)


# insightface's verification protocol (recognition/arcface_torch/eval/verification.py): squared L2
# distance between unit embeddings, "same" when below the threshold, 10 contiguous folds; the
# accuracy threshold is the best of a 0.01 grid on the other nine folds, the VAL threshold is
# interpolated on a 0.001 grid to the target FAR on the other nine folds.
ACCURACY_THRESHOLDS = np.arange(0, 4, 0.01)
VAL_THRESHOLDS = np.arange(0, 4, 0.001)
FAR_TARGET = 1e-3


@dataclass
class Verification:
    fold_accuracy: np.ndarray
    fold_threshold: np.ndarray  # squared L2 distance
    fold_pairs: np.ndarray
    fold_val_threshold: np.ndarray  # squared L2 distance interpolated to FAR_TARGET
    fold_val: np.ndarray  # true accept rate at that threshold
    fold_far: np.ndarray  # the false accept rate that threshold gives on the fold

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.fold_accuracy))

    @property
    def val(self) -> float:
        return float(np.mean(self.fold_val))


def squared_distances(emb1: np.ndarray, emb2: np.ndarray) -> np.ndarray:
    return np.sum(np.square(np.asarray(emb1, np.float64) - np.asarray(emb2, np.float64)), axis=1)


def accept_counts(
    distance: np.ndarray, issame: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """True and false accepts (distance strictly below the threshold) at every threshold, by
    binary search in the sorted genuine and impostor distances: O((n + t) log n), not O(n t)."""
    genuine, impostor = np.sort(distance[issame]), np.sort(distance[~issame])
    return (
        np.searchsorted(genuine, thresholds, side="left"),
        np.searchsorted(impostor, thresholds, side="left"),
    )


def _rate(count: np.ndarray | int, total: int) -> np.ndarray | float:
    return np.asarray(count, np.float64) / total if total else np.full(np.shape(count), np.nan)


def val_threshold(
    distance: np.ndarray, issame: np.ndarray, far_target: float = FAR_TARGET
) -> float:
    """The distance at which the false accept rate reaches ``far_target`` (0 when none does)."""
    impostors = int(np.sum(~issame))
    if impostors == 0:
        return 0.0
    _, false_accepts = accept_counts(distance, issame, VAL_THRESHOLDS)
    far = false_accepts / impostors
    if far.max() < far_target:
        return 0.0
    return interpolate_threshold(far, VAL_THRESHOLDS, far_target)


def interpolate_threshold(far: np.ndarray, thresholds: np.ndarray, target: float) -> float:
    """Piecewise-linear threshold at FAR ``target`` on a non-decreasing FAR curve, as insightface's
    ``interp1d(far, thresholds, kind="slinear")`` evaluated it: between the last grid threshold
    whose FAR is at most the target and the next one. (SciPy >= 1.15 refuses the repeated FAR
    values every real curve has, so the rule is written out here.)"""
    i = int(np.searchsorted(far, target, side="right")) - 1
    if i >= len(far) - 1:  # the target is the curve's last value: its first threshold
        return float(thresholds[int(np.searchsorted(far, far[-1], side="left"))])
    return float(
        thresholds[i]
        + (thresholds[i + 1] - thresholds[i]) * (target - far[i]) / (far[i + 1] - far[i])
    )


def ten_fold(distance: np.ndarray, issame: np.ndarray, n_folds: int = 10) -> Verification:
    """insightface's 10-fold verification of pairs at squared L2 ``distance``."""
    distance, issame = np.asarray(distance, np.float64), np.asarray(issame, bool)
    n = len(issame)
    if n < n_folds:
        raise ValueError(f"{n} pairs cannot be split into {n_folds} folds")
    rows: list[tuple[float, float, int, float, float, float]] = []
    for test in np.array_split(np.arange(n), n_folds):  # sklearn KFold(shuffle=False)'s folds
        train = np.ones(n, bool)
        train[test] = False
        d, s = distance[train], issame[train]
        true_acc, false_acc = accept_counts(d, s, ACCURACY_THRESHOLDS)
        correct = true_acc + (np.sum(~s) - false_acc)
        best = float(ACCURACY_THRESHOLDS[int(np.argmax(correct))])  # the first best, as np.argmax
        val_thr = val_threshold(d, s)
        dt, st = distance[test], issame[test]
        accuracy = float(np.sum((dt < best) == st)) / len(test)
        val = _rate(int(np.sum((dt < val_thr) & st)), int(np.sum(st)))
        far = _rate(int(np.sum((dt < val_thr) & ~st)), int(np.sum(~st)))
        rows.append((accuracy, best, len(test), val_thr, float(val), float(far)))
    acc, thr, size, val_thr, val, far = (np.array(c) for c in zip(*rows, strict=True))
    return Verification(acc, thr, size.astype(np.int64), val_thr, val, far)


def verify(features: Features, bin_path: str | Path, *, batch_size: int = 64) -> Verification:
    """insightface's verification of a recogniser's ``features`` on one benchmark .bin."""
    bins, issame = read_bin(bin_path)
    emb = flip_fused(features, decode_images(bins), batch_size=batch_size)
    return ten_fold(squared_distances(emb[0::2], emb[1::2]), issame)


def holdout_pairs(
    identities: np.ndarray, seed_rng: np.random.Generator, max_pairs: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced genuine/impostor pairs (row indices) from images labelled by ``identities``.

    Genuine: every pair of images within an identity, or - when that is more than half of
    ``max_pairs`` - that many distinct ones drawn uniformly from them. Impostor: as many distinct
    pairs of images of two different identities. Draws come from ``seed_rng``; nothing is
    quadratic in the images.
    """
    identities = np.asarray(identities)
    order = np.argsort(identities, kind="stable")
    labels, first, counts = np.unique(identities[order], return_index=True, return_counts=True)
    per_identity = counts * (counts - 1) // 2
    want = (
        int(per_identity.sum())
        if max_pairs is None
        else min(int(per_identity.sum()), max_pairs // 2)
    )
    if want == int(per_identity.sum()):
        genuine = {
            (int(order[f + a]), int(order[f + b]))
            for f, c in zip(first, counts, strict=True)
            for a in range(c)
            for b in range(a + 1, c)
        }
    else:
        genuine = set()
        weights = per_identity / per_identity.sum()
        while len(genuine) < want:
            k = seed_rng.choice(len(labels), size=want, p=weights)
            a = seed_rng.integers(0, counts[k])
            b = (a + seed_rng.integers(1, np.maximum(counts[k], 2))) % counts[k]  # another image
            for i, x, y in zip(k, a, b, strict=True):
                if len(genuine) < want and x != y:
                    p, q = int(order[first[i] + x]), int(order[first[i] + y])
                    genuine.add((min(p, q), max(p, q)))
    impostor: set[tuple[int, int]] = set()
    n, limit = len(identities), 50
    while len(impostor) < len(genuine) and limit and len(labels) > 1:
        a, b = seed_rng.integers(0, n, size=(2, 2 * (len(genuine) - len(impostor))))
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            if identities[x] != identities[y] and len(impostor) < len(genuine):
                impostor.add((min(x, y), max(x, y)))
        limit -= 1
    pairs = np.array(sorted(genuine) + sorted(impostor), dtype=np.int64).reshape(-1, 2)
    same = np.array([True] * len(genuine) + [False] * len(impostor))
    shuffle = seed_rng.permutation(len(pairs))
    return pairs[shuffle], same[shuffle]


PAPER_HYPERFACE_10K = {
    "lfw": 98.67,
    "cplfw": 84.68,
    "calfw": 89.82,
    "cfp_fp": 89.14,
    "agedb_30": 87.07,
}


def val_measurable(n_pairs: int, far_target: float = FAR_TARGET) -> bool:
    """Whether VAL at ``far_target`` means anything on a benchmark of ``n_pairs`` balanced pairs:
    its threshold is set on nine folds' impostor pairs, and with fewer than 1/``far_target`` of
    them it is just the closest impostor's distance (the demo's 300-pair holdout: 135 impostors,
    VAL 42-75 % over training seeds of one model)."""
    return 0.9 * n_pairs / 2 * far_target >= 1


def summary_table(rows: list[dict]) -> str:
    """Markdown table of each model's benchmark accuracies (%), with the paper's HyperFace-10k
    numbers beside; VAL and its FAR as "-" where the benchmark is too small to measure them."""
    lines = [
        "| model | benchmark | accuracy (%) | std (%) | VAL@FAR=1e-3 (%) | FAR | pairs | "
        "paper HyperFace 10k (%) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        paper = PAPER_HYPERFACE_10K.get(r["benchmark"])
        val, far = (
            (f"{100 * r['val']:.2f} +- {100 * r['val_std']:.2f}", f"{r['far']:.5f}")
            if val_measurable(r["n_pairs"])
            else ("-", "-")
        )
        lines.append(
            f"| {r['model']} | {r['benchmark']} | {100 * r['accuracy']:.2f} | {100 * r['std']:.2f} "
            f"| {val} | {far} | {r['n_pairs']} | {'' if paper is None else f'{paper:.2f}'} |"
        )
    return "\n".join(lines) + "\n"
