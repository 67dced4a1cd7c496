"""Train a recognizer on the synthetic dataset: iResNet + margin head, SGD, multi-step schedule.

Resumable: a checkpoint (model, head, optimiser, scheduler, epoch, step within the epoch) is
written after every epoch and when SIGTERM/SIGUSR1 arrives mid-epoch; a rerun continues from it.
Each epoch's batch order and every augmentation are drawn from (seed, epoch, image), so a resumed
run sees the same batches as an uninterrupted one. Final weights are written as safetensors.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from hyperface.augment import augment
from hyperface.containers import ROW_GROUP_ROWS, Containers, decode
from hyperface.distributed import RankError, all_sum, global_batch_norm, launch
from hyperface.heads import build_head, diversity_loss
from hyperface.images import to_network
from hyperface.iresnet import build_backbone
from hyperface.partial_fc import PartialFC, gather_columns
from hyperface.runtime import StopRequest, Throughput, progress, save_checkpoint
from hyperface.seeding import derive_seed, numpy_rng

log = logging.getLogger(__name__)


HISTORY_COLUMNS = ["epoch", "loss", "lr", "images", "seconds", "images_per_s"]


class TrainingInterrupted(RuntimeError):
    """Raised after a mid-epoch checkpoint was written because SIGTERM/SIGUSR1 arrived."""


class FaceDataset(torch.utils.data.Dataset):
    """(image, label) pairs of dataset.parquet, read from the aligned shard containers
    (``container`` relative to ``root``, ``row``); each loader process opens its own and keeps
    the row groups of a shuffle window cached (see :func:`epoch_order`)."""

    def __init__(self, frame: pd.DataFrame, root: str | Path, *, seed: int = 0,
                 shuffle_window: int = 4096, **augmentation: float):
        self.root = Path(root)
        self.names = frame["container"].to_numpy()
        self.rows = frame["row"].to_numpy(np.int64)
        self.labels = frame["label"].to_numpy(np.int64)
        # the shuffle's unit: a row group of a shard (rows r // ROW_GROUP_ROWS of one container)
        self.blocks = pd.factorize(pd.Series(self.names).str.cat(
            (self.rows // ROW_GROUP_ROWS).astype(str), sep="#"))[0]
        self.seed, self.window, self.augmentation, self.epoch = seed, shuffle_window, augmentation, 0
        self._store: tuple[int, Containers] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def store(self) -> Containers:
        """This process's open containers (a loader worker must not share a parent's handles)."""
        if self._store is None or self._store[0] != os.getpid():
            self._store = (os.getpid(), Containers(self.root, cache_groups=self.window // ROW_GROUP_ROWS + 1))
        return self._store[1]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        data = self.store().container(self.names[i]).encoded([int(self.rows[i])])[0]
        rng = numpy_rng(self.seed, "augment", self.epoch, i)
        image = augment(decode(data), rng, **self.augmentation)
        return to_network([image])[0], int(self.labels[i])

    def batches(self, batch_size: int) -> list[list[int]]:
        return epoch_batches(epoch_order(self.blocks, self.seed, self.epoch, self.window), batch_size)


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
        order[start:start + window] = rng.permutation(order[start:start + window])
    return order


def epoch_batches(order: np.ndarray, batch_size: int) -> list[list[int]]:
    """Consecutive batches of ``order`` (the last, short one dropped when there is more than one)."""
    batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
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
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class TrainResult:
    history: pd.DataFrame
    n_classes: int


class Trainee(torch.nn.Module):
    """Backbone and margin head as one module, so one DistributedDataParallel wraps both."""

    def __init__(self, backbone: torch.nn.Module, head: torch.nn.Module, diversity_weight: float,
                 amp: bool, device_type: str):
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
            loss = loss + self.diversity_weight * diversity_loss(self.head.cosine(emb), y, self.head.s)
        return loss


def train(frame: pd.DataFrame, root: str | Path, out_weights: str | Path, checkpoint: str | Path, *,
          gpus: int = 1, device: str = "cpu", **settings) -> TrainResult:
    """Train and write ``out_weights`` (safetensors; ``metadata`` added to the architecture's).

    Keyword names are the keys of the ``training:`` config section (plus seed, device, metadata).
    With ``gpus`` > 1 that many ranks train together (see :mod:`hyperface.distributed`), each on
    its slice of every batch, and reach the model one process would.
    """
    batch_size = settings.get("batch_size", 256)
    if len(frame) < 2 * gpus:  # BatchNorm needs two images per rank in a batch
        raise ValueError(f"dataset.parquet has {len(frame)} image(s) to train on; {gpus} rank(s) need at "
                         f"least {2 * gpus} (check the dataset filters and leakage.exclude)")
    if batch_size % gpus:
        raise ValueError(f"training.batch_size ({batch_size}) must be a multiple of training.gpus ({gpus})")
    log.info("training on %d rank%s (%s)", gpus, "s" * (gpus > 1), device)
    if gpus == 1:
        history = _fit(0, 1, device, frame, root, Path(out_weights), Path(checkpoint), **settings)
    else:
        try:
            launch(gpus, _fit, device, frame, root, Path(out_weights), Path(checkpoint), **settings)
        except RankError as err:
            if TrainingInterrupted.__name__ in err.names:
                raise TrainingInterrupted(f"{gpus} ranks stopped by signal; state saved to {checkpoint}") from err
            raise
        history = torch.load(checkpoint, weights_only=True)["history"]
    return TrainResult(history=pd.DataFrame(history, columns=HISTORY_COLUMNS),
                       n_classes=int(frame["label"].max()) + 1)


def _fit(rank: int, world: int, device: str, frame: pd.DataFrame, root: str | Path, out_weights: Path,
         ckpt: Path, *, seed: int = 0, backbone: str = "iresnet50", width: int = 64,
         embedding_size: int = 512, head: str = "adaface", epochs: int = 30, batch_size: int = 256,
         lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
         milestones: list[int] | None = None, lr_gamma: float = 0.1, flip_prob: float = 0.5,
         crop_prob: float = 0.0, low_res_prob: float = 0.0, photometric_prob: float = 0.0,
         diversity_weight: float = 0.0, workers: int = 0, shuffle_window: int = 4096,
         partial_fc: bool = False, sample_rate: float = 1.0, metadata: dict[str, str] | None = None
         ) -> list[dict]:
    """One rank's training (the only one when ``world`` is 1); rank 0 writes checkpoints and
    weights. Returns the per-epoch history."""
    if world > 1 and device.startswith("cuda"):
        device = f"cuda:{rank}"
    n_classes = int(frame["label"].max()) + 1
    torch.manual_seed(derive_seed(seed, "train-init"))
    model = build_backbone(backbone, width=width, embedding_size=embedding_size).to(device)
    margin = build_head(head, embedding_size, n_classes)  # the one-process draw, on every rank
    sharded = PartialFC(margin, n_classes, rank, world, sample_rate=sample_rate, seed=seed) if partial_fc else None
    margin = margin.to(device)
    if world > 1:
        global_batch_norm(model)
    opt = torch.optim.SGD(_param_groups([model, margin], weight_decay), lr=lr, momentum=momentum)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones or []), gamma=lr_gamma)
    kernel_id = _param_index(opt, margin.kernel)
    start_epoch, start_step, history, carried = 0, 0, [], (0, 0.0, 0.0)
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        if sharded is not None:  # checkpoints hold every centre, as one process's do: take ours
            state["head"]["kernel"] = sharded.local_columns(state["head"]["kernel"])
            momentum = state["optimizer"]["state"].get(kernel_id, {})
            if "momentum_buffer" in momentum:
                momentum["momentum_buffer"] = sharded.local_columns(momentum["momentum_buffer"])
        model.load_state_dict(state["model"])
        margin.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, start_step = int(state["epoch"]), int(state["step"])
        history = list(state["history"])
        carried = tuple(state["epoch_so_far"])  # images, summed loss, seconds of a split epoch
        log.info("resumed from %s at epoch %d, step %d", ckpt, start_epoch, start_step)

    data = FaceDataset(frame, root, seed=seed, shuffle_window=shuffle_window, flip_prob=flip_prob,
                       crop_prob=crop_prob, low_res_prob=low_res_prob, photometric_prob=photometric_prob)
    dev_type = torch.device(device).type
    use_amp = dev_type == "cuda"
    if sharded is not None:  # each rank's centres differ: only the backbone's gradient is averaged
        backbone_ddp = torch.nn.parallel.DistributedDataParallel(model, broadcast_buffers=False) \
            if world > 1 else model
        trainee = Trainee(backbone_ddp, sharded, diversity_weight, use_amp, dev_type)
    else:
        trainee = Trainee(model, margin, diversity_weight, use_amp, dev_type)
    if world > 1 and sharded is None:  # statistics are global already: no buffers to broadcast
        trainee = torch.nn.parallel.DistributedDataParallel(trainee, broadcast_buffers=False)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    stop = StopRequest()
    speed = Throughput("images")
    local = batch_size // world

    def state(epoch: int, step: int, so_far: tuple[int, float, float] = (0, 0.0, 0.0)) -> dict:
        """The checkpoint (every rank calls it: with PartialFC it gathers the centres)."""
        head_state, opt_state = margin.state_dict(), opt.state_dict()
        if sharded is not None:
            head_state["kernel"] = sharded.full_kernel()
            momentum = opt_state["state"].get(kernel_id, {})  # the optimiser's live dict: copy
            if "momentum_buffer" in momentum:
                opt_state["state"][kernel_id] = {**momentum, "momentum_buffer": gather_columns(
                    momentum["momentum_buffer"], n_classes)}
        return {"model": model.state_dict(), "head": head_state, "optimizer": opt_state,
                "scheduler": sched.state_dict(), "epoch": epoch, "step": step, "history": history,
                "epoch_so_far": list(so_far)}

    try:
        for epoch in range(start_epoch, epochs):
            data.epoch = epoch
            batches = data.batches(batch_size)
            first = start_step if epoch == start_epoch else 0
            mine = [b[rank * local:(rank + 1) * local] for b in batches[first:]] if world > 1 else batches[first:]
            loader = torch.utils.data.DataLoader(data, batch_sampler=mine, num_workers=workers,
                                                 pin_memory=use_amp)
            trainee.train()
            before_seen, before_total, before = carried if epoch == start_epoch else (0, 0.0, 0.0)
            # images and summed loss of the epoch on this rank; rank 0 also carries a resumed
            # epoch's first part, added first as an uninterrupted run would have
            sums = torch.tensor([before_seen, before_total] if rank == 0 else [0.0, 0.0], dtype=torch.float64)
            t0 = time.perf_counter() - before
            bar = progress(loader, total=len(batches) - first, desc=f"epoch {epoch + 1}") if rank == 0 else loader
            for step, (x, y) in enumerate(bar, start=first):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if sharded is not None:
                    sharded.step_key = (epoch, step)
                loss = trainee(x, y)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                sums += torch.tensor([len(y), float(loss.detach()) * len(y)], dtype=torch.float64)
                speed.add(len(y) * world)
                if _stop_agreed(stop.requested, world):
                    seen, total = _epoch_so_far(sums)
                    saved = state(epoch, step + 1, (seen, total, time.perf_counter() - t0))
                    if rank == 0:
                        save_checkpoint(saved, ckpt)
                    _barrier(world)
                    raise TrainingInterrupted(f"stopped by signal at epoch {epoch}, step {step + 1}; "
                                              f"state saved to {ckpt}")
            sched.step()
            secs = time.perf_counter() - t0
            seen, total = _epoch_so_far(sums)
            row = {"epoch": epoch + 1, "loss": total / max(seen, 1), "lr": opt.param_groups[0]["lr"],
                   "images": seen, "seconds": secs, "images_per_s": seen / max(secs, 1e-9)}
            history.append(row)
            log.info("epoch %(epoch)d loss %(loss).4f lr %(lr).4g %(images_per_s).1f img/s", row)
            saved = state(epoch + 1, 0)
            if rank == 0:
                save_checkpoint(saved, ckpt)
    finally:
        stop.restore()
    if rank == 0:
        speed.report()
        _write_weights(model, out_weights, backbone, width, embedding_size, metadata)
    _barrier(world)
    return history


def _param_index(opt: torch.optim.Optimizer, param: torch.Tensor) -> int:
    """The key of ``param``'s state in ``opt.state_dict()`` (parameters numbered group by group)."""
    flat = [p for group in opt.param_groups for p in group["params"]]
    return next(i for i, p in enumerate(flat) if p is param)


def _epoch_so_far(sums: torch.Tensor) -> tuple[int, float]:
    """Images and summed loss of the epoch so far, over all ranks."""
    seen, total = all_sum(sums).tolist()
    return int(seen), total


def _stop_agreed(requested: bool, world: int) -> bool:
    """Whether any rank was asked to stop: all ranks stop after the same step."""
    if world == 1:
        return requested
    return bool(all_sum(torch.tensor([float(requested)])).item() > 0)


def _barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


def _write_weights(model: torch.nn.Module, out_weights: Path, backbone: str, width: int,
                   embedding_size: int, metadata: dict[str, str] | None) -> None:
    out_weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_weights.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp),
              metadata={"backbone": backbone, "width": str(width), "embedding_size": str(embedding_size),
                        **(metadata or {})})
    tmp.replace(out_weights)


def load_backbone(path: str | Path, device: str = "cpu") -> torch.nn.Module:
    """A trained backbone from its safetensors file (architecture read from the file's metadata)."""
    from safetensors import safe_open

    from hyperface.loading import load_state_dict, load_strict

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    model = build_backbone(meta.get("backbone", "iresnet50"), width=int(meta.get("width", 64)),
                           embedding_size=int(meta.get("embedding_size", 512)))
    load_strict(model, load_state_dict(path), path)
    return model.eval().to(device)
