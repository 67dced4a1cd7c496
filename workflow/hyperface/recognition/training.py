"""Train a recognizer on the synthetic dataset: iResNet + margin head, SGD, multi-step schedule.

Resumable: a checkpoint (model, head, optimiser, scheduler, epoch, step within the epoch) is
written after every epoch and when SIGTERM/SIGUSR1 arrives mid-epoch; a rerun continues from it.
Each epoch's batch order and every augmentation are drawn from (seed, epoch, image), so a resumed
run sees the same batches as an uninterrupted one. Final weights are written as safetensors.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from hyperface.recognition.augment import augment
from hyperface.recognition.distributed import RankError, all_sum, global_batch_norm, launch
from hyperface.recognition.heads import build_head, diversity_loss
from hyperface.recognition.iresnet import build_backbone
from hyperface.recognition.partial_fc import PartialFC, gather_columns
from hyperface.runtime import StopRequest, Throughput, progress, save_checkpoint
from hyperface.seeding import derive_seed, numpy_rng
from hyperface.settings import TrainingSettings
from hyperface.storage.containers import ROW_GROUP_ROWS, Containers, decode
from hyperface.storage.images import network_input

log = logging.getLogger(__name__)


HISTORY_COLUMNS = ["epoch", "loss", "lr", "images", "seconds", "images_per_s"]


class TrainingInterrupted(RuntimeError):
    """Raised after a mid-epoch checkpoint was written because SIGTERM/SIGUSR1 arrived."""


class FaceDataset(torch.utils.data.Dataset):
    """(image, label) pairs of dataset.parquet, read from the aligned shard containers
    (``container`` relative to ``root``, ``row``); each loader process opens its own and keeps
    the row groups of a shuffle window cached (see :func:`epoch_order`)."""

    def __init__(
        self,
        frame: pd.DataFrame,
        root: str | Path,
        *,
        seed: int = 0,
        shuffle_window: int = 4096,
        **augmentation: float,
    ):
        self.root = Path(root)
        self.names = frame["container"].to_numpy()
        self.rows = frame["row"].to_numpy(np.int64)
        self.labels = frame["label"].to_numpy(np.int64)
        # the shuffle's unit: a row group of a shard (rows r // ROW_GROUP_ROWS of one container)
        self.blocks = pd.factorize(
            pd.Series(self.names).str.cat((self.rows // ROW_GROUP_ROWS).astype(str), sep="#")
        )[0]
        self.seed, self.window, self.augmentation, self.epoch = (
            seed,
            shuffle_window,
            augmentation,
            0,
        )
        self._store: tuple[int, Containers] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def store(self) -> Containers:
        """This process's open containers (a loader worker must not share a parent's handles)."""
        if self._store is None or self._store[0] != os.getpid():
            self._store = (
                os.getpid(),
                Containers(self.root, cache_groups=self.window // ROW_GROUP_ROWS + 1),
            )
        return self._store[1]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        """Image ``i`` (or ``(epoch, i)``: a persistent loader worker does not see ``epoch``
        change) as augmented uint8 (3, H, W): bytes cross to the device, which scales them
        (:func:`network_input`)."""
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        data = self.store().container(self.names[i]).encoded([int(self.rows[i])])[0]
        rng = numpy_rng(self.seed, "augment", epoch, i)
        image = augment(decode(data), rng, **self.augmentation)
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), int(self.labels[i])

    def batches(self, batch_size: int) -> list[list[int]]:
        return epoch_batches(
            epoch_order(self.blocks, self.seed, self.epoch, self.window), batch_size
        )


class EpochSampler:
    """The batch sampler of one DataLoader kept for the whole run (its workers persist across
    epochs, not re-created each one): each epoch sets the batches it yields, as (epoch, i)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int]]] = []

    def set(self, epoch: int, batches: list[list[int]]) -> None:
        self.batches = [[(epoch, i) for i in batch] for batch in batches]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def epoch_order(blocks: np.ndarray, seed: int, epoch: int, window: int) -> np.ndarray:
    """The epoch's image order, drawn from (seed, epoch) alone: the blocks (row groups of the
    shard containers) in random order, then the images shuffled within consecutive windows of
    ``window`` images. A loader streams it with one window's row groups in memory; a window as
    large as the dataset is a full shuffle."""
    rng = numpy_rng(seed, "train-epoch", epoch)
    blocks = np.asarray(blocks)
    rank = rng.permutation(int(blocks.max()) + 1 if len(blocks) else 0)
    order = np.argsort(rank[blocks], kind="stable")
    for start in range(0, len(order), window):
        order[start : start + window] = rng.permutation(order[start : start + window])
    return order


