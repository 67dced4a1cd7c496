"""Train a recognizer on the synthetic dataset: iResNet + margin head, SGD, multi-step schedule.

Resumable: a checkpoint (model, head, optimiser, scheduler, epoch, step within the epoch) is
written after every epoch and when SIGTERM/SIGUSR1 arrives mid-epoch; a rerun continues from it.
Each epoch's batch order and every augmentation are drawn from (seed, epoch, image), so a resumed
run sees the same batches as an uninterrupted one. Final weights are written as safetensors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from hyperface.augment import augment
from hyperface.heads import build_head, diversity_loss
from hyperface.images import load_rgb, to_network
from hyperface.iresnet import build_backbone
from hyperface.runtime import StopRequest, Throughput, progress, save_checkpoint
from hyperface.seeding import derive_seed, numpy_rng

log = logging.getLogger(__name__)


HISTORY_COLUMNS = ["epoch", "loss", "lr", "images", "seconds", "images_per_s"]


class TrainingInterrupted(RuntimeError):
    """Raised after a mid-epoch checkpoint was written because SIGTERM/SIGUSR1 arrived."""


class FaceDataset(torch.utils.data.Dataset):
    """(image, label) pairs from dataset.parquet; paths are relative to ``root``."""

    def __init__(self, frame: pd.DataFrame, root: str | Path, *, seed: int = 0, **augmentation: float):
        self.paths = [Path(root) / p for p in frame["image"]]
        self.labels = frame["label"].to_numpy(np.int64)
        self.seed, self.augmentation, self.epoch = seed, augmentation, 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        rng = numpy_rng(self.seed, "augment", self.epoch, i)
        image = augment(load_rgb(self.paths[i]), rng, **self.augmentation)
        return to_network([image])[0], int(self.labels[i])


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The epoch's shuffled batches (the last, short one dropped when there is more than one)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, "train-epoch", epoch)))
    batches = [perm[i:i + batch_size].tolist() for i in range(0, n, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def _param_groups(modules: list[torch.nn.Module], weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights and the head, never on BatchNorm or PReLU parameters."""
    decay, no_decay = [], []
    for module in modules:
        for sub in module.modules():
            for name, p in sub.named_parameters(recurse=False):
                if not p.requires_grad:
                    continue
                norm_like = isinstance(sub, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.PReLU))
                (no_decay if norm_like or name == "bias" else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class TrainResult:
    history: pd.DataFrame
    n_classes: int


def train(frame: pd.DataFrame, root: str | Path, out_weights: str | Path, checkpoint: str | Path, *,
          seed: int = 0, backbone: str = "iresnet50", width: int = 64, embedding_size: int = 512,
          head: str = "adaface", epochs: int = 30, batch_size: int = 256, lr: float = 0.1,
          momentum: float = 0.9, weight_decay: float = 5e-4, milestones: list[int] | None = None,
          lr_gamma: float = 0.1, flip_prob: float = 0.5, crop_prob: float = 0.0,
          low_res_prob: float = 0.0, photometric_prob: float = 0.0, diversity_weight: float = 0.0,
          workers: int = 0, device: str = "cpu", metadata: dict[str, str] | None = None
          ) -> TrainResult:
    """Train and write ``out_weights`` (safetensors; ``metadata`` added to the architecture's).

    Keyword names are the keys of the ``training:`` config section (plus seed, device).
    """
    if len(frame) == 0:
        raise ValueError("dataset.parquet has no images to train on")
    n_classes = int(frame["label"].max()) + 1
    torch.manual_seed(derive_seed(seed, "train-init"))
    model = build_backbone(backbone, width=width, embedding_size=embedding_size).to(device)
    margin = build_head(head, embedding_size, n_classes).to(device)
    opt = torch.optim.SGD(_param_groups([model, margin], weight_decay), lr=lr, momentum=momentum)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones or []), gamma=lr_gamma)
    ckpt = Path(checkpoint)
    start_epoch, start_step, history, carried = 0, 0, [], (0, 0.0, 0.0)
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        margin.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, start_step = int(state["epoch"]), int(state["step"])
        history = list(state["history"])
        carried = tuple(state["epoch_so_far"])  # images, summed loss, seconds of a split epoch
        log.info("resumed from %s at epoch %d, step %d", ckpt, start_epoch, start_step)

    data = FaceDataset(frame, root, seed=seed, flip_prob=flip_prob, crop_prob=crop_prob,
                       low_res_prob=low_res_prob, photometric_prob=photometric_prob)
    dev_type = torch.device(device).type
    use_amp = dev_type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = torch.nn.CrossEntropyLoss()
    stop = StopRequest()
    speed = Throughput("images")

    def state(epoch: int, step: int, so_far: tuple[int, float, float] = (0, 0.0, 0.0)) -> dict:
        return {"model": model.state_dict(), "head": margin.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "epoch": epoch, "step": step, "history": history,
                "epoch_so_far": list(so_far)}

    try:
        for epoch in range(start_epoch, epochs):
            data.epoch = epoch
            batches = epoch_batches(len(data), batch_size, seed, epoch)
            first = start_step if epoch == start_epoch else 0
            loader = torch.utils.data.DataLoader(data, batch_sampler=batches[first:],
                                                 num_workers=workers, pin_memory=use_amp)
            model.train()
            margin.train()
            seen, total, before = carried if epoch == start_epoch else (0, 0.0, 0.0)
            t0 = time.perf_counter() - before
            for step, (x, y) in enumerate(progress(loader, total=len(batches) - first,
                                                   desc=f"epoch {epoch + 1}"), start=first):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with torch.autocast(device_type=dev_type, enabled=use_amp):
                    emb, norm = model(x)
                emb, norm = emb.float(), norm.float()
                loss = loss_fn(margin(emb, norm, y), y)
                if diversity_weight:
                    loss = loss + diversity_weight * diversity_loss(margin.cosine(emb), y, margin.s)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                seen += len(y)
                total += float(loss.detach()) * len(y)
                speed.add(len(y))
                if stop.requested:
                    save_checkpoint(state(epoch, step + 1, (seen, total, time.perf_counter() - t0)), ckpt)
                    raise TrainingInterrupted(f"stopped by signal at epoch {epoch}, step {step + 1}; "
                                              f"state saved to {ckpt}")
            sched.step()
            secs = time.perf_counter() - t0
            row = {"epoch": epoch + 1, "loss": total / max(seen, 1), "lr": opt.param_groups[0]["lr"],
                   "images": seen, "seconds": secs, "images_per_s": seen / max(secs, 1e-9)}
            history.append(row)
            log.info("epoch %(epoch)d loss %(loss).4f lr %(lr).4g %(images_per_s).1f img/s", row)
            save_checkpoint(state(epoch + 1, 0), ckpt)
    finally:
        stop.restore()
    speed.report()
    out_weights = Path(out_weights)
    out_weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_weights.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp),
              metadata={"backbone": backbone, "width": str(width), "embedding_size": str(embedding_size),
                        **(metadata or {})})
    tmp.replace(out_weights)
    return TrainResult(history=pd.DataFrame(history, columns=HISTORY_COLUMNS), n_classes=n_classes)


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
