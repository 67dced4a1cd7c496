"""Exact nearest neighbours on the sphere in row blocks: memory O(n x chunk), never O(n^2).

The packing objectives, their neighbour lists and the quality measures of a packed set all ask
one question - which rows of ``b`` are closest (largest cosine) to each row of ``a`` - answered
here by blocked matrix products on whatever device the tensors live on. A block holds about 16M
cosines (64 MiB in float32) unless ``chunk_size`` sets its rows.
"""

from __future__ import annotations

import math

import torch

BLOCK_ELEMENTS = 1 << 24


def chunk_rows(n_cols: int, chunk_size: int | None) -> int:
    return chunk_size or max(1, BLOCK_ELEMENTS // max(1, n_cols))


def top_k(
    a: torch.Tensor,
    b: torch.Tensor,
    k: int,
    *,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest cosines of each row of ``a`` to rows of ``b`` and their indices, best
    first (unit rows). With ``exclude_self`` (``a`` is ``b``) a row is not its own neighbour."""
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
