"""Evaluation stage: 10-fold verification of a model on one benchmark."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hyperface.recognition.embedders import InsightFaceEmbedder
from hyperface.recognition.evaluation import Features, torch_features, verify
from hyperface.recognition.training import load_backbone
from hyperface.runtime import Throughput
from hyperface.storage import manifests
from hyperface.storage.lineage import lineage_meta

log = logging.getLogger(__name__)


def recogniser_features(model: str | Path, *, batch_size: int, device: str) -> Features:
    """Raw features of a model file: our trained backbone (.safetensors) or an external ONNX
    recogniser in insightface's layout (a baseline)."""
    if Path(model).suffix == ".onnx":
        return InsightFaceEmbedder(model, device=device, batch_size=batch_size).features
    return torch_features(load_backbone(model, device=device), device)


def evaluate(
    model: str | Path,
    bin_path: str | Path,
    out: str | Path,
    *,
    model_name: str,
    benchmark: str,
    batch_size: int,
    device: str,
) -> None:
    """Per-fold accuracy, VAL and FAR of one model on one benchmark .bin (insightface's
    protocol)."""
    meta = lineage_meta(
        "evaluate", [model_name, benchmark], {"model": model, "benchmark": bin_path}
    )
    features = recogniser_features(model, batch_size=batch_size, device=device)
    speed = Throughput("pairs")
    result = verify(features, bin_path, batch_size=batch_size)
    speed.add(int(result.fold_pairs.sum()))
    k = len(result.fold_accuracy)
    manifests.write_manifest(
        out,
        {
            "model": [model_name] * k,
            "benchmark": [benchmark] * k,
            "fold": np.arange(k),
            "threshold": result.fold_threshold,
            "accuracy": result.fold_accuracy,
            "val_threshold": result.fold_val_threshold,
            "val": result.fold_val,
            "far": result.fold_far,
            "n_pairs": result.fold_pairs,
        },
        manifests.eval_schema(),
        meta,
    )
    log.info(
        "%s on %s: accuracy %.4f +- %.4f, VAL@FAR=1e-3 %.4f",
        model_name,
        benchmark,
        result.accuracy,
        float(np.std(result.fold_accuracy)),
        result.val,
    )
    speed.report()
