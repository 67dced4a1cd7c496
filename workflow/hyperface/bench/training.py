"""Training throughput: images/s of one SGD step (forward, AdaFace, backward) on synthetic batches.

    # tiny demo net and iResNet50, batch 32
    python -m hyperface.bench.training
    python -m hyperface.bench.training --backbone iresnet50 --batch 256 --width 64   # on a GPU

Data loading is left out: this measures the network, which is what a GPU budget is spent on.
"""

from __future__ import annotations

import argparse
import time

import torch

from hyperface.recognition.heads import build_head
from hyperface.recognition.iresnet import build_backbone

DEFAULT_CASES = [("iresnet18", 8, 128, 32), ("iresnet50", 64, 512, 32)]


def throughput(
    backbone: str,
    width: int,
    embedding_size: int,
    batch: int,
    device: str,
    steps: int = 5,
    n_classes: int = 10_000,
) -> float:
    torch.manual_seed(0)
    model = build_backbone(backbone, width=width, embedding_size=embedding_size).to(device).train()
    head = build_head("adaface", embedding_size, n_classes).to(device).train()
    opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.1, momentum=0.9)
    x = torch.randn(batch, 3, 112, 112, device=device)
    y = torch.randint(0, n_classes, (batch,), device=device)
    amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    sync = torch.cuda.synchronize if amp else (lambda: None)
    times = []
    for i in range(steps + 1):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device_type=torch.device(device).type, enabled=amp):
            emb, norm = model(x)
        loss = torch.nn.functional.cross_entropy(head(emb.float(), norm.float(), y), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sync()
        if i:
            times.append(time.perf_counter() - t0)
    return batch / (sum(times) / len(times))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backbone")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--embedding-size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    cases = (
        [(args.backbone, args.width, args.embedding_size, args.batch)]
        if args.backbone
        else DEFAULT_CASES
    )
    print(
        f"device={args.device}, torch threads={torch.get_num_threads()}, mixed precision="
        f"{args.device.startswith('cuda')}\n"
    )
    print("| backbone | width | batch | images/s |")
    print("|---|---:|---:|---:|")
    for backbone, width, emb, batch in cases:
        ips = throughput(backbone, width, emb, batch, args.device, steps=args.steps)
        print(f"| {backbone} | {width} | {batch} | {ips:.1f} |")


if __name__ == "__main__":
    main()