def epoch_batches(order: np.ndarray, batch_size: int) -> list[list[int]]:
    """Consecutive batches of ``order`` (the last, short one dropped when there is more than
    one)."""
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def _param_groups(modules: list[torch.nn.Module], weight_decay: float) -> list[dict]:
    """AdaFace's groups: weight decay on every parameter (convolutions, PReLU slopes, the linear
    layer's weight and bias, the head's centres) except BatchNorm's scales and shifts."""
    decay, no_decay = [], []
    for module in modules:
        for sub in module.modules():
            batch_norm = isinstance(sub, torch.nn.modules.batchnorm._BatchNorm)
            for p in sub.parameters(recurse=False):
                if p.requires_grad:
                    (no_decay if batch_norm else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@dataclass
class TrainResult:
    history: pd.DataFrame
    n_classes: int


class Trainee(torch.nn.Module):
    """Backbone and margin head as one module, so one DistributedDataParallel wraps both."""

    def __init__(
        self,
        backbone: torch.nn.Module,
        head: torch.nn.Module,
        diversity_weight: float,
        amp: bool,
        device_type: str,
    ):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.diversity_weight, self.amp, self.device_type = diversity_weight, amp, device_type

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=self.device_type, enabled=self.amp):
            emb, norm = self.backbone(x)
        emb, norm = emb.float(), norm.float()
        if isinstance(self.head, PartialFC):  # the cross-entropy over every rank's centres
            return self.head(emb, norm, y)
        loss = torch.nn.functional.cross_entropy(self.head(emb, norm, y), y)
        if self.diversity_weight:
            loss = loss + self.diversity_weight * diversity_loss(
                self.head.cosine(emb), y, self.head.s
            )
        return loss


@dataclass
class TrainJob:
    """What every rank trains on and writes: the data, the recipe and where results go."""

    frame: pd.DataFrame
    root: Path
    out_weights: Path
    checkpoint: Path
    settings: TrainingSettings
    seed: int
    metadata: dict[str, str]

    @property
    def n_classes(self) -> int:
        return int(self.frame["label"].max()) + 1


def train(
    frame: pd.DataFrame,
    root: str | Path,
    out_weights: str | Path,
    checkpoint: str | Path,
    settings: TrainingSettings,
    *,
    seed: int = 0,
    device: str = "cpu",
    metadata: dict[str, str] | None = None,
) -> TrainResult:
    """Train and write ``out_weights`` (safetensors; ``metadata`` added to the architecture's).

    With ``settings.gpus`` > 1 that many ranks train together (see
    :mod:`hyperface.recognition.distributed`), each on its slice of every batch, and reach the
    model one process would.
    """
    gpus = settings.gpus
    if len(frame) < 2 * gpus:  # BatchNorm needs two images per rank in a batch
        raise ValueError(
            f"dataset.parquet has {len(frame)} image(s) to train on; {gpus} rank(s) need at "
            f"least {2 * gpus} (check the dataset filters and leakage.exclude)"
        )
    if settings.batch_size % gpus:
        raise ValueError(
            f"training.batch_size ({settings.batch_size}) must be a multiple of "
            f"training.gpus ({gpus})"
        )
    job = TrainJob(
        frame, Path(root), Path(out_weights), Path(checkpoint), settings, seed, metadata or {}
    )
    log.info("training on %d rank%s (%s)", gpus, "s" * (gpus > 1), device)
    if gpus == 1:
        history = _fit(0, 1, device, job)
    else:
        try:
            launch(gpus, _fit, device, job)
        except RankError as err:
            if TrainingInterrupted.__name__ in err.names:
                raise TrainingInterrupted(
                    f"{gpus} ranks stopped by signal; state saved to {checkpoint}"
                ) from err
            raise
        history = torch.load(checkpoint, weights_only=True)["history"]
    return TrainResult(
        history=pd.DataFrame(history, columns=HISTORY_COLUMNS), n_classes=job.n_classes
    )


