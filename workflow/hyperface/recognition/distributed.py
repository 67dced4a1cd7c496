"""Several training processes (ranks) inside one job that train the model one process would.

One task starts ``world`` ranks (NCCL on GPUs, one GPU each; gloo on CPUs), so a SLURM job asks for
N GPUs and one task and needs no launcher (``srun``, ``torchrun``). Each rank takes its slice of
every global batch; the
gradient is averaged over ranks (DistributedDataParallel), and every statistic that one process
would take over the global batch is taken over all ranks: BatchNorm's mean and variance
(:class:`GlobalBatchNorm`, also on CPUs where ``torch.nn.SyncBatchNorm`` refuses to run) and the
AdaFace feature-norm statistics (:func:`batch_mean_std`).
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from hyperface.runtime import StopRequest

log = logging.getLogger(__name__)


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum over ranks (no gradient); ``x`` itself with one rank."""
    if world_size() > 1:
        x = x.clone()
        dist.all_reduce(x)
    return x


def batch_mean_std(x: torch.Tensor, over_ranks: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased standard deviation of a 1-D batch over all ranks' samples (or of ``x``
    alone, when it holds every rank's already)."""
    if world_size() == 1 or not over_ranks:
        std = x.std() if len(x) > 1 else torch.zeros_like(x.mean())
        return x.mean(), std
    sums = all_sum(torch.stack([x.sum(), x.new_tensor(float(len(x)))]))
    n = sums[1]
    mean = sums[0] / n
    if n < 2:
        return mean, torch.zeros_like(mean)
    return mean, (
        all_sum((x - mean).square().sum()) / (n - 1)
    ).sqrt()  # two passes: no cancellation


class SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient: each rank's input reaches
    every rank's output."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd signature
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd signature
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GatherOverRanks(torch.autograd.Function):
    """All-gather of one row per rank into (world, m), differentiable: a rank's input gets the
    gradient that every rank's output sent to its row."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd signature
        rows = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(rows, x.contiguous())
        return torch.stack(rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd signature
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are taken over every rank's part of the batch; a plain
    BatchNorm otherwise.

    One collective forward and one backward per layer: each rank's count, mean and sum of squared
    deviations (two local passes) are gathered and merged as in Chan et al.'s parallel variance,
    as sound numerically as a local BatchNorm and without a second round trip for the variance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        xf = x.float()
        n_local = xf.numel() / c
        mean_local = xf.mean(dims)
        m2_local = (xf - mean_local.view(shape)).square().sum(dims)
        rows = GatherOverRanks.apply(
            torch.cat([xf.new_tensor([n_local]), mean_local, m2_local])
        )  # (world, 1 + 2c)
        counts, means, m2s = rows[:, :1], rows[:, 1 : c + 1], rows[:, c + 1 :]
        n = counts.sum()
        mean = (counts * means).sum(0) / n
        var = (m2s.sum(0) + (counts * (means - mean).square()).sum(0)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


class GlobalBatchNorm1d(GlobalBatchNorm, nn.BatchNorm1d):
    pass


class GlobalBatchNorm2d(GlobalBatchNorm, nn.BatchNorm2d):
    pass


def global_batch_norm(module: nn.Module) -> nn.Module:
    """Turn every BatchNorm1d/2d of ``module`` into its global version, in place (same
    parameters, buffers and state-dict keys)."""
    swap = {nn.BatchNorm1d: GlobalBatchNorm1d, nn.BatchNorm2d: GlobalBatchNorm2d}
    for sub in module.modules():
        if type(sub) in swap:
            sub.__class__ = swap[type(sub)]
    return module


class RankError(RuntimeError):
    """A rank failed; ``names`` holds the type names of the ranks' exceptions."""

    def __init__(self, names: set[str], text: str):
        super().__init__(text)
        self.names = names


def launch(world: int, fn: Callable, *args, **kwargs) -> None:
    """Run ``fn(rank, world, *args, **kwargs)`` (``args[0]``: the device) in ``world`` fresh Python
    processes.

    Processes rather than ``multiprocessing.spawn``: spawn re-imports the caller's main module,
    which for a Snakemake script is the whole job. The ranks share this job's log and process
    group (a scheduler's SIGTERM reaches them all); meanwhile this process only records signals.
    """
    threads = max(1, torch.get_num_threads() // world)
    try:
        stderr = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # captured (tests): inherit ours
        stderr = None
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding hyperface/
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    stop = StopRequest()  # the ranks checkpoint and exit; this process must outlive them
    try:
        with tempfile.TemporaryDirectory(prefix="hyperface-ranks-") as tmp:
            with open(Path(tmp) / "job.pkl", "wb") as f:
                pickle.dump((fn, args, kwargs), f)
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "hyperface.recognition.distributed",
                        tmp,
                        str(rank),
                        str(world),
                        str(threads),
                    ],
                    env=env,
                    stderr=stderr,
                )
                for rank in range(world)
            ]
            codes = [proc.wait() for proc in procs]
            errors = [
                (Path(tmp) / f"error-{rank}").read_text()
                for rank in range(world)
                if (Path(tmp) / f"error-{rank}").exists()
            ]
    finally:
        stop.restore()
    if errors or any(codes):
        names = {text.split("\n", 1)[0] for text in errors}
        raise RankError(
            names,
            f"{len(errors) or sum(map(bool, codes))} of {world} ranks failed "
            f"(exit codes {codes}):\n" + "\n".join(errors),
        )


def _worker(folder: str, rank: int, world: int, threads: int) -> None:
    """One rank: join the group through a file in ``folder``, run the job, report an exception."""
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        stream=sys.stderr,
        force=True,
        format=f"%(asctime)s %(levelname)s rank {rank} %(name)s: %(message)s",
    )
    torch.set_num_threads(threads)
    with open(Path(folder) / "job.pkl", "rb") as f:
        fn, args, kwargs = pickle.load(f)
    cuda = str(args[0]).startswith("cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(rank)
    try:
        dist.init_process_group(
            "nccl" if cuda else "gloo",
            init_method=f"file://{folder}/rendezvous",
            rank=rank,
            world_size=world,
        )
        try:
            fn(rank, world, *args, **kwargs)
        finally:
            dist.destroy_process_group()
    except BaseException as err:
        (Path(folder) / f"error-{rank}").write_text(
            f"{type(err).__name__}\n{traceback.format_exc()}"
        )
        raise SystemExit(1) from err


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
