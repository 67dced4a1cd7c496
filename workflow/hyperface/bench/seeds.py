"""How far the demo's training-dependent figures move between training runs: the train rule's
model retrained with other seeds on a finished run's dataset, each scored as the README scores it.

    python -m hyperface.bench.seeds --workdir . [--seeds 8] [--epochs 15 --milestones 10 13]

Another CPU's floating-point kernels change a training run's rounding, which a few epochs of SGD
amplify like a change of seed, so the spread over seeds is what bounds those figures on another
CPU (``hyperface.reports.readme.BOUNDS``: two independent runs differ by less than 3 x sqrt(2)
standard deviations). Prints, per seed, the holdout accuracy and its fold spread, and the trained
model on the real photos (mean genuine and impostor cosine, AUC); then mean, std and that bound.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import yaml

from hyperface.quality import real_photos
from hyperface.recognition.evaluation import verify
from hyperface.settings import TrainingSettings
from hyperface.stages.evaluate import recogniser_features
from hyperface.stages.train import train_model

COLUMNS = ["holdout accuracy (%)", "fold std (%)", "real genuine cosine", "real impostor cosine",
           "real AUC"]  # fmt: skip


def scores(workdir: Path, training: TrainingSettings, seed: int, photos) -> list[float]:
    """One seed's model, trained on the run's dataset and scored as the README's figures are."""
    results = workdir / "results"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        train_model(results / "dataset.parquet", out / "model.safetensors", out / "history.parquet",
                    results, out / "checkpoint", seed=seed, training=training,
                    device="cpu")  # fmt: skip
        features = recogniser_features(out / "model.safetensors", batch_size=64, device="cpu")
        holdout = verify(features, results / "eval/holdout.bin")
        real = real_photos.judge_photos(features, *photos)
    return [100 * holdout.accuracy, 100 * float(np.std(holdout.fold_accuracy)),
            float(real.genuine.mean()), float(real.impostor.mean()), real.auc]  # fmt: skip


FORMATS = [".2f", ".2f", ".3f", ".3f", ".3f"]


def _row(label: str, values, formats=FORMATS) -> str:
    return (
        f"| {label} | "
        + " | ".join(f"{v:{f}}" for v, f in zip(values, formats, strict=True))
        + " |"
    )


def table(rows: dict[int, list[float]]) -> str:
    values = np.array(list(rows.values()))
    std = values.std(axis=0, ddof=1)
    lines = ["| seed | " + " | ".join(COLUMNS) + " |", "|---" + "|---:" * len(COLUMNS) + "|"]
    lines += [_row(str(seed), r) for seed, r in rows.items()]
    lines += [_row("mean", values.mean(axis=0)), _row("std", std),
              _row("3 x sqrt(2) std", 3 * np.sqrt(2) * std)]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("."), help="a finished demo's folder")
    ap.add_argument("--configfile", type=Path, default=None, help="its config (config/config.yaml)")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--epochs", type=int, help="instead of the config's training.epochs")
    ap.add_argument("--milestones", type=int, nargs="*", help="with --epochs")
    args = ap.parse_args(argv)
    config = yaml.safe_load((args.configfile or Path("config/config.yaml")).read_text())
    section = config["training"]
    if args.epochs is not None:
        section = {**section, "epochs": args.epochs, "milestones": args.milestones or []}
    training = TrainingSettings.from_section(section)
    photos = real_photos.aligned_photos(real_photos.installed_photos())
    rows = {seed: scores(args.workdir, training, seed, photos) for seed in range(args.seeds)}
    print(f"# training: {training.epochs} epochs, milestones {list(training.milestones)}")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
