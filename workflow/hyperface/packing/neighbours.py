"""Exact nearest neighbours on the sphere in row blocks: memory O(n x chunk), never O(n^2).

The packing objectives, their neighbour lists and the quality measures of a packed set all ask
one question - which rows of ``b`` are closest (largest cosine) to each row of ``a`` - answered
here by blocked matrix products on whatever device the tensors live on. A block holds about 268M
cosines (1 GiB in float32) unless ``chunk_size`` sets its rows.
"""

from __future__ import annotations

import math

import torch

# 1 GiB of float32 cosines a block: fewer, larger matrix products (1.3x faster than 64 MiB blocks
# at 20k-50k points on the CPU, the same at 100k; README, "Packing at scale")
BLOCK_ELEMENTS = 1 << 28
SEARCHES = ("exact", "bfloat16")


def chunk_rows(n_cols: int, chunk_size: int | None) -> int:
    return chunk_size or max(1, BLOCK_ELEMENTS // max(1, n_cols))


def top_k(
    a: torch.Tensor,
    b: torch.Tensor,
    k: int,
    *,
    exclude_self: bool = False,
    chunk_size: int | None = None,
    search: str = "exact",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest cosines of each row of ``a`` to rows of ``b`` and their indices, best
    first (unit rows). With ``exclude_self`` (``a`` is ``b``) a row is not its own neighbour.

    ``search="bfloat16"``: the scan runs in bfloat16 (tensor cores; AMX on recent CPUs) for the
    ``2k`` best candidates, which are then scored exactly in the inputs' precision - the returned
    cosines are exact, and a true neighbour is missed only when bfloat16's rounding (about 0.4 %)
    pushes it below ``k`` others."""
    if search == "bfloat16" and a.dtype != torch.bfloat16:
        _, candidates = top_k(a.bfloat16(), b.bfloat16(), 2 * k, exclude_self=exclude_self,
                              chunk_size=chunk_size)  # fmt: skip
        return top_k_among(a, b, candidates, k, exclude_self=exclude_self, chunk_size=chunk_size)
    if search not in SEARCHES:
        raise ValueError(f"packing.search must be one of {SEARCHES}, got {search!r}")
    k = min(k, len(b) - int(exclude_self))
    rows = chunk_rows(len(b), chunk_size)
    values = torch.empty(len(a), k, dtype=a.dtype, device=a.device)
    where = torch.empty(len(a), k, dtype=torch.long, device=a.device)
    for start in range(0, len(a), rows):
        sims = a[start : start + rows] @ b.T
        if exclude_self:
            local = torch.arange(len(sims), device=a.device)
            sims[local, local + start] = -math.inf
        values[start : start + rows], where[start : start + rows] = sims.topk(k, dim=1)
    return values, where


def top_k_among(
    a: torch.Tensor,
    b: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    *,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`top_k` searched only among each row's ``candidates`` (an (n, c) index tensor into
    ``b``, repeats allowed), exactly: O(n c d) instead of O(n |b| d). With ``exclude_self`` a row is
    not its own neighbour."""
    n, c = candidates.shape
    rows = chunk_rows(c * a.shape[1], chunk_size)
    values = torch.empty(n, min(k, c), dtype=a.dtype, device=a.device)
    where = torch.empty(n, min(k, c), dtype=torch.long, device=a.device)
    for start in range(0, n, rows):
        cand, _ = candidates[start : start + rows].sort(dim=1)
        cos = torch.einsum("nd,ncd->nc", a[start : start + rows], b[cand])
        repeat = torch.zeros_like(cand, dtype=torch.bool)
        repeat[:, 1:] = cand[:, 1:] == cand[:, :-1]
        if exclude_self:
            own = torch.arange(start, start + len(cand), device=a.device)[:, None]
            repeat |= cand == own
        cos[repeat] = -math.inf
        best, pick = cos.topk(values.shape[1], dim=1)
        values[start : start + rows], where[start : start + rows] = best, cand.gather(1, pick)
    return values, where


def nearest(
    a: torch.Tensor, b: torch.Tensor, *, exclude_self: bool = False, chunk_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``a`` the largest cosine to a row of ``b`` and its index (unit rows)."""
    values, where = top_k(a, b, 1, exclude_self=exclude_self, chunk_size=chunk_size)
    return values[:, 0], where[:, 0]


def undirected_edges(neighbours: torch.Tensor) -> torch.Tensor:
    """The unordered pairs {i, j} with j in i's list or i in j's, once each: an (m, 2) tensor, i <
    j."""
    n, k = neighbours.shape
    i = torch.arange(n, device=neighbours.device).repeat_interleave(k)
    j = neighbours.reshape(-1)
    lo, hi = torch.minimum(i, j), torch.maximum(i, j)
    keys = torch.unique(lo * n + hi)
    return torch.stack([keys // n, keys % n], dim=1)


def quality(
    x: torch.Tensor, gallery: torch.Tensor | None = None, chunk_size: int | None = None
) -> dict[str, float]:
    """Exact measures of a set of unit rows, in blocks: the minimum pairwise cosine distance, the
    distribution of each point's distance to its nearest neighbour, and the mean distance to the
    nearest gallery point."""
    best, _ = nearest(x, x, exclude_self=True, chunk_size=chunk_size)
    to_gallery = None if gallery is None else nearest(x, gallery, chunk_size=chunk_size)[0]
    return summarise(best, to_gallery)


def summarise(nn_cos: torch.Tensor, gallery_cos: torch.Tensor | None = None) -> dict[str, float]:
    """:func:`quality` from each point's cosine to its nearest neighbour (and gallery point)."""
    nn_distance = (1.0 - nn_cos).double().cpu()
    q = torch.quantile(nn_distance, torch.tensor([0.01, 0.5], dtype=torch.float64))
    out = {
        "min_distance": float(nn_distance.min()),
        "max_cosine": float(nn_cos.max()),
        "mean_nn_distance": float(nn_distance.mean()),
        "nn_distance_p01": float(q[0]),
        "nn_distance_median": float(q[1]),
    }
    if gallery_cos is not None:
        out["mean_gallery_distance"] = float((1.0 - gallery_cos).double().mean())
    return out
