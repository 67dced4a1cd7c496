"""Model export stage: the trained backbone as ONNX, with its model card."""

from __future__ import annotations

import logging
from pathlib import Path

from hyperface import manifests
from hyperface.lineage import lineage_meta, provenance, recorded_meta
from hyperface.onnx_export import export_onnx
from hyperface.stages.card import write_model_card
from hyperface.training import load_backbone

log = logging.getLogger(__name__)


def export_model(weights: str | Path, history: str | Path, summary: str | Path, summary_md: str | Path,
                 references: str | Path, dataset: str | Path, out_onnx: str | Path, out_card: str | Path,
                 *, settings: dict, training: dict, tiny_root: str) -> float:
    """model.onnx (checked against the weights; the difference is returned) and MODEL_CARD.md.

    ``settings`` holds the config sections the dataset card reads, ``training`` the training one.
    """
    weights_meta = recorded_meta(Path(weights))
    meta = lineage_meta("export_model", [training], {"model": weights, "summary": summary})
    backbone = load_backbone(weights)
    difference = export_onnx(backbone, out_onnx, {
        "backbone": training["backbone"], "embedding_size": str(training["embedding_size"]),
        "lineage": meta["lineage"], "weights_lineage": weights_meta.get("lineage", "")})
    log.info("exported %s: largest relative difference to the weights %.2e", out_onnx, difference)
    write_model_card(
        out_card, onnx_name=Path(out_onnx).name, difference=difference, weights_meta=weights_meta,
        history=manifests.read_manifest(history), summary_md=Path(summary_md).read_text(),
        dataset=manifests.read_manifest(dataset, ["identity"]), references_meta=manifests.read_meta(references),
        settings=settings, training=training, lineage=provenance(summary), tiny_root=tiny_root)
    return difference
