"""Packing objectives: small pieces behind one interface, each giving its value and its gradient
with respect to the unit rows it is handed (all points, or Algorithm 2's mini-batch).

- ``hard_min`` (the paper): cosine of the closest pair; only that pair gets a gradient.
- ``softmin``: ``t log sum_{i<j} exp(cos_ij / t)``; every pair pushes, the closest ones hardest.
- ``nearest_neighbour``: mean over points of the cosine to their nearest neighbour.
- ``energy``: mean over pairs of ``exp((cos - 1) / t)``; a mean over pairs, so its mini-batch
  gradient is unbiased (the paper's Theorem 1).
- ``neighbour_list``: the soft-min over the pairs of each point's ``neighbours`` nearest
  neighbours only, the lists refreshed every ``refresh_every`` iterations by an exact blocked
  search - O(n k d) per iteration plus O(n^2 d / R) for the refreshes, so 100k-1M identities fit.

Full-scan objectives compute in row blocks of the Gram matrix (memory O(n x chunk)); the
regulariser :class:`GalleryPull` is ``alpha`` x the mean cosine distance of each point to its
nearest gallery embedding, searched in the whole gallery or, with the neighbour list, among each
point's nearest gallery candidates from the last refresh.
"""

from __future__ import annotations

import math

import torch

from hyperface.packing.neighbours import chunk_rows, nearest, top_k, undirected_edges


class Objective:
    """Value and gradient w.r.t. unit rows ``xn``; stateful objectives refresh and checkpoint."""

    needs_full_set = False  # cannot run on Algorithm 2's mini-batches

    def __init__(self, temperature: float = 0.01, chunk_size: int | None = None):
        self.t, self.chunk = temperature, chunk_size

    def value_and_grad(self, xn: torch.Tensor) -> tuple[float, torch.Tensor]:
        raise NotImplementedError

    def refresh(self, xn: torch.Tensor, iteration: int) -> None:
        """Called before every iteration with all points (lists are rebuilt on their schedule)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved (nothing, for stateless objectives)."""


class HardMin(Objective):
    def value_and_grad(self, xn):
        best, where = nearest(xn, xn, exclude_self=True, chunk_size=self.chunk)
        i = int(torch.argmax(best))
        j = int(where[i])
        grad = torch.zeros_like(xn)
        grad[i], grad[j] = xn[j], xn[i]
        return float(best[i]), grad


class NearestNeighbour(Objective):
    def value_and_grad(self, xn):
        best, where = nearest(xn, xn, exclude_self=True, chunk_size=self.chunk)
        grad = xn[where] / len(xn)
        grad.index_add_(0, where, xn / len(xn))
        return float(best.mean()), grad


class SoftMin(Objective):
    def value_and_grad(self, xn):
        """One pass over row blocks: each block keeps its rows' log-sum-exp r_i and their
        row-normalised weighted neighbour sums; the global normaliser is applied at the end."""
        n = len(xn)
        rows = chunk_rows(n, self.chunk)
        r = torch.empty(n, dtype=xn.dtype, device=xn.device)
        g = torch.empty_like(xn)
        for start in range(0, n, rows):
            logits = xn[start : start + rows] @ xn.T / self.t
            local = torch.arange(len(logits), device=xn.device)
            logits[local, local + start] = -math.inf
            r_block = torch.logsumexp(logits, dim=1)
            r[start : start + rows] = r_block
            g[start : start + rows] = torch.exp(logits - r_block[:, None]) @ xn
        lse = torch.logsumexp(r, dim=0)
        return self.t * (lse.item() - math.log(2.0)), 2.0 * torch.exp(r - lse)[:, None] * g


class Energy(Objective):
    def value_and_grad(self, xn):
        n = len(xn)
        rows = chunk_rows(n, self.chunk)
        grad = torch.empty_like(xn)
        pairs = n * (n - 1) / 2
        total = torch.zeros((), dtype=xn.dtype, device=xn.device)  # summed on the device: one sync
        for start in range(0, n, rows):
            w = torch.exp((xn[start : start + rows] @ xn.T - 1.0) / self.t)
            local = torch.arange(len(w), device=xn.device)
            w[local, local + start] = 0.0
            total += w.sum()
            grad[start : start + rows] = (w @ xn) / (self.t * pairs)
        return float(total) / (2 * pairs), grad


