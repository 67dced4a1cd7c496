"""The HyperFace packing problem: spread identities on the sphere, kept near a gallery of faces.

Algorithm 1 (full batch) and Algorithm 2 (mini-batch) of the paper, with the paper's objective
(push the closest pair apart) and faster-converging alternatives. Gradients are computed in row
blocks of the Gram matrix without autograd, so memory is O(n x chunk) and never O(n^2):

- ``hard_min`` (the paper): loss = cos of the closest pair; only that pair gets a gradient.
- ``softmin``: a log-sum-exp soft maximum of all pairwise cosines (temperature ``temperature``);
  every pair pushes, the closest ones hardest, so the minimum distance rises much faster.
- ``nearest_neighbour``: mean over points of the cosine to their nearest neighbour.
- ``energy``: mean over all pairs of exp((cos - 1) / temperature), a smooth repulsive potential;
  being a mean over pairs, its mini-batch gradient is unbiased (the paper's Theorem 1).

The regulariser is ``alpha`` x the mean cosine distance of each point to its nearest gallery
embedding. Mini-batch note: for ``hard_min`` the mini-batch gradient is *not* an unbiased estimate
of the full one (a min over a subset is not the subset of a min); the paper's Theorem 1 covers
objectives that are means over pairs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hyperface.runtime import StopRequest, save_checkpoint
from hyperface.seeding import derive_seed, torch_generator

log = logging.getLogger(__name__)

OBJECTIVES = ("hard_min", "softmin", "nearest_neighbour", "energy")
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}
INITS = ("gallery", "random")
TRACE_COLUMNS = ["iteration", "min_distance", "mean_nn_distance", "regulariser", "lr", "elapsed_s"]
_BLOCK_ELEMENTS = 1 << 24  # 16M Gram entries per block: 64 MiB in float32


class PackingInterrupted(RuntimeError):
    """Raised after a checkpoint was written because SIGTERM/SIGUSR1 asked the job to stop."""


@dataclass
class PackResult:
    embeddings: np.ndarray  # (n, d) float32, unit rows
    trace: pd.DataFrame
    init_index: np.ndarray  # gallery row each identity started from, -1 for random init
    iterations_run: int  # iterations done in this call (0 when a finished checkpoint was reused)


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _chunk_rows(n_cols: int, chunk_size: int | None) -> int:
    return chunk_size or max(1, _BLOCK_ELEMENTS // max(1, n_cols))


def nearest(a: torch.Tensor, b: torch.Tensor, *, exclude_self: bool = False,
            chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``a`` the largest cosine to a row of ``b`` and its index (unit rows).

    With ``exclude_self`` (``a`` is ``b``) the diagonal is ignored. Memory O(chunk x len(b)).
    """
    rows = _chunk_rows(len(b), chunk_size)
    best = torch.empty(len(a), dtype=a.dtype, device=a.device)
    where = torch.empty(len(a), dtype=torch.long, device=a.device)
    for start in range(0, len(a), rows):
        sims = a[start:start + rows] @ b.T
        if exclude_self:
            idx = torch.arange(start, start + len(sims), device=a.device)
            sims[torch.arange(len(sims), device=a.device), idx] = -math.inf
        best[start:start + rows], where[start:start + rows] = sims.max(dim=1)
    return best, where


def _softmin_grad(xn: torch.Tensor, temperature: float, chunk_size: int | None
                  ) -> tuple[float, torch.Tensor]:
    """Value and gradient of t*log(sum_{i<j} exp(cos_ij/t)) in one pass over row blocks.

    Each block keeps its rows' own log-sum-exp r_i and the row-normalised weighted sum of
    neighbours; the global normaliser is applied at the end, so the Gram matrix is never whole.
    Returns (loss, grad).
    """
    n = len(xn)
    rows = _chunk_rows(n, chunk_size)
    r = torch.empty(n, dtype=xn.dtype, device=xn.device)
    g = torch.empty_like(xn)
    for start in range(0, n, rows):
        sims = xn[start:start + rows] @ xn.T
        local = torch.arange(len(sims), device=xn.device)
        sims[local, local + start] = -math.inf
        logits = sims / temperature
        r_block = torch.logsumexp(logits, dim=1)
        r[start:start + rows] = r_block
        g[start:start + rows] = torch.exp(logits - r_block[:, None]) @ xn
    lse = torch.logsumexp(r, dim=0)
    loss = temperature * (lse.item() - math.log(2.0))
    grad = 2.0 * torch.exp(r - lse)[:, None] * g
    return loss, grad


