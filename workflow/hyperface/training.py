"""Train a recognizer on the synthetic dataset: iResNet + margin head, SGD, multi-step schedule.

Resumable: a checkpoint (model, head, optimiser, scheduler, epoch) is written after every epoch and
on SIGTERM/SIGUSR1; a rerun continues from it. Final weights are written as safetensors.
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

from hyperface.heads import build_head
from hyperface.images import load_rgb, to_network
from hyperface.iresnet import build_backbone
from hyperface.seeding import derive_seed

log = logging.getLogger(__name__)


class FaceDataset(torch.utils.data.Dataset):
    """(image, label) pairs from dataset.parquet; paths are relative to ``root``."""

    def __init__(self, frame: pd.DataFrame, root: str | Path, flip_prob: float = 0.5):
        self.paths = [Path(root) / p for p in frame["image"]]
        self.labels = frame["label"].to_numpy(np.int64)
        self.flip_prob = flip_prob

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = to_network([load_rgb(self.paths[i])])[0]
        if torch.rand(()) < self.flip_prob:
            x = x.flip(-1)
        return x, int(self.labels[i])


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
          lr_gamma: float = 0.1, flip_prob: float = 0.5, workers: int = 0, device: str = "cpu",
          **_ignored) -> TrainResult:
    n_classes = int(frame["label"].max()) + 1
    if len(frame) == 0:
        raise ValueError("dataset.parquet has no images to train on")
    torch.manual_seed(derive_seed(seed, "train-init"))
    model = build_backbone(backbone, width=width, embedding_size=embedding_size).to(device)
    margin = build_head(head, embedding_size, n_classes).to(device)
    opt = torch.optim.SGD(_param_groups([model, margin], weight_decay), lr=lr, momentum=momentum)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones or []), gamma=lr_gamma)
    ckpt = Path(checkpoint)
    start_epoch, history = 0, []
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        margin.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
        log.info("resumed from %s at epoch %d", ckpt, start_epoch)

    data = FaceDataset(frame, root, flip_prob=flip_prob)
    use_amp = torch.device(device).type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(start_epoch, epochs):
        gen = torch.Generator().manual_seed(derive_seed(seed, "train-epoch", epoch))
        loader = torch.utils.data.DataLoader(data, batch_size=min(batch_size, len(data)), shuffle=True,
                                             drop_last=len(data) > batch_size, generator=gen,
                                             num_workers=workers, persistent_workers=False)
        model.train()
        margin.train()
        t0, seen, total = time.perf_counter(), 0, 0.0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device_type=torch.device(device).type, enabled=use_amp):
                emb, norm = model(x)
                logits = margin(emb.float(), norm.float(), y)
                loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            seen += len(y)
            total += float(loss) * len(y)
        sched.step()
        secs = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": total / max(seen, 1), "lr": opt.param_groups[0]["lr"],
               "images": seen, "seconds": secs, "images_per_s": seen / max(secs, 1e-9)}
        history.append(row)
        log.info("epoch %(epoch)d loss %(loss).4f lr %(lr).4g %(images_per_s).1f img/s", row)
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "head": margin.state_dict(),
                    "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "epoch": epoch + 1, "history": history}, tmp)
        tmp.replace(ckpt)
    Path(out_weights).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(out_weights), metadata={"backbone": backbone, "width": str(width),
                                          "embedding_size": str(embedding_size)})
    return TrainResult(history=pd.DataFrame(history), n_classes=n_classes)


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