class NeighbourList(Objective):
    """Soft-min over the listed pairs: each point's ``neighbours`` nearest, rebuilt by an exact
    blocked search every ``refresh_every`` iterations. With every other point listed it is
    exactly ``softmin``."""

    needs_full_set = True

    def __init__(
        self,
        temperature: float = 0.01,
        chunk_size: int | None = None,
        neighbours: int = 16,
        refresh_every: int = 1,
        search: str = "exact",
    ):
        super().__init__(temperature, chunk_size)
        self.k, self.every, self.search = neighbours, refresh_every, search
        self.lists: torch.Tensor | None = None
        self.edges: torch.Tensor | None = None

    def refresh(self, xn, iteration):
        if self.lists is None or iteration % self.every == 0:
            _, self.lists = top_k(
                xn, xn, self.k, exclude_self=True, chunk_size=self.chunk, search=self.search
            )
            self.edges = undirected_edges(self.lists)

    def value_and_grad(self, xn):
        a, b = self.edges[:, 0], self.edges[:, 1]
        rows = chunk_rows(xn.shape[1], self.chunk)
        logits = torch.cat(
            [
                (xn[a[s : s + rows]] * xn[b[s : s + rows]]).sum(1) / self.t
                for s in range(0, len(a), rows)
            ]
        )
        lse = torch.logsumexp(logits, dim=0)
        w = torch.exp(logits - lse)[:, None]
        grad = torch.zeros_like(xn)
        for s in range(0, len(a), rows):
            grad.index_add_(0, a[s : s + rows], w[s : s + rows] * xn[b[s : s + rows]])
            grad.index_add_(0, b[s : s + rows], w[s : s + rows] * xn[a[s : s + rows]])
        return self.t * lse.item(), grad

    def state_dict(self):
        return {"lists": self.lists.cpu()}

    def load_state_dict(self, state):
        self.lists = state["lists"]
        self.edges = undirected_edges(self.lists)


OBJECTIVES: dict[str, type[Objective]] = {
    "hard_min": HardMin,
    "softmin": SoftMin,
    "nearest_neighbour": NearestNeighbour,
    "energy": Energy,
    "neighbour_list": NeighbourList,
}


def make_objective(
    name: str,
    *,
    temperature: float,
    chunk_size: int | None,
    neighbours: int,
    refresh_every: int,
    search: str = "exact",
) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"packing.objective must be one of {tuple(OBJECTIVES)}, got {name!r}")
    if name == "neighbour_list":
        return NeighbourList(temperature, chunk_size, neighbours, refresh_every, search)
    return OBJECTIVES[name](temperature, chunk_size)


class GalleryPull:
    """alpha x mean cosine distance of each point to its nearest gallery embedding. With
    ``candidates``, the nearest is sought among each point's candidates from the last refresh."""

    def __init__(
        self,
        gallery: torch.Tensor,
        alpha: float,
        candidates: int | None = None,
        refresh_every: int = 1,
        chunk_size: int | None = None,
        search: str = "exact",
    ):
        self.gallery, self.alpha, self.k, self.every = gallery, alpha, candidates, refresh_every
        self.chunk, self.lists, self.search = chunk_size, None, search

    def refresh(self, xn: torch.Tensor, iteration: int) -> None:
        if self.k and (self.lists is None or iteration % self.every == 0):
            _, self.lists = top_k(
                xn, self.gallery, self.k, chunk_size=self.chunk, search=self.search
            )

    def nearest(
        self, xn: torch.Tensor, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k is None:
            return nearest(xn, self.gallery, chunk_size=self.chunk)
        lists = self.lists if rows is None else self.lists[rows]
        best = torch.empty(len(xn), dtype=xn.dtype, device=xn.device)
        idx = torch.empty(len(xn), dtype=torch.long, device=xn.device)
        step = chunk_rows(lists.shape[1] * xn.shape[1], self.chunk)
        for s in range(0, len(xn), step):
            cos = torch.einsum("nd,nkd->nk", xn[s : s + step], self.gallery[lists[s : s + step]])
            best[s : s + step], which = cos.max(dim=1)
            idx[s : s + step] = lists[s : s + step].gather(1, which[:, None])[:, 0]
        return best, idx

    def value_and_grad(
        self, xn: torch.Tensor, rows: torch.Tensor | None = None
    ) -> tuple[float, torch.Tensor]:
        cos, idx = self.nearest(xn, rows)
        return self.alpha * float((1.0 - cos).mean()), -self.alpha / len(xn) * self.gallery[idx]

    def state_dict(self) -> dict:
        return {} if self.lists is None else {"gallery_lists": self.lists.cpu()}

    def load_state_dict(self, state: dict) -> None:
        if "gallery_lists" in state:
            self.lists = state["gallery_lists"]
