"""The HyperFace packing problem: spread identities on the sphere, kept near a gallery of faces.

Algorithm 1 (full batch) and Algorithm 2 (mini-batch, ``batch_size``) of the paper. The loop here
is generic; what it minimises is an objective of :mod:`hyperface.packing.objectives` (the paper's
``hard_min``, faster-converging full-scan alternatives, and the ``neighbour_list`` soft-min that
scales to 100k-1M identities) plus the gallery regulariser. Gradients come without autograd, in
blocks: memory is O(n x chunk), never O(n^2).

Mini-batch note: for ``hard_min`` the mini-batch gradient is *not* an unbiased estimate of the
full one (a min over a subset is not the subset of a min); the paper's Theorem 1 covers
objectives that are means over pairs (``energy``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hyperface.packing.neighbours import nearest
from hyperface.packing.objectives import OBJECTIVES, GalleryPull, make_objective
from hyperface.runtime import StopRequest, pick_device, save_checkpoint
from hyperface.seeding import derive_seed, torch_generator
from hyperface.settings import PackingSettings

log = logging.getLogger(__name__)

__all__ = ["OBJECTIVES", "PackResult", "loss_gradient", "nearest", "optimize"]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}
INITS = ("gallery", "random")
TRACE_COLUMNS = ["iteration", "min_distance", "mean_nn_distance", "regulariser", "lr", "elapsed_s"]


class PackingInterrupted(RuntimeError):
    """Raised after a checkpoint was written because SIGTERM/SIGUSR1 asked the job to stop."""


def check(s: PackingSettings) -> None:
    """What the schema checks too, for settings built in code (a notebook, a benchmark)."""
    if s.objective not in OBJECTIVES:
        raise ValueError(
            f"packing.objective must be one of {tuple(OBJECTIVES)}, got {s.objective!r}"
        )
    if s.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"packing.optimizer must be one of {tuple(OPTIMIZERS)}, got {s.optimizer!r}"
        )
    if s.batch_size is not None and OBJECTIVES[s.objective].needs_full_set:
        raise ValueError(f"packing.objective {s.objective!r} needs packing.batch_size: null")


@dataclass
class PackResult:
    embeddings: np.ndarray  # (n, d) float32, unit rows
    trace: pd.DataFrame
    init_index: np.ndarray  # gallery row each identity started from, -1 for random init
    iterations_run: int  # iterations done in this call (0 when a finished checkpoint was reused)


def _tangent(grad_unit: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Chain a gradient w.r.t. x/|x| back to x: project on the tangent space and divide by |x|."""
    norm = x.norm(dim=1, keepdim=True)
    xn = x / norm
    return (grad_unit - (grad_unit * xn).sum(dim=1, keepdim=True) * xn) / norm