def _fit(rank: int, world: int, device: str, job: TrainJob) -> list[dict]:
    """One rank's training (the only one when ``world`` is 1): model, resume, ranks, epochs;
    rank 0 writes checkpoints and weights. Returns the per-epoch history."""
    if world > 1 and device.startswith("cuda"):
        device = f"cuda:{rank}"
    model = Model.build(job, rank, world, device)
    done = Progress.restore(job.checkpoint, model, device)
    data = FaceDataset(
        job.frame,
        job.root,
        seed=job.seed,
        shuffle_window=job.settings.shuffle_window,
        **job.settings.augmentation(),
    )
    trainee = model.for_ranks(world, torch.device(device).type)
    loader = _loader(data, job.settings.workers, pin=torch.device(device).type == "cuda")
    stop, speed = StopRequest(), Throughput("images")
    try:
        for epoch in range(done.epoch, job.settings.epochs):
            row = _epoch(
                Epoch(epoch, rank, world, device), job, model, trainee, loader, done, stop, speed
            )
            done.history.append(row)
            log.info("epoch %(epoch)d loss %(loss).4f lr %(lr).4g %(images_per_s).1f img/s", row)
            done = Progress(epoch + 1, 0, done.history)
            _save(model.state(done), job.checkpoint, rank)
    finally:
        stop.restore()
    if rank == 0:
        speed.report()
        _write_weights(model.backbone, job)
    _barrier(world)
    return done.history


@dataclass
class Progress:
    """Where training stands: the epoch and step to run next, the finished epochs' history, and
    the images, summed loss and seconds of a split epoch's first part."""

    epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    so_far: tuple[int, float, float] = (0, 0.0, 0.0)

    @classmethod
    def restore(cls, checkpoint: Path, model: Model, device: str) -> Progress:
        """The progress of ``checkpoint`` with ``model`` loaded from it, or a fresh start."""
        if not checkpoint.exists():
            return cls()
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load(state)
        log.info("resumed from %s at epoch %d, step %d", checkpoint, state["epoch"], state["step"])
        return cls(
            int(state["epoch"]),
            int(state["step"]),
            list(state["history"]),
            tuple(state["epoch_so_far"]),
        )