def _energy_grad(xn: torch.Tensor, temperature: float, chunk_size: int | None) -> torch.Tensor:
    """Gradient of mean_{i<j} exp((cos_ij - 1) / t), in row blocks."""
    n = len(xn)
    rows = _chunk_rows(n, chunk_size)
    grad = torch.empty_like(xn)
    pairs = n * (n - 1) / 2
    for start in range(0, n, rows):
        w = torch.exp((xn[start:start + rows] @ xn.T - 1.0) / temperature)
        local = torch.arange(len(w), device=xn.device)
        w[local, local + start] = 0.0
        grad[start:start + rows] = (w @ xn) / (temperature * pairs)
    return grad


def _objective_grad(objective: str, xn: torch.Tensor, temperature: float,
                    chunk_size: int | None) -> torch.Tensor:
    """Gradient of the packing objective w.r.t. the unit rows."""
    if objective == "softmin":
        return _softmin_grad(xn, temperature, chunk_size)[1]
    if objective == "energy":
        return _energy_grad(xn, temperature, chunk_size)
    best, where = nearest(xn, xn, exclude_self=True, chunk_size=chunk_size)
    grad = torch.zeros_like(xn)
    if objective == "hard_min":
        i = int(torch.argmax(best))
        j = int(where[i])
        grad[i] = xn[j]
        grad[j] = xn[i]
    elif objective == "nearest_neighbour":
        grad += xn[where] / len(xn)
        grad.index_add_(0, where, xn / len(xn))
    else:
        raise ValueError(f"packing.objective must be one of {OBJECTIVES}, got {objective!r}")
    return grad