def loss_gradient(
    x: torch.Tensor,
    gallery: torch.Tensor | None,
    rows: torch.Tensor | None = None,
    *,
    objective: str = "hard_min",
    alpha: float = 0.0,
    temperature: float = 0.01,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Gradient of one iteration's loss w.r.t. the (unnormalised) points ``x``: a full-scan
    objective on the rows ``rows`` (all rows when None, Algorithm 1; a mini-batch, Algorithm 2)
    plus ``alpha`` x their mean cosine distance to the nearest gallery embedding. Rows outside
    the batch get a zero gradient."""
    settings = PackingSettings(
        objective=objective, alpha=alpha, temperature=temperature, chunk_size=chunk_size
    )
    pull = (
        GalleryPull(gallery, alpha, chunk_size=chunk_size)
        if gallery is not None and alpha > 0
        else None
    )
    return _gradient(x, rows, _objective(settings), pull)


def _objective(s: PackingSettings):
    return make_objective(
        s.objective,
        temperature=s.temperature,
        chunk_size=s.chunk_size,
        neighbours=s.neighbours,
        refresh_every=s.refresh_every,
        search=s.search,
    )


def _gradient(
    x: torch.Tensor, rows: torch.Tensor | None, objective, pull: GalleryPull | None
) -> torch.Tensor:
    xb = x if rows is None else x[rows]
    xn = torch.nn.functional.normalize(xb, dim=1)
    _, grad = objective.value_and_grad(xn)
    if pull is not None:
        grad = grad + pull.value_and_grad(xn, rows)[1]
    full = _tangent(grad, xb)
    if rows is None:
        return full
    out = torch.zeros_like(x)
    out[rows] = full
    return out


def random_init(
    n: int, dim: int, seed: int, min_distance: float = 0.3, max_rounds: int = 1000
) -> np.ndarray:
    """Uniform points on the sphere, redrawn until every pair is at least ``min_distance`` apart.

    The paper's baseline: random references with a minimum cosine distance of 0.3.
    """
    x = torch.randn(
        n, dim, generator=torch_generator(seed, "pack-random-init"), dtype=torch.float64
    )
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
    raise ValueError(
        f"could not place {n} points in {dim}-D at cosine distance >= {min_distance}; "
        "lower packing.min_init_distance"
    )


def _unit(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name} must be an (n, d) array, got shape {a.shape}")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if not np.all(np.isfinite(a)) or np.any(norms == 0):
        raise ValueError(f"{name} has a zero or non-finite row")
    return a / norms


def initial_points(
    n_identities: int,
    init: str,
    gallery: np.ndarray | None,
    dim: int | None,
    seed: int,
    min_init_distance: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """Starting references and the gallery row each came from (-1 for random points)."""
    if init == "gallery":
        if gallery is None or len(gallery) < n_identities:
            have = 0 if gallery is None else len(gallery)
            raise ValueError(
                f"packing.init 'gallery' needs gallery.size >= packing.n_identities "
                f"({have} < {n_identities})"
            )
        return _unit(gallery[:n_identities], "gallery"), np.arange(n_identities)
    if init == "random":
        if dim is None:
            raise ValueError("random init needs the embedding dimension")
        return random_init(n_identities, dim, seed, min_init_distance), np.full(n_identities, -1)
    raise ValueError(f"packing.init must be one of {INITS}, got {init!r}")


def optimize(
    s: PackingSettings,
    x0: np.ndarray | None = None,
    gallery: np.ndarray | None = None,
    *,
    seed: int = 0,
    device: str | None = "auto",
    checkpoint: str | Path | None = None,
    progress: Callable[[int, dict], None] | None = None,
) -> PackResult:
    """Solve the packing problem set by ``s`` (the ``packing:`` section).

    Starts from ``x0`` when given (its rows are the identities), else from ``s.n_identities``
    points drawn by ``s.init``. With ``checkpoint`` the state (points,
    optimiser, neighbour lists, trace) is saved every ``checkpoint_every`` iterations and on
    SIGTERM/SIGUSR1, and a rerun resumes from it, ending bit for bit where an uninterrupted run
    would on the same device.
    """
    check(s)
    x0, init_index = _start(x0, gallery, s, seed)
    dev = torch.device(pick_device(device))
    objective, pull = _objective(s), _regulariser(gallery, s, dev, x0.shape[1])
    x = torch.nn.Parameter(torch.from_numpy(x0).to(dev))
    opt = OPTIMIZERS[s.optimizer]([x], lr=s.lr)
    run = _Run(x, opt, [objective, pull], s, progress, Path(checkpoint) if checkpoint else None)
    stop = StopRequest(enabled=checkpoint is not None)
    try:
        for it in range(run.resume(dev), s.iterations):
            for group in opt.param_groups:
                group["lr"] = s.lr_at(it)
            with torch.no_grad():
                xn = torch.nn.functional.normalize(x.detach(), dim=1)
                for part in (objective, pull):
                    if part is not None:
                        part.refresh(xn, it)
                rows = _batch(s, seed, it, len(x0), dev)
                frozen = x.detach().clone() if rows is not None else None
                x.grad = _gradient(x.detach(), rows, objective, pull)
            opt.step()
            with torch.no_grad():
                if rows is not None:  # Algorithm 2 moves only the mini-batch's points
                    keep = torch.ones(len(x0), dtype=torch.bool, device=dev)
                    keep[rows] = False
                    x[keep] = frozen[keep]
                x.copy_(torch.nn.functional.normalize(x, dim=1))
            run.after(it + 1, stop.requested)
        run.save(s.iterations)
    finally:
        stop.restore()
    emb = torch.nn.functional.normalize(x.detach(), dim=1).cpu().numpy().astype(np.float32)
    return PackResult(
        embeddings=emb,
        trace=pd.DataFrame(run.trace, columns=TRACE_COLUMNS),
        init_index=np.asarray(init_index, dtype=np.int64),
        iterations_run=max(0, s.iterations - run.start),
    )


def _start(
    x0: np.ndarray | None, gallery: np.ndarray | None, s: PackingSettings, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if x0 is None:
        dim = None if gallery is None else np.asarray(gallery).shape[1]
        x0, init_index = initial_points(
            s.n_identities, s.init, gallery, dim, seed, s.min_init_distance
        )
    else:
        init_index = np.full(len(x0), -1)
    x0 = _unit(x0, "x0").copy()
    n = len(x0)
    if n < 2:
        raise ValueError("packing needs at least 2 identities")
    if s.batch_size is not None and not 2 <= s.batch_size <= n:
        raise ValueError(
            f"packing.batch_size must be between 2 and n_identities ({n}), got {s.batch_size}"
        )
    return x0, init_index


def _regulariser(
    gallery: np.ndarray | None, s: PackingSettings, dev: torch.device, dim: int
) -> GalleryPull | None:
    if s.alpha <= 0:
        return None
    if gallery is None:
        raise ValueError("packing.alpha > 0 needs gallery embeddings")
    gal = torch.from_numpy(_unit(gallery, "gallery")).to(dev)
    if gal.shape[1] != dim:
        raise ValueError(f"gallery embeddings have dimension {gal.shape[1]}, references {dim}")
    lists = s.neighbours if s.objective == "neighbour_list" else None
    return GalleryPull(gal, s.alpha, lists, s.refresh_every, s.chunk_size, s.search)


def _batch(
    s: PackingSettings, seed: int, iteration: int, n: int, dev: torch.device
) -> torch.Tensor | None:
    """Algorithm 2's mini-batch of iteration ``iteration``, from (seed, iteration) alone."""
    if s.batch_size is None:
        return None
    gen = torch.Generator().manual_seed(derive_seed(seed, "pack-batch", iteration))
    return torch.randperm(n, generator=gen)[: s.batch_size].to(dev)


class _Run:
    """The bookkeeping of one optimisation: trace rows, checkpoints, resume, stop on signal."""

    def __init__(self, x, opt, parts, s: PackingSettings, progress, checkpoint: Path | None):
        self.x, self.opt, self.parts, self.s = x, opt, [p for p in parts if p is not None], s
        self.progress, self.path = progress, checkpoint
        self.trace: list[dict] = []
        self.start, self.elapsed_before, self.t0 = 0, 0.0, time.perf_counter()

    def resume(self, dev: torch.device) -> int:
        """The first iteration to run: 0, or where the checkpoint left off."""
        if self.path and self.path.exists():
            state = torch.load(self.path, map_location=dev, weights_only=True)
            if tuple(state["x"].shape) != tuple(self.x.shape):
                raise ValueError(
                    f"{self.path}: checkpoint holds {tuple(state['x'].shape)} points, "
                    f"expected {tuple(self.x.shape)}; delete it to start over"
                )
            with torch.no_grad():
                self.x.copy_(state["x"].to(dev))
            self.opt.load_state_dict(state["optimizer"])
            for part, part_state in zip(
                self.parts, state.get("parts", [{}] * len(self.parts)), strict=True
            ):
                part.load_state_dict({k: v.to(dev) for k, v in part_state.items()})
            self.start, self.trace = int(state["iteration"]), list(state["trace"])
            self.elapsed_before = float(state["elapsed_s"])
            log.info(
                "resumed from %s at iteration %d of %d", self.path, self.start, self.s.iterations
            )
        if self.start == 0 and not self.trace:
            self.record(0)
        return self.start

    def after(self, done: int, stop_requested: bool) -> None:
        if done % self.s.trace_every == 0 or done == self.s.iterations:
            self.record(done)
        if self.path and (done % self.s.checkpoint_every == 0 or stop_requested):
            self.save(done)
            if stop_requested:
                raise PackingInterrupted(
                    f"stopped by signal after iteration {done}; state saved to {self.path}"
                )

    def record(self, iteration: int) -> None:
        with torch.no_grad():
            xn = torch.nn.functional.normalize(self.x.detach(), dim=1)
            best, _ = nearest(xn, xn, exclude_self=True, chunk_size=self.s.chunk_size)
            pulls = [p for p in self.parts if isinstance(p, GalleryPull)]  # exact, not from lists
            reg = (
                pulls[0].alpha
                * float(
                    (1.0 - nearest(xn, pulls[0].gallery, chunk_size=self.s.chunk_size)[0]).mean()
                )
                if pulls
                else 0.0
            )
        row = {
            "iteration": iteration,
            "min_distance": float(1.0 - best.max()),
            "mean_nn_distance": float((1.0 - best).mean()),
            "regulariser": reg,
            "lr": self.s.lr_at(max(iteration - 1, 0)),
            "elapsed_s": self.elapsed(),
        }
        self.trace.append(row)
        if self.progress:
            self.progress(iteration, row)

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    def save(self, iteration: int) -> None:
        if self.path:
            save_checkpoint(
                {
                    "x": self.x.detach().cpu(),
                    "optimizer": self.opt.state_dict(),
                    "parts": [p.state_dict() for p in self.parts],
                    "iteration": iteration,
                    "trace": self.trace,
                    "elapsed_s": self.elapsed(),
                    "settings": self.s.as_section(),
                },
                self.path,
            )