@dataclass
class Model:
    """The backbone, the margin head (its centres split across ranks with PartialFC), the
    optimiser and the schedule of one rank, and their checkpoint state."""

    backbone: torch.nn.Module
    margin: torch.nn.Module
    sharded: PartialFC | None
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler  # AMP's loss scale, kept across epochs (enabled on CUDA only)
    n_classes: int
    diversity_weight: float

    @classmethod
    def build(cls, job: TrainJob, rank: int, world: int, device: str) -> Model:
        s = job.settings
        torch.manual_seed(derive_seed(job.seed, "train-init"))
        backbone = build_backbone(s.backbone, width=s.width, embedding_size=s.embedding_size).to(
            device
        )
        margin = build_head(
            s.head, s.embedding_size, job.n_classes
        )  # the one-process draw, on every rank
        sharded = (
            PartialFC(margin, job.n_classes, rank, world, sample_rate=s.sample_rate, seed=job.seed)
            if s.partial_fc
            else None
        )
        margin = margin.to(device)
        if world > 1:
            global_batch_norm(backbone)
        opt = torch.optim.SGD(
            _param_groups([backbone, margin], s.weight_decay), lr=s.lr, momentum=s.momentum
        )
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=list(s.milestones), gamma=s.lr_gamma
        )
        scaler = torch.amp.GradScaler("cuda", enabled=torch.device(device).type == "cuda")
        return cls(backbone, margin, sharded, opt, sched, scaler, job.n_classes, s.diversity_weight)

    def for_ranks(self, world: int, device_type: str) -> torch.nn.Module:
        """The module a step calls: backbone and head, wrapped in DistributedDataParallel over
        ``world`` ranks (only the backbone's gradient is averaged when each rank holds its own
        centres; BatchNorm statistics are global already, so no buffers are broadcast)."""
        amp, diversity = device_type == "cuda", self.diversity_weight
        if self.sharded is not None:
            backbone = _ddp(self.backbone) if world > 1 else self.backbone
            return Trainee(backbone, self.sharded, diversity, amp, device_type)
        trainee = Trainee(self.backbone, self.margin, diversity, amp, device_type)
        if world > 1:
            trainee = _ddp(trainee)
        return trainee

    def state(self, done: Progress) -> dict:
        """The checkpoint (every rank calls it: with PartialFC it gathers the centres), holding
        every centre as one process's would."""
        head_state, opt_state = self.margin.state_dict(), self.opt.state_dict()
        if self.sharded is not None:
            head_state["kernel"] = self.sharded.full_kernel()
            kernel_id = self._kernel_id()
            momentum = opt_state["state"].get(kernel_id, {})  # the optimiser's live dict: copy
            if "momentum_buffer" in momentum:
                opt_state["state"][kernel_id] = {
                    **momentum,
                    "momentum_buffer": gather_columns(momentum["momentum_buffer"], self.n_classes),
                }
        return {
            "model": self.backbone.state_dict(),
            "head": head_state,
            "optimizer": opt_state,
            "scheduler": self.sched.state_dict(),
            "epoch": done.epoch,
            "step": done.step,
            "history": done.history,
            "epoch_so_far": list(done.so_far),
        }

    def load(self, state: dict) -> None:
        """Load a checkpoint of :meth:`state`; with PartialFC this rank takes its own centres."""
        if self.sharded is not None:
            state["head"]["kernel"] = self.sharded.local_columns(state["head"]["kernel"])
            momentum = state["optimizer"]["state"].get(self._kernel_id(), {})
            if "momentum_buffer" in momentum:
                momentum["momentum_buffer"] = self.sharded.local_columns(
                    momentum["momentum_buffer"]
                )
        self.backbone.load_state_dict(state["model"])
        self.margin.load_state_dict(state["head"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])

    def step(self, trainee: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One SGD step on a batch (loss scaled under AMP); returns the batch's loss, detached."""
        loss = trainee(x, y)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss.detach()

    def _kernel_id(self) -> int:
        """The key of the centres' state in ``opt.state_dict()`` (parameters numbered group by
        group)."""
        flat = [p for group in self.opt.param_groups for p in group["params"]]
        return next(i for i, p in enumerate(flat) if p is self.margin.kernel)


def _ddp(module: torch.nn.Module) -> torch.nn.Module:
    """DistributedDataParallel for a graph that is the same every step (``static_graph``: no
    search for unused parameters, buckets fixed after the first step), gradients living in the
    all-reduce buckets (no copy in and out), buffers not synchronised before each forward
    (BatchNorm is global; every rank starts from the same seeded buffers)."""
    return torch.nn.parallel.DistributedDataParallel(
        module, gradient_as_bucket_view=True, static_graph=True, **_no_buffer_sync()
    )


@cache
def _no_buffer_sync() -> dict[str, bool]:
    """``forward_sync_buffers=False`` where DDP has it (``broadcast_buffers`` warns that it is
    deprecated there), ``broadcast_buffers=False`` before."""
    names = inspect.signature(torch.nn.parallel.DistributedDataParallel).parameters
    key = "forward_sync_buffers" if "forward_sync_buffers" in names else "broadcast_buffers"
    return {key: False}


@dataclass(frozen=True)
class Epoch:
    """Which epoch, on which rank of how many, on which device."""

    index: int
    rank: int
    world: int
    device: str


def _loader(data: FaceDataset, workers: int, pin: bool) -> torch.utils.data.DataLoader:
    """One loader for the run: its workers start once and serve every epoch."""
    return torch.utils.data.DataLoader(
        data,
        batch_sampler=EpochSampler(),
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )


def _epoch(
    e: Epoch,
    job: TrainJob,
    model: Model,
    trainee: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    done: Progress,
    stop: StopRequest,
    speed: Throughput,
) -> dict:
    """One epoch from ``done``'s step (a resumed epoch) to its end: this rank's slice of every
    batch. Checkpoints and raises :class:`TrainingInterrupted` when any rank is asked to stop."""
    data = loader.dataset
    data.epoch = e.index
    batches = data.batches(job.settings.batch_size)
    local = job.settings.batch_size // e.world
    mine = [b[e.rank * local : (e.rank + 1) * local] for b in batches[done.step :]]
    loader.batch_sampler.set(e.index, mine)
    trainee.train()
    # images and summed loss of the epoch on this rank; rank 0 also carries a resumed epoch's
    # first part, added first as an uninterrupted run would have
    seen, total, before = done.so_far
    sums = torch.tensor(
        [seen, total] if e.rank == 0 else [0.0, 0.0], dtype=torch.float64, device=e.device
    )
    t0 = time.perf_counter() - before
    bar = progress(loader, total=len(mine), desc=f"epoch {e.index + 1}") if e.rank == 0 else loader
    for step, (x, y) in enumerate(bar, start=done.step):
        x, y = network_input(x.to(e.device, non_blocking=True)), y.to(e.device, non_blocking=True)
        if model.sharded is not None:
            model.sharded.step_key = (e.index, step)
        loss = model.step(trainee, x, y)
        count = torch.tensor(float(len(y)), dtype=torch.float64, device=e.device)
        sums += torch.stack([count, loss.double() * len(y)])
        speed.add(len(y) * e.world)
        if _stop_agreed(stop.requested, e.world, e.device):
            seen, total = _epoch_so_far(sums)
            split = Progress(
                e.index, step + 1, done.history, (seen, total, time.perf_counter() - t0)
            )
            _save(model.state(split), job.checkpoint, e.rank)
            _barrier(e.world)
            raise TrainingInterrupted(
                f"stopped by signal at epoch {e.index}, step {step + 1}; "
                f"state saved to {job.checkpoint}"
            )
    model.sched.step()
    secs = time.perf_counter() - t0
    seen, total = _epoch_so_far(sums)
    lr = model.opt.param_groups[0]["lr"]
    return {"epoch": e.index + 1, "loss": total / max(seen, 1), "lr": lr,
            "images": seen, "seconds": secs, "images_per_s": seen / max(secs, 1e-9)}  # fmt: skip


def _epoch_so_far(sums: torch.Tensor) -> tuple[int, float]:
    """Images and summed loss of the epoch so far, over all ranks."""
    seen, total = all_sum(sums).tolist()
    return int(seen), total


def _stop_agreed(requested: bool, world: int, device: str) -> bool:
    """Whether any rank was asked to stop: all ranks stop after the same step. The flag goes
    through the collective on the rank's device (NCCL has no CPU tensors)."""
    if world == 1:
        return requested
    return bool(all_sum(torch.tensor([float(requested)], device=device)).item() > 0)


def _save(state: dict, checkpoint: Path, rank: int) -> None:
    if rank == 0:
        save_checkpoint(state, checkpoint)


def _barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


def _write_weights(backbone: torch.nn.Module, job: TrainJob) -> None:
    s = job.settings
    save_backbone(backbone, job.out_weights, s.backbone, s.width, s.embedding_size, job.metadata)


def save_backbone(
    backbone: torch.nn.Module,
    out: Path,
    name: str,
    width: int,
    embedding_size: int,
    metadata: dict[str, str] | None = None,
) -> None:
    """A backbone as safetensors with its architecture in the metadata (what
    :func:`load_backbone` builds it from), written to a temporary file and renamed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    architecture = {"backbone": name, "width": str(width), "embedding_size": str(embedding_size)}
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()},
        str(tmp),
        metadata={**architecture, **(metadata or {})},
    )
    tmp.replace(out)


def load_backbone(path: str | Path, device: str = "cpu") -> torch.nn.Module:
    """A trained backbone from its safetensors file (architecture read from the file's metadata)."""
    from safetensors import safe_open

    from hyperface.loading import load_state_dict, load_strict

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    model = build_backbone(
        meta.get("backbone", "iresnet50"),
        width=int(meta.get("width", 64)),
        embedding_size=int(meta.get("embedding_size", 512)),
    )
    load_strict(model, load_state_dict(path), path)
    return model.eval().to(device)