def _tangent(grad_unit: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Chain a gradient w.r.t. x/|x| back to x: project on the tangent space and divide by |x|."""
    norm = x.norm(dim=1, keepdim=True)
    xn = x / norm
    return (grad_unit - (grad_unit * xn).sum(dim=1, keepdim=True) * xn) / norm


def loss_gradient(x: torch.Tensor, gallery: torch.Tensor | None, rows: torch.Tensor | None = None, *,
                  objective: str = "hard_min", alpha: float = 0.0, temperature: float = 0.01,
                  chunk_size: int | None = None) -> torch.Tensor:
    """Gradient of one iteration's loss w.r.t. the (unnormalised) points ``x``.

    The objective on the rows ``rows`` (all rows when None, Algorithm 1; a mini-batch, Algorithm
    2) plus ``alpha`` x the mean cosine distance of those rows to their nearest gallery embedding.
    Rows outside the batch get a zero gradient.
    """
    xb = x if rows is None else x[rows]
    xn = torch.nn.functional.normalize(xb, dim=1)
    grad = _objective_grad(objective, xn, temperature, chunk_size)
    if gallery is not None and alpha > 0:
        _, idx = nearest(xn, gallery, chunk_size=chunk_size)
        grad -= alpha / len(xn) * gallery[idx]
    full = _tangent(grad, xb)
    if rows is None:
        return full
    out = torch.zeros_like(x)
    out[rows] = full
    return out


def random_init(n: int, dim: int, seed: int, min_distance: float = 0.3,
                max_rounds: int = 1000) -> np.ndarray:
    """Uniform points on the sphere, redrawn until every pair is at least ``min_distance`` apart.

    The paper's baseline: random references with a minimum cosine distance of 0.3.
    """
    x = torch.randn(n, dim, generator=torch_generator(seed, "pack-random-init"), dtype=torch.float64)
    x = torch.nn.functional.normalize(x, dim=1)
    for round_ in range(max_rounds):
        best, where = nearest(x, x, exclude_self=True)
        bad = torch.nonzero((1.0 - best) < min_distance).flatten()
        # of each offending pair redraw only the later point, so accepted points stay put
        bad = bad[bad > where[bad]]
        if len(bad) == 0:
            return x.float().numpy()
        gen = torch_generator(seed, "pack-random-init", round_ + 1)
        fresh = torch.randn(len(bad), dim, generator=gen, dtype=torch.float64)
        x[bad] = torch.nn.functional.normalize(fresh, dim=1)
    raise ValueError(f"could not place {n} points in {dim}-D at cosine distance >= {min_distance}; "
                     "lower packing.min_init_distance")


def _unit(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name} must be an (n, d) array, got shape {a.shape}")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if not np.all(np.isfinite(a)) or np.any(norms == 0):
        raise ValueError(f"{name} has a zero or non-finite row")
    return a / norms


def initial_points(n_identities: int, init: str, gallery: np.ndarray | None, dim: int | None,
                   seed: int, min_init_distance: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Starting references and the gallery row each came from (-1 for random points)."""
    if init == "gallery":
        if gallery is None or len(gallery) < n_identities:
            have = 0 if gallery is None else len(gallery)
            raise ValueError(f"packing.init 'gallery' needs gallery.size >= packing.n_identities "
                             f"({have} < {n_identities})")
        return _unit(gallery[:n_identities], "gallery"), np.arange(n_identities)
    if init == "random":
        if dim is None:
            raise ValueError("random init needs the embedding dimension")
        return random_init(n_identities, dim, seed, min_init_distance), np.full(n_identities, -1)
    raise ValueError(f"packing.init must be one of {INITS}, got {init!r}")


def optimize(
    x0: np.ndarray | None = None,
    gallery: np.ndarray | None = None,
    *,
    seed: int = 0,
    n_identities: int | None = None,
    init: str = "gallery",
    min_init_distance: float = 0.3,
    embedding_dim: int = 512,
    alpha: float = 0.5,
    iterations: int = 1000,
    lr: float = 0.01,
    lr_decay: float = 1.0,
    lr_step: int = 1000,
    optimizer: str = "adam",
    batch_size: int | None = None,
    objective: str = "hard_min",
    temperature: float = 0.01,
    chunk_size: int | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1000,
    trace_every: int = 100,
    device: str | None = "auto",
    progress: Callable[[int, dict], None] | None = None,
) -> PackResult:
    """Solve the packing problem (Algorithm 1, or Algorithm 2 when ``batch_size`` is set).

    Starts from ``x0`` when given, else from ``init`` ('gallery': the first ``n_identities``
    gallery embeddings, as in the paper; 'random': points at least ``min_init_distance`` apart).
    Keyword names are the keys of the ``packing:`` config section (plus ``seed``). With
    ``checkpoint`` the state is saved every ``checkpoint_every`` iterations and on SIGTERM/SIGUSR1,
    and a rerun resumes from it, ending bit for bit where an uninterrupted run would on the same
    device.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"packing.objective must be one of {OBJECTIVES}, got {objective!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"packing.optimizer must be one of {tuple(OPTIMIZERS)}, got {optimizer!r}")
    if x0 is None:
        if n_identities is None:
            raise ValueError("give x0 or packing.n_identities")
        dim = embedding_dim if gallery is None else np.asarray(gallery).shape[1]
        x0, init_index = initial_points(n_identities, init, gallery, dim, seed, min_init_distance)
    else:
        init_index = np.full(len(x0), -1)
    x0 = _unit(x0, "x0")
    n, dim = x0.shape
    if n_identities is not None and n_identities != n:
        raise ValueError(f"x0 has {n} rows but packing.n_identities is {n_identities}")
    if n < 2:
        raise ValueError("packing needs at least 2 identities")
    if batch_size is not None and not 2 <= batch_size <= n:
        raise ValueError(f"packing.batch_size must be between 2 and n_identities ({n}), got {batch_size}")
    dev = resolve_device(device)
    gal = None
    if alpha > 0:
        if gallery is None:
            raise ValueError("packing.alpha > 0 needs gallery embeddings")
        gal = torch.from_numpy(_unit(gallery, "gallery")).to(dev)
        if gal.shape[1] != dim:
            raise ValueError(f"gallery embeddings have dimension {gal.shape[1]}, references {dim}")

    x = torch.nn.Parameter(torch.from_numpy(x0.copy()).to(dev))
    opt = OPTIMIZERS[optimizer]([x], lr=lr)
    start_iter, trace_rows, elapsed_before = 0, [], 0.0
    ckpt_path = Path(checkpoint) if checkpoint else None
    if ckpt_path and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=dev, weights_only=True)
        if tuple(state["x"].shape) != (n, dim):
            raise ValueError(f"{ckpt_path}: checkpoint holds {tuple(state['x'].shape)} points, "
                             f"expected {(n, dim)}; delete it to start over")
        with torch.no_grad():
            x.copy_(state["x"].to(dev))
        opt.load_state_dict(state["optimizer"])
        start_iter, trace_rows = int(state["iteration"]), list(state["trace"])
        elapsed_before = float(state["elapsed_s"])
        log.info("resumed from %s at iteration %d of %d", ckpt_path, start_iter, iterations)

    def regulariser(xn: torch.Tensor) -> float:
        if gal is None:
            return 0.0
        cos, _ = nearest(xn, gal, chunk_size=chunk_size)
        return alpha * float((1.0 - cos).mean())

    def record(iteration: int, lr_now: float, t0: float) -> None:
        with torch.no_grad():
            xn = torch.nn.functional.normalize(x.detach(), dim=1)
            best, _ = nearest(xn, xn, exclude_self=True, chunk_size=chunk_size)
            reg = regulariser(xn)
        row = {"iteration": iteration, "min_distance": float(1.0 - best.max()),
               "mean_nn_distance": float((1.0 - best).mean()), "regulariser": reg,
               "lr": lr_now, "elapsed_s": elapsed_before + time.perf_counter() - t0}
        trace_rows.append(row)
        if progress:
            progress(iteration, row)

    def state(iteration: int, t0: float) -> dict:
        return {"x": x.detach().cpu(), "optimizer": opt.state_dict(), "iteration": iteration,
                "trace": trace_rows, "elapsed_s": elapsed_before + time.perf_counter() - t0}

    stop = StopRequest(enabled=ckpt_path is not None)
    t0 = time.perf_counter()
    try:
        if start_iter == 0 and not trace_rows:
            record(0, lr, t0)
        for it in range(start_iter, iterations):
            lr_now = lr * lr_decay ** (it // lr_step)
            for group in opt.param_groups:
                group["lr"] = lr_now
            with torch.no_grad():
                rows = None
                if batch_size is not None:
                    gen = torch.Generator().manual_seed(derive_seed(seed, "pack-batch", it))
                    rows = torch.randperm(n, generator=gen)[:batch_size].to(dev)
                    frozen = x.detach().clone()
                x.grad = loss_gradient(x.detach(), gal, rows, objective=objective, alpha=alpha,
                                       temperature=temperature, chunk_size=chunk_size)
            opt.step()
            with torch.no_grad():
                if rows is not None:  # Algorithm 2 moves only the mini-batch's points
                    keep = torch.ones(n, dtype=torch.bool, device=dev)
                    keep[rows] = False
                    x[keep] = frozen[keep]
                x.copy_(torch.nn.functional.normalize(x, dim=1))
            done = it + 1
            if done % trace_every == 0 or done == iterations:
                record(done, lr_now, t0)
            if ckpt_path and (done % checkpoint_every == 0 or stop.requested):
                save_checkpoint(state(done, t0), ckpt_path)
                if stop.requested:
                    raise PackingInterrupted(f"stopped by signal after iteration {done}; "
                                             f"state saved to {ckpt_path}")
        if ckpt_path:
            save_checkpoint(state(iterations, t0), ckpt_path)
    finally:
        stop.restore()

    trace = pd.DataFrame(trace_rows, columns=TRACE_COLUMNS)
    emb = torch.nn.functional.normalize(x.detach(), dim=1).cpu().numpy().astype(np.float32)
    return PackResult(embeddings=emb, trace=trace, init_index=np.asarray(init_index, dtype=np.int64),
                      iterations_run=max(0, iterations - start_iter))
