"""Class centres split across ranks (PartialFC's idea, An et al., CVPR 2022), so 300k+ identities
fit.

A margin head holds one centre per identity: 300k x 512 floats are 600 MB, plus their gradient and
SGD momentum - on every rank, and the logits of a 256-image batch against them are another 300 MB.
Here rank r holds only the centres of classes [lo_r, hi_r). Every rank sees the whole global batch
(embeddings gathered from all ranks), scores it against its own centres, and the softmax
cross-entropy is assembled across ranks: the maximum logit, the sum of exponentials and the target
logit are each reduced over ranks. The loss is the same global-batch mean on every rank, and so is
the model: the centres start as the one-process head's (the same seeded draw, sliced), each rank's
centres get exactly their gradient, and the embeddings' gradient is summed over ranks (scaled so
DistributedDataParallel's averaging of the backbone gradient gives the one-process gradient).

Optional sampling (``sample_rate`` < 1): each step scores the batch against the centres of the
classes present in it plus a random share of the others (drawn from (seed, epoch, step, rank), so a
resumed run draws the same).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from hyperface.recognition.distributed import SumOverRanks, world_size
from hyperface.recognition.heads import MarginHead
from hyperface.seeding import torch_generator


def shard_bounds(n_classes: int, rank: int, world: int) -> tuple[int, int]:
    """The classes [lo, hi) rank ``rank`` holds: contiguous, sizes differing by at most one."""
    return n_classes * rank // world, n_classes * (rank + 1) // world


class _GatherBatch(torch.autograd.Function):
    """All ranks' equal-sized parts of the batch, in rank order. Backward: the gradient summed
    over ranks (each scored the batch against its own centres), this rank's part, times the
    world size (DistributedDataParallel then averages the backbone's gradient over ranks)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world, ctx.rank, ctx.rows = dist.get_world_size(), dist.get_rank(), len(x)
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows] * dist.get_world_size()


class _SumOfShares(SumOverRanks):
    """The sum over ranks of each rank's share of one global quantity that every rank then uses
    identically: the gradient of each share is the gradient of the sum, unreduced."""

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd signature
        return grad


def _gather(x: torch.Tensor) -> torch.Tensor:
    if world_size() == 1:
        return x
    return _GatherBatch.apply(x) if x.requires_grad else _gather_plain(x)


def _gather_plain(x: torch.Tensor) -> torch.Tensor:
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def _sum_of_shares(x: torch.Tensor) -> torch.Tensor:
    return _SumOfShares.apply(x) if world_size() > 1 else x


def gather_columns(local: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The full (..., n_classes) tensor from every rank's column block (a checkpoint's centres or
    their momentum); every rank must call it."""
    world = world_size()
    if world == 1:
        return local
    widest = max(hi - lo for lo, hi in (shard_bounds(n_classes, r, world) for r in range(world)))
    padded = torch.nn.functional.pad(local, (0, widest - local.shape[-1])).contiguous()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat(
        [
            p[..., : hi - lo]
            for p, (lo, hi) in zip(
                parts, (shard_bounds(n_classes, r, world) for r in range(world)), strict=True
            )
        ],
        dim=-1,
    )


class PartialFC(nn.Module):
    """A margin head's centres split across ranks; returns the global batch's mean cross-entropy."""

    def __init__(
        self,
        head: MarginHead,
        n_classes: int,
        rank: int,
        world: int,
        *,
        sample_rate: float = 1.0,
        seed: int = 0,
    ):
        super().__init__()
        self.lo, self.hi = shard_bounds(n_classes, rank, world)
        head.kernel = nn.Parameter(head.kernel.detach()[:, self.lo : self.hi].clone())
        head.class_ids = head.class_ids[self.lo : self.hi].clone()
        head.stats_over_ranks = (
            False  # it sees the gathered batch: its statistics are global already
        )
        self.head, self.n_classes, self.rank = head, n_classes, rank
        self.sample_rate, self.seed = sample_rate, seed
        self.step_key: tuple[int, int] = (0, 0)  # (epoch, step): the training loop sets it

    def sample(self, labels: torch.Tensor) -> torch.Tensor | None:
        """Local centre columns scored this step: the batch's classes, then random others up to
        ``sample_rate`` of this rank's centres (None: all of them)."""
        width = self.hi - self.lo
        if self.sample_rate >= 1.0 or width == 0:
            return None
        mine = labels[(labels >= self.lo) & (labels < self.hi)] - self.lo
        score = torch.rand(
            width, generator=torch_generator(self.seed, "partial-fc", *self.step_key, self.rank)
        )
        score[mine.cpu()] = 2.0  # present classes always
        keep = max(int(torch.unique(mine).numel()), math.ceil(self.sample_rate * width))
        return score.topk(keep).indices.sort().values.to(labels.device)

    def forward(
        self, embeddings: torch.Tensor, norms: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        emb, norm, y = _gather(embeddings), _gather(norms.detach()), _gather(labels)
        self.head.columns = self.sample(y)
        logits = self.head(emb, norm, y)  # (global batch, this rank's scored centres)
        target = self.head.one_hot(logits, y)
        self.head.columns = None
        peak = logits.detach().max(dim=1).values
        if world_size() > 1:
            dist.all_reduce(peak, op=dist.ReduceOp.MAX)
        sum_exp = _sum_of_shares((logits - peak[:, None]).exp().sum(dim=1))
        target_logit = _sum_of_shares((logits * target).sum(dim=1))
        return (sum_exp.log() + peak - target_logit).mean()

    def full_kernel(self) -> torch.Tensor:
        """Every rank's centres, in class order (collective)."""
        return gather_columns(self.head.kernel.detach(), self.n_classes)

    def local_columns(self, full: torch.Tensor) -> torch.Tensor:
        return full[..., self.lo : self.hi].clone()
