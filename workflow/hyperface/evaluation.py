"""Face verification on insightface-format ``.bin`` benchmarks (LFW, CPLFW, CALFW, CFP-FP, AgeDB-30).

A ``.bin`` is a pickle of ``(list of encoded images, list of is-same flags)``, images in pair order.
Pickles can run code, so :func:`read_bin` uses an unpickler that resolves no globals at all and then
checks the structure. Accuracy is the standard 10-fold protocol: on each fold the threshold is the
best one on the other nine folds.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from hyperface.images import to_network


class BinFormatError(ValueError):
    """Not an insightface verification .bin, or one that tries to do more than hold data."""


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise BinFormatError(f"refusing to load {module}.{name}: a verification .bin holds only "
                             "lists of bytes and booleans")


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
        raise BinFormatError(f"{path}: {len(bins)} images for {len(issame)} pairs (need 2 per pair)")
    return [bytes(b) for b in bins], np.asarray(issame, dtype=bool)


def write_bin(path: str | Path, images: list[np.ndarray], issame: list[bool] | np.ndarray) -> None:
    """Write RGB uint8 images (2 per pair) as an insightface .bin with JPEG-encoded images."""
    if len(images) != 2 * len(issame):
        raise ValueError(f"need 2 images per pair: {len(images)} images, {len(issame)} pairs")
    encoded = []
    for im in images:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(im[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise ValueError("could not JPEG-encode an image")
        encoded.append(buf.tobytes())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump((encoded, [bool(s) for s in issame]), f, protocol=4)


def decode_images(bins: list[bytes], size: int = 112) -> np.ndarray:
    out = np.empty((len(bins), size, size, 3), np.uint8)
    for i, b in enumerate(bins):
        bgr = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BinFormatError(f"image {i} cannot be decoded")
        if bgr.shape[:2] != (size, size):
            bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = bgr[:, :, ::-1]
    return out


@torch.no_grad()
def embed_flip_fused(model: torch.nn.Module, images: np.ndarray, batch_size: int = 64,
                     device: str = "cpu") -> np.ndarray:
    """Unit embeddings of image + horizontal flip (summed before normalising)."""
    out = []
    for start in range(0, len(images), batch_size):
        x = to_network(images[start:start + batch_size]).to(device)
        e1, n1 = model(x)
        e2, n2 = model(x.flip(-1))
        out.append(torch.nn.functional.normalize(e1 * n1 + e2 * n2, dim=1).cpu().numpy())
    return np.concatenate(out)


@dataclass
class Verification:
    fold_accuracy: np.ndarray
    fold_threshold: np.ndarray
    fold_pairs: np.ndarray
    tar_at_far: float  # TAR at FAR=1e-3 over all pairs

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.fold_accuracy))


def ten_fold(similarity: np.ndarray, issame: np.ndarray, n_folds: int = 10) -> Verification:
    """10-fold verification accuracy; each fold's threshold is chosen on the other folds."""
    similarity, issame = np.asarray(similarity, np.float64), np.asarray(issame, bool)
    n = len(issame)
    if n < n_folds:
        raise ValueError(f"{n} pairs cannot be split into {n_folds} folds")
    folds = np.array_split(np.arange(n), n_folds)  # contiguous folds, as the standard protocol
    accs, thresholds, sizes = [], [], []
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        candidates = _midpoints(similarity[train])
        train_acc = [np.mean((similarity[train] > t) == issame[train]) for t in candidates]
        thr = candidates[int(np.argmax(train_acc))]
        accs.append(np.mean((similarity[test] > thr) == issame[test]))
        thresholds.append(thr)
        sizes.append(len(test))
    return Verification(np.array(accs), np.array(thresholds), np.array(sizes),
                        tar_at_far(similarity, issame, 1e-3))


def _midpoints(scores: np.ndarray) -> np.ndarray:
    """Thresholds halfway between consecutive distinct scores, plus one below and one above all."""
    u = np.unique(scores)
    return np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2, [u[-1] + 1.0]])


def tar_at_far(similarity: np.ndarray, issame: np.ndarray, far: float) -> float:
    """True accept rate at the threshold whose false accept rate is at most ``far``."""
    impostor = np.sort(similarity[~issame])[::-1]
    genuine = similarity[issame]
    if len(impostor) == 0 or len(genuine) == 0:
        return float("nan")
    k = int(np.floor(far * len(impostor)))
    thr = impostor[k] if k < len(impostor) else impostor[-1]
    return float(np.mean(genuine > thr))


def verify(model: torch.nn.Module, bin_path: str | Path, *, batch_size: int = 64,
           device: str = "cpu") -> Verification:
    bins, issame = read_bin(bin_path)
    emb = embed_flip_fused(model, decode_images(bins), batch_size=batch_size, device=device)
    similarity = np.sum(emb[0::2] * emb[1::2], axis=1)
    return ten_fold(similarity, issame)


def holdout_pairs(identities: np.ndarray, seed_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Balanced genuine/impostor pairs (row indices) from images labelled by ``identities``.

    Genuine: every pair of images within an identity. Impostor: as many pairs of images of two
    different identities, drawn from ``seed_rng``.
    """
    identities = np.asarray(identities)
    genuine = []
    for ident in np.unique(identities):
        rows = np.flatnonzero(identities == ident)
        genuine += [(a, b) for i, a in enumerate(rows) for b in rows[i + 1:]]
    impostor: set[tuple[int, int]] = set()
    n = len(identities)
    limit = len(genuine) * 50 + 100
    while len(impostor) < len(genuine) and limit > 0:
        a, b = (int(v) for v in seed_rng.integers(0, n, size=2))
        if identities[a] != identities[b]:
            impostor.add((min(a, b), max(a, b)))
        limit -= 1
    pairs = np.array(genuine + sorted(impostor), dtype=np.int64).reshape(-1, 2)
    same = np.array([True] * len(genuine) + [False] * len(impostor))
    order = seed_rng.permutation(len(pairs))
    return pairs[order], same[order]


PAPER_HYPERFACE_10K = {"lfw": 98.67, "cplfw": 84.68, "calfw": 89.82, "cfp_fp": 89.14, "agedb_30": 87.07}


def summary_table(rows: list[dict]) -> str:
    """Markdown table of benchmark accuracies (%), with the paper's HyperFace-10k numbers beside."""
    lines = ["| benchmark | accuracy (%) | std (%) | TAR@FAR=1e-3 | pairs | paper HyperFace 10k (%) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        paper = PAPER_HYPERFACE_10K.get(r["benchmark"])
        lines.append(f"| {r['benchmark']} | {100 * r['accuracy']:.2f} | {100 * r['std']:.2f} | "
                     f"{r['tar_at_far_1e-3']:.3f} | {r['n_pairs']} | "
                     f"{'' if paper is None else f'{paper:.2f}'} |")
    return "\n".join(lines) + "\n"
